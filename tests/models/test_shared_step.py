"""RAM and URAM share one train/test step (`_RecurrentAttention`); only the loss differs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.models.ram import RAM, URAM, ram_loss, uram_loss

SMALL = dict(num_glimpses=3, glimpse_size=4, num_scales=2, glimpse_units=8, location_units=8,
             hidden_units=16, location_hidden_units=8, seed=1)
LR = 0.5


def _ram():
    return RAM(image_shape=(16, 16, 1), num_classes=3, **SMALL), (8, 16, 16, 1)


def _uram():
    return URAM(image_shape=(12, 12, 3), **SMALL), (8, 12, 12, 3)


def _terms(model, x, y, out):
    if isinstance(model, URAM):
        return uram_loss(x, out["reconstructions"], out["log_probs"], out["baselines"],
                         model.reinforce_weight, model.discount)
    return ram_loss(out["predictions"], y, out["log_probs"], out["baselines"],
                    model.reinforce_weight)


@pytest.mark.parametrize("make", [_ram, _uram])
def test_one_sgd_step_follows_the_method_loss(make):
    """The shared step's update is -lr * grad(mean total loss of the method) on the
    sampled rollout, and its logs average the method's terms."""
    model, shape = make()
    model.build_from_image_shape()
    model.compile(optimizer=keras.optimizers.SGD(LR))
    x = tf.constant(np.random.default_rng(0).random(shape).astype("float32"))
    y = tf.constant(np.arange(shape[0]) % 3)
    rng = [v.numpy().copy() for v in model.non_trainable_variables]
    variables = model.trainable_variables
    before = [v.numpy().copy() for v in variables]
    with tf.GradientTape() as tape:
        out = model.rollout(x, mode="sample", training=True)
        terms = _terms(model, x, y, out)
        loss = tf.reduce_mean(terms["total"])
    grads = tape.gradient(loss, variables)
    # The REINFORCE term moves the location head (so its sign is checked below).
    head = {id(v) for v in model.location_head.trainable_variables}
    assert any(float(tf.reduce_max(tf.abs(g))) > 0
               for v, g in zip(variables, grads) if id(v) in head and g is not None)
    for v, r in zip(model.non_trainable_variables, rng):
        v.assign(r)
    logs = model.train_step((x, y))
    for v, b, g in zip(variables, before, grads):
        expected = b if g is None else b - LR * g.numpy()
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-4, atol=1e-6, err_msg=v.path)
    second = "accuracy" if isinstance(model, RAM) else "reconstruction_mse"
    np.testing.assert_allclose(float(logs["loss"]), float(loss), rtol=1e-5)
    np.testing.assert_allclose(
        float(logs[second]),
        float(tf.reduce_mean(terms["reward" if isinstance(model, RAM) else "final_mse"])),
        rtol=1e-5)
    np.testing.assert_allclose(float(logs["reward"]), float(tf.reduce_mean(terms["reward"])),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(logs["baseline_loss"]),
                               float(tf.reduce_mean(terms["baseline"])), rtol=1e-5)


@pytest.mark.parametrize("make", [_ram, _uram])
def test_test_step_uses_the_greedy_rollout(make):
    model, shape = make()
    model.build_from_image_shape()
    model.compile(optimizer=keras.optimizers.SGD(LR))
    x = tf.constant(np.random.default_rng(1).random(shape).astype("float32"))
    y = tf.constant(np.arange(shape[0]) % 3)
    out = model.rollout(x, mode="greedy")
    terms = _terms(model, x, y, out)
    logs = model.test_step((x, y))
    np.testing.assert_allclose(float(logs["loss"]), float(tf.reduce_mean(terms["total"])),
                               rtol=1e-5)
