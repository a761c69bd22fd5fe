"""The one policy vocabulary and the one evaluation loop (`GlimpseModel.evaluate_policy`).

The `_old_*` functions are the per-method dataset loops the shared loop
replaced, kept here as references: the delegating helpers must return the
same numbers on tiny models (stochastic runs restart from the same RNG state).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.models.adaglimpse import AdaGlimpse
from keras_glimpse.models.glimpse_model import POLICIES, resolve_policy
from keras_glimpse.models.ordinal import OrdinalLocalizer
from keras_glimpse.models.ram import RAM, URAM, reconstruction_errors
from keras_glimpse.models.recap import RECAP
from keras_glimpse.objectives import box_dynamics, triplet

SMALL = dict(num_glimpses=3, glimpse_size=4, num_scales=2, glimpse_units=8, location_units=8,
             hidden_units=16, location_hidden_units=8, seed=1)


def _rng_state(model):
    return [v.numpy().copy() for v in model.non_trainable_variables]


def _restore(model, state):
    for v, s in zip(model.non_trainable_variables, state):
        v.assign(s)


def _same(model, old, new):
    """Runs `old()` and `new()` from the same RNG state; returns both results."""
    state = _rng_state(model)
    a = old()
    _restore(model, state)
    return a, new()


def _assert_equal(a, b):
    assert set(a) <= set(b) | {"per_example"}, (a, b)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


# ------------------------------------------------------------- references (old loops)
def _old_accuracy(fn, dataset, prep=lambda x: x):
    correct = total = 0
    for x, y in dataset:
        pred = tf.argmax(fn(prep(x)), -1, output_type=tf.int32)
        correct += int(tf.reduce_sum(tf.cast(pred == tf.cast(y, tf.int32), tf.int32)))
        total += int(tf.shape(y)[0])
    acc = correct / max(total, 1)
    return {"accuracy": acc, "error": 100.0 * (1.0 - acc), "count": total}


def _old_ram_policy(model, ds, policy, mode):
    fn = tf.function(lambda x: model.rollout(x, mode=mode, policy=policy)["predictions"])
    return _old_accuracy(fn, ds, model._images)


def _old_monte_carlo(model, ds, m):
    fn = tf.function(lambda x: model.export_outputs(x, "sample", m)["predictions"])
    return _old_accuracy(fn, ds)


def _old_curve(model, ds, mode, policy):
    fn = tf.function(lambda x: tf.reduce_sum(reconstruction_errors(
        x, model.rollout(x, mode=mode, policy=policy)["reconstructions"]), axis=0))
    total, count = np.zeros(model.num_glimpses + 1), 0
    for batch in ds:
        x = model._images(batch[0])
        total += np.asarray(fn(x), np.float64)
        count += int(x.shape[0])
    return total / max(count, 1)


def _old_localization(model, ds, mode, threshold=0.5):
    fn = tf.function(lambda x: model.rollout(x, mode=mode, training=False)["predictions"])
    ious = np.concatenate([box_dynamics.box_iou(fn(x), b).numpy() for x, b in ds])
    return {"accuracy": 100.0 * float(np.mean(ious >= threshold)),
            "mean_iou": float(np.mean(ious)), "count": int(len(ious))}


def _old_ordinal(model, ds):
    fn = tf.function(lambda x, b: model._pretrain_losses(x, b, training=False)[1])
    inst, proto = [], []
    for x, boxes in ds:
        args = fn(model.check_images(x), tf.cast(boxes, tf.float32))
        inst.append(triplet.ordinal_accuracy(*args).numpy())
        proto.append(triplet.ordinal_accuracy(*args, prototype=True).numpy())
    return {"ord_acc_inst": 100.0 * float(np.mean(np.concatenate(inst))),
            "ord_acc_proto": 100.0 * float(np.mean(np.concatenate(proto))),
            "count": int(sum(len(v) for v in inst))}


def _old_adaglimpse(model, ds, policy):
    fn = tf.function(lambda x, y: model._episode(
        x, y, mode="greedy", policy=policy,
        early_stop=model.early_stop_threshold if model.task == "classification" else None))
    scores, glimpses = [], 0.0
    for x, y in ds:
        out = fn(tf.cast(x, tf.float32), y)
        if model.task == "reconstruction":
            score = -out["scores"][:, -1]
        else:
            pred = tf.argmax(out["predictions"], -1, output_type=tf.int32)
            score = tf.cast(pred == tf.cast(tf.reshape(y, [-1]), tf.int32), tf.float32)
            glimpses += float(tf.reduce_sum(out["num_glimpses"]))
        scores.append(score.numpy())
    scores = np.concatenate(scores)
    n = len(scores)
    if model.task == "reconstruction":
        result = {"rmse": math.sqrt(float(np.sum(np.square(scores))) / max(n, 1))}
    else:
        result = {"accuracy": float(np.sum(scores)) / max(n, 1), "avg_glimpses": glimpses / n}
    result["count"] = n
    result["per_example"] = scores
    return result


# ------------------------------------------------------------------ vocabulary
def test_one_vocabulary_and_clear_errors():
    assert POLICIES == ("learned", "random", "center", "grid")
    assert resolve_policy(None, ("learned",)) == "learned"
    assert resolve_policy("actor", ("learned", "grid")) == "learned"
    with pytest.raises(ValueError, match=r"\('learned', 'random'\).*policy='grid'"):
        resolve_policy("grid", ("learned", "random"), owner="OrdinalLocalizer")
    for cls, supported in ((RAM, ("learned", "random", "center")),
                           (URAM, ("learned", "random", "center")),
                           (RECAP, ("learned", "random")),
                           (OrdinalLocalizer, ("learned", "random")),
                           (AdaGlimpse, ("learned", "random", "grid"))):
        assert cls.supported_policies == supported
        assert set(supported) <= set(POLICIES)


# ------------------------------------------------------------------ RAM / URAM
def test_ram_evaluations_equal_the_old_loops():
    model = RAM(image_shape=(16, 16, 1), num_classes=3, **SMALL)
    model.build_from_image_shape()
    x = np.random.default_rng(0).random((7, 16, 16, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(7) % 3)).batch(3)
    for policy in ("learned", "random", "center", None):
        for mode in ("greedy", "sample"):
            old, new = _same(model, lambda: _old_ram_policy(model, ds, policy, mode),
                             lambda: model.evaluate_policy(ds, policy=policy, mode=mode))
            _assert_equal(old, new)
    for m in (1, 3):
        old, new = _same(model, lambda: _old_monte_carlo(model, ds, m),
                         lambda: model.evaluate_monte_carlo(ds, num_samples=m))
        _assert_equal(old, new)
    assert model.evaluate_policy(ds, steps=1)["count"] == 3
    per = model.evaluate_policy(ds, per_example=True)["per_example"]
    pred = np.argmax(model.rollout(tf.constant(x))["predictions"], -1)
    np.testing.assert_array_equal(per, (pred == np.arange(7) % 3).astype(int))
    with pytest.raises(ValueError, match="policy='grid'"):
        model.evaluate_policy(ds, policy="grid")
    with pytest.raises(ValueError, match="mode='best'"):
        model.evaluate_policy(ds, mode="best")


def test_uram_curve_equals_the_old_loop():
    model = URAM(image_shape=(12, 12, 3), **SMALL)
    model.build_from_image_shape()
    x = np.random.default_rng(1).random((5, 12, 12, 3)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(5) % 2)).batch(2)
    for policy, mode in ((None, "greedy"), ("random", "greedy"), ("learned", "sample")):
        old, new = _same(model, lambda: _old_curve(model, ds, mode, policy),
                         lambda: model.reconstruction_curve(ds, mode=mode, policy=policy))
        np.testing.assert_array_equal(old, new)
    result = model.evaluate_policy(ds, per_example=True)
    assert result["count"] == 5 and result["per_example"].shape == (5,)
    assert result["reconstruction_mse"] == pytest.approx(result["curve"][-1])
    np.testing.assert_allclose(result["per_example"].mean(), result["curve"][-1], rtol=1e-5)


# ------------------------------------------------------------------ RECAP (default scorer)
def test_recap_evaluate_policy_scores_the_greedy_class():
    model = RECAP(image_size=16, patch_size=4, stride=4, num_steps=3, embed_dim=8, gate_units=8,
                  policy_units=8, value_units=8, attention_dropout=0.0, seed=3)
    rng = np.random.default_rng(0)
    x = rng.random((5, 16, 16, 1)).astype("float32")
    y = rng.integers(0, 10, size=(5,)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    result = model.evaluate_policy(ds, per_example=True)
    pred = np.argmax(model.rollout(x)["predictions"], -1)
    np.testing.assert_array_equal(result["per_example"], (pred == y).astype(int))
    assert result["accuracy"] == pytest.approx(float(np.mean(pred == y)))
    assert model.evaluate_policy(ds, policy="random", mode="sample")["count"] == 5
    with pytest.raises(ValueError, match="policy='center'"):
        model.rollout(x, policy="center")


# ------------------------------------------------------------------ ordinal
def test_ordinal_evaluations_equal_the_old_loops():
    model = OrdinalLocalizer(image_shape=(44, 44, 1), num_steps=3, hidden_units=4,
                             embedding_dim=8, fc_units=16, pooling_size=2, min_side=12, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 44, 44, 1)).astype("float32")
    corner = rng.integers(0, 17, size=(5, 2))
    boxes = np.concatenate([corner, corner + 27], axis=1).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, boxes)).batch(2)
    for mode in ("greedy", "sample"):
        old, new = _same(model, lambda: _old_localization(model, ds, mode, 0.3),
                         lambda: model.evaluate_localization(ds, mode=mode, threshold=0.3))
        _assert_equal(old, new)
    old, new = _same(model, lambda: _old_ordinal(model, ds), lambda: model.evaluate_ordinal(ds))
    _assert_equal(old, new)
    out = model.rollout(tf.constant(x), policy="random")
    assert out["boxes"].shape == (5, 4, 4)
    assert model.evaluate_localization(ds, policy="random")["count"] == 5
    with pytest.raises(ValueError, match=r"\('learned', 'random'\).*policy='grid'"):
        model.rollout(tf.constant(x), policy="grid")


# ------------------------------------------------------------------ AdaGlimpse
ADA = dict(image_shape=(16, 16, 1), num_glimpses=2, grid_size=1, patch_size=8,
           backbone_size="tiny", decoder_dim=16, decoder_depth=1, decoder_heads=2,
           hidden_units=16, rl_batch_size=4, replay_capacity=32, init_random_steps=0,
           freeze_backbone_epochs=1, seed=0)


# (reconstruction: 2 min of CPU, in `make test-slow`; classification runs by default)
@pytest.mark.parametrize("task", [pytest.param("reconstruction", marks=pytest.mark.slow),
                                  "classification"])
def test_adaglimpse_evaluate_policy_equals_the_old_loop(task):
    kw = {"task": task, "num_classes": 3} if task == "classification" else {}
    model = AdaGlimpse(**ADA, **kw)
    model.build_from_image_shape()
    x = tf.random.stateless_uniform((5, 16, 16, 1), [1, 2])
    y = x if task == "reconstruction" else tf.constant([0, 1, 2, 0, 1])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    for old_name, new_name in (("actor", "actor"), ("actor", "learned"), ("actor", None),
                               ("grid", "grid"), ("random", "random")):
        old, new = _same(model, lambda: _old_adaglimpse(model, ds, old_name),
                         lambda: model.evaluate_policy(ds, policy=new_name, per_example=True))
        _assert_equal(old, new)
    with pytest.raises(ValueError, match="policy='center'"):
        model.rollout(x, policy="center")
    keras.backend.clear_session()
