import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.gaussian_location_head import GaussianLocationHead


def _head(std=0.2, bias=(0.3, -0.5), seed=0):
    """A linear head whose mean is tanh(bias) for every input."""
    head = GaussianLocationHead(std=std, hidden_units=None, seed=seed)
    head.build((None, 4))
    head.mean_dense.kernel.assign(np.zeros((4, 2), "float32"))
    head.mean_dense.bias.assign(np.asarray(bias, "float32"))
    return head


def _gauss_logpdf(x, mu, std):
    return -0.5 * ((x - mu) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def test_sample_log_prob_entropy_match_hand_computation():
    head = _head(std=0.2)
    out = head(np.ones((5, 4), "float32"), mode="sample")
    mean = np.tanh([0.3, -0.5])
    np.testing.assert_allclose(out["mean"], np.tile(mean, (5, 1)), atol=1e-6)
    raw = out["raw_action"].numpy()
    assert not np.allclose(raw, out["mean"])  # noise was added
    np.testing.assert_allclose(out["log_prob"], _gauss_logpdf(raw, mean, 0.2).sum(-1), atol=1e-5)
    entropy = 2 * (0.5 + 0.5 * math.log(2 * math.pi) + math.log(0.2))
    np.testing.assert_allclose(out["entropy"], np.full(5, entropy), atol=1e-5)
    np.testing.assert_allclose(out["action"], np.clip(raw, -1, 1))


def test_greedy_is_mean():
    head = _head(std=0.05)
    out = head(np.ones((3, 4), "float32"), mode="greedy")
    np.testing.assert_allclose(out["action"], out["mean"])
    np.testing.assert_allclose(out["log_prob"], np.full(3, 2 * _gauss_logpdf(0.0, 0.0, 0.05)),
                               atol=1e-4)


def test_action_clamped_raw_is_not():
    head = _head(std=3.0, bias=(2.0, -2.0))
    out = head(np.ones((256, 4), "float32"))
    raw, action = out["raw_action"].numpy(), out["action"].numpy()
    assert np.abs(raw).max() > 1.0
    assert action.min() >= -1.0 and action.max() <= 1.0


def test_sample_statistics():
    head = _head(std=0.1, bias=(0.0, 0.0))
    raw = head(np.ones((4000, 4), "float32"))["raw_action"].numpy()
    np.testing.assert_allclose(raw.mean(0), [0, 0], atol=0.01)
    np.testing.assert_allclose(raw.std(0), [0.1, 0.1], atol=0.01)


def test_gradient_is_score_function_and_action_is_detached():
    head = _head(std=0.2)
    x = np.ones((6, 4), "float32")
    with tf.GradientTape(persistent=True) as tape:
        out = head(x, mode="sample")
        logp = tf.reduce_sum(out["log_prob"])
        act = tf.reduce_sum(out["action"])
    g_bias = tape.gradient(logp, head.mean_dense.bias).numpy()
    mean, raw = out["mean"].numpy(), out["raw_action"].numpy()
    # d/db sum log N(raw; tanh(b), std) = sum (raw - mean)/std^2 * (1 - mean^2)
    expected = ((raw - mean) / 0.04 * (1 - mean ** 2)).sum(0)
    np.testing.assert_allclose(g_bias, expected, rtol=1e-4, atol=1e-4)
    assert tape.gradient(act, head.mean_dense.bias) is None


def test_seeded_reproducibility():
    x = np.ones((4, 4), "float32")
    a = _head(seed=3)(x)["raw_action"].numpy()
    b = _head(seed=3)(x)["raw_action"].numpy()
    c = _head(seed=4)(x)["raw_action"].numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    h = _head(seed=3)
    assert not np.allclose(h(x)["raw_action"], h(x)["raw_action"])  # the state advances


def test_jit_compile():
    head = GaussianLocationHead(std=0.1, hidden_units=8, seed=0)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    helpers.assert_jit_compiles(lambda f: head(f, mode="greedy"), x)
    with helpers.deterministic_sampling():
        helpers.assert_jit_compiles(lambda f: head(f, mode="sample"), x)
    out = tf.function(lambda f: head(f, mode="sample"), jit_compile=True)(x)
    assert out["action"].shape == (3, 2)


def test_roundtrips_and_validation():
    head = GaussianLocationHead(std=0.17, hidden_units=8, seed=5)
    clone = helpers.assert_config_roundtrip(head)
    assert clone.get_config()["std"] == 0.17 and clone.seed == 5
    inp = keras.Input((5,))
    model = keras.Model(inp, GaussianLocationHead(std=0.1, hidden_units=8, seed=1)(
        inp, mode="greedy"))
    helpers.assert_keras_roundtrip(model, np.ones((2, 5), "float32"))
    for kwargs in ({"std": 0.0}, {"hidden_units": 0}, {"seed": "a"}):
        with pytest.raises(ValueError, match="received"):
            GaussianLocationHead(**kwargs)
    with pytest.raises(ValueError, match="mode"):
        head(np.ones((2, 5), "float32"), mode="mean")


def test_saved_model_roundtrip():
    head = GaussianLocationHead(std=0.1, hidden_units=8, seed=2)
    x = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    helpers.assert_layer_saved_model_roundtrip(head, x, call=lambda l, f: l(f, mode="greedy"))
