import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.recurrent_core import RecurrentCore


def test_rnn_is_relu_rnn():
    core = RecurrentCore(4, "rnn")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5)).astype("float32")
    h0 = rng.normal(size=(3, 4)).astype("float32")
    out, states = core(x, [h0])
    w, u, b = (v.numpy() for v in core.cell.weights)
    expected = np.maximum(x @ w + h0 @ u + b, 0)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(states[0], expected, atol=1e-5)


@pytest.mark.parametrize("cell_type,num_states", [("rnn", 1), ("lstm", 2), ("gru", 1)])
def test_state_api(cell_type, num_states):
    core = RecurrentCore(6, cell_type)
    states = core.get_initial_state(3)
    assert isinstance(states, list) and len(states) == num_states == core.num_states
    assert all(s.shape == (3, 6) and not np.any(s) for s in states)
    out, new = core(np.ones((3, 2), "float32"), states)
    assert out.shape == (3, 6) and isinstance(new, list) and len(new) == num_states
    with pytest.raises(ValueError, match="state"):
        core(np.ones((3, 2), "float32"), states + states)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_unrolled_loop_in_jit_tf_function(cell_type):
    core = RecurrentCore(5, cell_type)
    xs = np.random.default_rng(1).normal(size=(4, 3, 2)).astype("float32")

    def unroll(x):
        states = core.get_initial_state(tf.shape(x)[0])  # dynamic batch size
        outs = []
        for t in range(3):
            h, states = core(x[:, t], states)
            outs.append(h)
        return tf.stack(outs, axis=1)

    helpers.assert_jit_compiles(unroll, xs)
    # gradients flow through the unrolled loop
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.function(unroll, jit_compile=True)(xs))
    grads = tape.gradient(loss, core.trainable_variables)
    assert all(g is not None for g in grads)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_roundtrips(cell_type):
    core = RecurrentCore(4, cell_type)
    helpers.assert_config_roundtrip(core)
    xi = keras.Input((3,))
    si = [keras.Input((4,)) for _ in range(core.num_states)]
    out, new = RecurrentCore(4, cell_type)(xi, si)
    model = keras.Model([xi] + si, [out] + new)
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(2, 3)).astype("float32")] + [
        rng.normal(size=(2, 4)).astype("float32") for _ in si]
    helpers.assert_keras_roundtrip(model, data)


@pytest.mark.parametrize("kwargs", [{"units": 0}, {"units": 4, "cell_type": "transformer"}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        RecurrentCore(**kwargs)
