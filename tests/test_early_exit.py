"""Early exit (keras_glimpse.early_exit): images stop once confident, the loop
ends when all have stopped, and stop_threshold=1 is the full rollout."""

import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse import early_exit
from keras_glimpse.export import export_saved_model, load_exported
from keras_glimpse.models.ram import RAM


def _counting_step(confidence_at):
    """A fake method: image i becomes confident (logit 10 on class 0) at step
    `confidence_at[i]`; records the step index as its 'location'."""
    calls, seen = [], []
    conf = tf.constant(confidence_at, tf.int32)

    def step(t, carry, index):
        calls.append(1)
        seen.append(index)
        hit = tf.cast(t >= tf.gather(conf, index), tf.float32)
        logits = tf.stack([10.0 * hit, tf.zeros_like(hit)], axis=1)
        carry = carry + 1.0  # counts how often each image's carry advanced
        return carry, logits, {"where": tf.fill(tf.shape(index), tf.cast(t, tf.float32))}

    step.seen = seen
    return step, calls


def test_each_image_stops_at_its_confident_step_and_the_loop_ends_early():
    step, _ = _counting_step([0, 2, 1])
    out = early_exit.early_exit_loop(step, tf.zeros(3), num_steps=6, stop_threshold=0.9)
    assert out["glimpses_used"].numpy().tolist() == [1, 3, 2]
    # Each step computes only the images still looking (eager: one call per step).
    assert [s.numpy().tolist() for s in step.seen] == [[0, 1, 2], [1, 2], [1]]
    assert int(out["steps_run"]) == 3  # not 6: every image had stopped
    # Records after an image stopped repeat its last glimpse's.
    np.testing.assert_array_equal(out["where"].numpy(), [[0] * 6, [0, 1, 2, 2, 2, 2],
                                                          [0, 1, 1, 1, 1, 1]])
    assert np.all(np.argmax(out["logits"].numpy(), -1) == 0)


def test_threshold_one_runs_every_step_and_bad_thresholds_are_refused():
    step, _ = _counting_step([0, 0])
    out = early_exit.early_exit_loop(step, tf.zeros(2), num_steps=4, stop_threshold=1.0)
    assert out["glimpses_used"].numpy().tolist() == [4, 4] and int(out["steps_run"]) == 4
    for bad in (0, -0.5, 1.5, "high"):
        with pytest.raises(ValueError, match="stop_threshold"):
            early_exit.check_threshold(bad)


def test_loop_ends_early_inside_a_tf_function():
    step, calls = _counting_step([1, 1])

    @tf.function
    def run(threshold):
        return early_exit.early_exit_loop(step, tf.zeros(2), 8, threshold)

    assert int(run(tf.constant(0.9))["steps_run"]) == 2
    assert int(run(tf.constant(1.0))["steps_run"]) == 8


def _ram():
    model = RAM(image_shape=(16, 16, 1), num_glimpses=4, glimpse_size=4, num_scales=2,
                hidden_units=16, glimpse_units=8, location_units=8, location_hidden_units=8,
                std=0.2, seed=3)
    model.build_from_image_shape()
    return model


def test_ram_threshold_one_is_the_full_greedy_rollout():
    model = _ram()
    x = np.random.default_rng(0).uniform(size=(5, 16, 16, 1)).astype("float32")
    full = model.rollout(x, mode="greedy")
    early = model.rollout(x, mode="greedy", stop_threshold=1.0)
    np.testing.assert_allclose(early["predictions"], full["predictions"], atol=1e-6)
    np.testing.assert_allclose(early["locations"], full["locations"], atol=1e-6)
    assert early["glimpses_used"].numpy().tolist() == [4] * 5


