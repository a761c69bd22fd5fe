import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.categorical_head import CategoricalHead

LOGITS = np.array([0.5, -1.0, 2.0, 0.0], "float32")


def _head(seed=0, **kwargs):
    head = CategoricalHead(num_actions=4, seed=seed, **kwargs)
    head.build((None, 3))
    head.logits_dense.kernel.assign(np.zeros((3, 4), "float32"))
    head.logits_dense.bias.assign(LOGITS)
    return head


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_log_prob_and_entropy_match_hand_computation():
    out = _head()(np.ones((6, 3), "float32"), mode="sample")
    logp = _log_softmax(LOGITS)
    a = out["action"].numpy()
    assert out["action"].dtype == tf.int32
    np.testing.assert_allclose(out["log_prob"], logp[a], atol=1e-5)
    np.testing.assert_allclose(out["entropy"], np.full(6, -(np.exp(logp) * logp).sum()), atol=1e-5)
    np.testing.assert_allclose(out["probs"], np.tile(np.exp(logp), (6, 1)), atol=1e-6)
    np.testing.assert_array_equal(out["greedy"], np.full(6, 2))


def test_mask_excludes_actions():
    head = _head()
    mask = np.array([[False, False, True, False], [True, True, True, False]] * 500)
    out = head(np.ones((1000, 3), "float32"), mode="sample", mask=mask)
    a = out["action"].numpy()
    assert not np.any(mask[np.arange(1000), a])
    np.testing.assert_array_equal(a[1::2], 3)  # only one allowed action
    np.testing.assert_allclose(out["log_prob"].numpy()[1::2], 0.0, atol=1e-6)
    masked = LOGITS.copy()
    masked[2] = -np.inf
    logp = _log_softmax(masked)
    np.testing.assert_allclose(out["log_prob"].numpy()[0::2], logp[a[0::2]], atol=1e-5)
    ent = -(np.exp(logp[[0, 1, 3]]) * logp[[0, 1, 3]]).sum()
    np.testing.assert_allclose(out["entropy"].numpy()[0::2], ent, atol=1e-5)
    assert out["logits"].numpy()[0, 2] < -1e8
    greedy = head(np.ones((2, 3), "float32"), mode="greedy", mask=mask[:2])["action"].numpy()
    np.testing.assert_array_equal(greedy, [0, 3])
    # masked entries give finite gradients
    with tf.GradientTape() as tape:
        o = head(np.ones((4, 3), "float32"), mask=mask[:4])
        loss = tf.reduce_sum(o["log_prob"] + o["entropy"])
    assert np.all(np.isfinite(tape.gradient(loss, head.logits_dense.bias)))


def test_gumbel_max_frequencies():
    out = _head(seed=1)(np.ones((8000, 3), "float32"))
    freq = np.bincount(out["action"].numpy(), minlength=4) / 8000
    np.testing.assert_allclose(freq, np.exp(_log_softmax(LOGITS)), atol=0.02)


def test_log_prob_gradient():
    head = _head()
    with tf.GradientTape() as tape:
        out = head(np.ones((5, 3), "float32"))
        loss = tf.reduce_sum(out["log_prob"])
    p = np.exp(_log_softmax(LOGITS))
    onehot = np.eye(4)[out["action"].numpy()]
    np.testing.assert_allclose(tape.gradient(loss, head.logits_dense.bias), (onehot - p).sum(0),
                               atol=1e-5)


def test_zero_init_last_inputs():
    head = CategoricalHead(6, hidden_units=5, zero_init_last_inputs=2, seed=0)
    head(np.ones((2, 7), "float32"))
    k = head.hidden_dense.kernel.numpy()
    assert np.all(k[-2:] == 0) and np.any(k[:-2] != 0)
    assert np.all(head.hidden_dense.bias.numpy() == 0)
    lin = CategoricalHead(6, zero_init_last_inputs=3, seed=0)
    lin(np.ones((2, 7), "float32"))
    assert np.all(lin.logits_dense.kernel.numpy()[-3:] == 0)
    with pytest.raises(ValueError, match="exceeds"):
        CategoricalHead(6, zero_init_last_inputs=9)(np.ones((2, 7), "float32"))


def test_seeded_reproducibility_and_deterministic_sampling():
    x = np.ones((32, 3), "float32")
    a = _head(seed=2)(x)["action"].numpy()
    np.testing.assert_array_equal(a, _head(seed=2)(x)["action"].numpy())
    assert not np.array_equal(a, _head(seed=9)(x)["action"].numpy())
    with helpers.deterministic_sampling():  # constant Gumbel noise -> the arg-max
        np.testing.assert_array_equal(_head()(x)["action"], np.full(32, 2))


def test_jit_and_roundtrips():
    head = CategoricalHead(5, hidden_units=8, zero_init_last_inputs=2, seed=0)
    x = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    mask = np.array([[True, False, False, False, False]] * 3)
    helpers.assert_jit_compiles(lambda f, m: head(f, mode="greedy", mask=m), x, mask)
    with helpers.deterministic_sampling():
        helpers.assert_jit_compiles(lambda f, m: head(f, mode="sample", mask=m), x, mask)
    out = tf.function(lambda f, m: head(f, mask=m), jit_compile=True)(x, mask)
    assert out["action"].shape == (3,) and np.all(out["action"].numpy() != 0)
    helpers.assert_config_roundtrip(head)
    inp = keras.Input((6,))
    model = keras.Model(inp, CategoricalHead(5, hidden_units=8, seed=1)(inp, mode="greedy"))
    helpers.assert_keras_roundtrip(model, x)


@pytest.mark.parametrize("kwargs", [{"num_actions": 0}, {"num_actions": 3, "hidden_units": -2},
                                    {"num_actions": 3, "zero_init_last_inputs": -1},
                                    {"num_actions": 3, "seed": "x"}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        CategoricalHead(**kwargs)
    with pytest.raises(ValueError, match="mode"):
        _head()(np.ones((1, 3), "float32"), mode="argmax")


def test_saved_model_roundtrip():
    head = CategoricalHead(5, hidden_units=8, seed=2)
    x = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
    helpers.assert_layer_saved_model_roundtrip(head, x, call=lambda l, f: l(f, mode="greedy"))
