"""RECAP's early exit (keras_glimpse.models.recap_early_exit): an image stops
once the classifier, reading its glimpses so far, is sure; stop_threshold=1
is the full rollout, and a stopped image's prediction is that of the rollout
truncated to its glimpses."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.export import export_saved_model, load_exported
from keras_glimpse.models.recap import RECAP

T = 4  # glimpses of the toy model: 12x12 images, a 3x3 grid of 4x4 cells
_ARGS = dict(image_size=12, patch_size=4, stride=4, num_classes=5, embed_dim=8,
             gate_units=8, policy_units=8, value_units=8, seed=0)


def _recap(num_steps=T, **kw):
    keras.utils.set_random_seed(0)  # the same weights in every run: the mixed batch below
    model = RECAP(num_steps=num_steps, **{**_ARGS, **kw})
    model.build_from_image_shape()
    return model


@pytest.fixture(scope="module")
def model():
    return _recap()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(6, 12, 12, 1)).astype("float32")


def _step_logits(model, x):
    """`(B, T, K)`: the classifier on every prefix of the full greedy rollout
    (the path the agent's per-step rewards use)."""
    return model._agent_rollout(tf.constant(x), "greedy", with_rewards=True)["step_logits"]


def test_threshold_one_is_the_full_greedy_rollout(model, images):
    full = model.rollout(images, mode="greedy")
    early = model.rollout(images, mode="greedy", stop_threshold=1.0)
    np.testing.assert_allclose(early["predictions"], full["predictions"], atol=1e-5)
    for k in ("locations", "action_probs"):
        np.testing.assert_allclose(early[k], full[k], atol=1e-6)
    np.testing.assert_array_equal(early["actions"], full["actions"])
    assert early["glimpses_used"].numpy().tolist() == [T] * len(images)
    assert int(early["steps_run"]) == T
    # The random policy runs the same loop and never reads a cell twice.
    rand = model.rollout(images, policy="random", stop_threshold=1.0)
    cells = np.concatenate([np.full((len(images), 1), model.start_cell),
                            rand["actions"].numpy()[:, :-1]], 1)
    assert all(len(set(row)) == T for row in cells)


def test_a_low_threshold_stops_every_image_after_its_first_glimpse(model, images):
    out = model.rollout(images, stop_threshold=1e-4)  # the top class always has p >= 1/K
    assert out["glimpses_used"].numpy().tolist() == [1] * len(images)
    assert int(out["steps_run"]) == 1
    np.testing.assert_allclose(out["predictions"], _step_logits(model, images)[:, 0],
                               atol=1e-5)
    full = model.rollout(images)
    # Every step's record repeats the first glimpse's: the centre cell.
    np.testing.assert_allclose(out["locations"],
                               np.repeat(full["locations"][:, :1], T, axis=1), atol=1e-6)


# (a RECAP cut to one glimpse takes softmaxes over one step, which Keras warns of)
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
def test_mixed_batch_stops_each_image_when_sure_with_the_truncated_rollouts_prediction(
        model, images):
    steps = _step_logits(model, images)
    top = tf.reduce_max(tf.nn.softmax(steps), -1).numpy()  # (B, T)

    def stops(p):  # each image's first glimpse read with probability >= p (else all T)
        return [int(np.argmax(r >= p)) + 1 if (r >= p).any() else T for r in top]

    # The threshold (one of the reads) that spreads the stops over the most steps.
    threshold = float(max(np.unique(top), key=lambda p: len(set(stops(p)))))
    want = stops(threshold)
    assert len(set(want)) > 2, want  # the batch mixes images stopping at different steps
    full = model.rollout(images)

    @tf.function
    def run(x, p):
        return model.rollout(x, stop_threshold=p)

    for out in (model.rollout(images, stop_threshold=threshold),
                run(tf.constant(images), tf.constant(threshold))):
        assert out["glimpses_used"].numpy().tolist() == want
        assert int(out["steps_run"]) == max(want)
        for i, n in enumerate(want):
            # Frozen at the prediction after its n-th glimpse...
            np.testing.assert_allclose(out["predictions"][i], steps[i, n - 1], atol=1e-5)
            # ... on the cells the full rollout read, the last one repeated after it stopped.
            np.testing.assert_allclose(out["locations"][i, :n], full["locations"][i, :n],
                                       atol=1e-6)
            np.testing.assert_allclose(out["locations"][i, n:],
                                       np.repeat(full["locations"][i, n - 1:n], T - n, 0),
                                       atol=1e-6)
    # The prediction is exactly that of a RECAP cut to n glimpses (same weights).
    for n in sorted(set(want)):
        short = _recap(num_steps=n)
        short.set_weights(model.get_weights())
        rows = [i for i, k in enumerate(want) if k == n]
        np.testing.assert_allclose(tf.gather(out["predictions"], rows),
                                   short.rollout(images[rows])["predictions"], atol=1e-5)


def test_bad_thresholds_training_and_the_pretrain_stage_are_refused(model, images):
    for bad in (0, 0.0, -0.5, 1.5, "high"):
        with pytest.raises(ValueError, match="stop_threshold"):
            model.rollout(images, stop_threshold=bad)
    with pytest.raises(ValueError, match="inference"):
        model.rollout(images, training=True, stop_threshold=0.5)
    with pytest.raises(ValueError, match="mode"):
        model.rollout(images, mode="argmax", stop_threshold=0.5)
    assert model.supports_early_exit
    pretrain = RECAP(stage="pretrain", num_steps=T, **_ARGS)
    assert not pretrain.supports_early_exit
    with pytest.raises(ValueError, match="agent stage"):
        pretrain.rollout(images, stop_threshold=0.5)


def test_savedmodel_serve_early_exit_for_one_image(model, images, tmp_path):
    loaded = load_exported(export_saved_model(model, tmp_path / "e", num_samples=2))
    x = images[:1]
    for threshold in (1.0, 0.2, 1e-4):
        got = loaded.serve_early_exit(tf.constant(x), tf.constant(threshold))
        want = model.rollout(x, stop_threshold=threshold)
        used = int(got["glimpses_used"][0])
        assert 1 <= used <= T and used == int(want["glimpses_used"][0])
        np.testing.assert_allclose(got["predictions"], want["predictions"], atol=1e-5)
        np.testing.assert_allclose(got["locations"], want["locations"], atol=1e-6)
    assert int(loaded.serve_early_exit(tf.constant(x), tf.constant(1e-4))["glimpses_used"][0]) == 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="stop_threshold"):
        loaded.serve_early_exit(tf.constant(x), tf.constant(0.0))


def test_early_exit_macs_count_the_classifier_on_every_prefix(model):
    from keras_glimpse import flops

    report = flops.count(model)
    macs = [model.early_exit_macs(k) for k in range(1, T + 1)]
    assert all(a < b for a, b in zip(macs, macs[1:]))
    per_glimpse = report.per_step_macs - report.per_step["value_head"]  # no value head
    reads = [flops.layer_macs(model.summarizer, (1, j, model.embed_dim))
             + flops.layer_macs(model.gate, (1, j, model.embed_dim))
             + flops.layer_macs(model.classifier, (1, model.embed_dim)) for j in range(1, T + 1)]
    assert macs[0] == per_glimpse + reads[0]
    assert macs[-1] == T * per_glimpse + sum(reads)
    # With every glimpse, early exit costs more than the plain rollout (one read).
    assert macs[-1] > report.per_image_macs
    with pytest.raises(ValueError, match="glimpses"):
        model.early_exit_macs(0)