def test_ram_stops_each_image_at_its_first_confident_glimpse():
    model = _ram()
    x = np.random.default_rng(1).uniform(size=(6, 16, 16, 1)).astype("float32")
    # The classifier read after every glimpse of the full rollout.
    probs = tf.nn.softmax(model.classifier(model.rollout(x)["hidden_states"])).numpy()
    top = probs.max(-1)  # (B, T)
    threshold = float(np.median(top))
    want = [int(np.argmax(row >= threshold)) + 1 if (row >= threshold).any() else 4
            for row in top]
    out = model.rollout(x, stop_threshold=threshold)
    assert out["glimpses_used"].numpy().tolist() == want
    for i, n in enumerate(want):
        np.testing.assert_allclose(tf.nn.softmax(out["predictions"][i]), probs[i, n - 1],
                                   atol=1e-5)
    with pytest.raises(ValueError, match="inference"):
        model.rollout(x, training=True, stop_threshold=0.5)


def test_savedmodel_serve_early_exit_matches_the_model(tmp_path):
    model = _ram()
    x = np.random.default_rng(2).uniform(size=(3, 16, 16, 1)).astype("float32")
    loaded = load_exported(export_saved_model(model, tmp_path / "e"))
    for threshold in (1.0, 0.2):
        got = loaded.serve_early_exit(tf.constant(x), tf.constant(threshold))
        want = model.rollout(x, stop_threshold=threshold)
        np.testing.assert_allclose(got["predictions"], want["predictions"], atol=1e-5)
        np.testing.assert_array_equal(got["glimpses_used"], want["glimpses_used"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="stop_threshold"):
        loaded.serve_early_exit(tf.constant(x), tf.constant(0.0))


def _adaglimpse(**kw):
    from keras_glimpse.models.adaglimpse import AdaGlimpse

    model = AdaGlimpse(image_shape=(16, 16, 1), num_glimpses=3, grid_size=1, patch_size=8,
                       backbone_size="tiny", decoder_dim=16, decoder_depth=1, decoder_heads=2,
                       hidden_units=16, rl_batch_size=4, replay_capacity=32,
                       init_random_steps=0, task="classification", num_classes=3, seed=0, **kw)
    model.build_from_image_shape()
    return model


def test_adaglimpse_threshold_one_is_the_full_episode_and_images_stop_when_sure():
    model = _adaglimpse()
    x = np.random.default_rng(3).uniform(size=(4, 16, 16, 1)).astype("float32")
    for policy in ("learned", "grid"):
        full = model.rollout(x, policy=policy, return_steps=True)
        early = model.rollout(x, policy=policy, stop_threshold=1.0)
        np.testing.assert_allclose(early["predictions"], full["predictions"], atol=1e-5)
        np.testing.assert_allclose(early["boxes"], full["boxes"], atol=1e-4)
        assert early["glimpses_used"].numpy().tolist() == [3] * 4
    # step_predictions[t] is the prediction after t glimpses (t = 0..T).
    top = tf.reduce_max(tf.nn.softmax(full["step_predictions"][1:]), -1).numpy().T  # (B, T)
    threshold = float(np.median(top))
    want = [int(np.argmax(r >= threshold)) + 1 if (r >= threshold).any() else 3 for r in top]
    out = model.rollout(x, policy="grid", stop_threshold=threshold)
    assert out["glimpses_used"].numpy().tolist() == want
    for i, n in enumerate(want):
        np.testing.assert_allclose(out["predictions"][i], full["step_predictions"][n, i],
                                   atol=1e-5)


def test_adaglimpse_early_exit_needs_a_classifier():
    from keras_glimpse.models.adaglimpse import AdaGlimpse

    model = AdaGlimpse(image_shape=(16, 16, 1), num_glimpses=2, grid_size=1, patch_size=8,
                       backbone_size="tiny", decoder_dim=16, decoder_depth=1, decoder_heads=2,
                       hidden_units=16, seed=0)
    model.build_from_image_shape()
    assert not model.supports_early_exit
    with pytest.raises(ValueError, match="needs a classifier"):
        model.rollout(np.zeros((1, 16, 16, 1), "float32"), stop_threshold=0.5)


@pytest.mark.slow  # an AdaGlimpse export traces for minutes on 2 cores
def test_adaglimpse_classifier_exports_serve_early_exit():
    from helpers import assert_export_roundtrip

    model = _adaglimpse()
    x = np.random.default_rng(4).uniform(size=(2, 16, 16, 1)).astype("float32")
    assert_export_roundtrip(model, x, num_samples=2)  # checks serve_early_exit at p = 1
