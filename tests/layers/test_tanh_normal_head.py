import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.tanh_normal_head import TanhNormalHead


def _head(loc, pre_scale, low=0.0, high=1.0, seed=0, min_std=0.01):
    head = TanhNormalHead(action_dim=len(loc), hidden_units=None, low=low, high=high,
                          min_std=min_std, seed=seed)
    head.build((None, 2))
    head.params_dense.kernel.assign(np.zeros((2, 2 * len(loc)), "float32"))
    head.params_dense.bias.assign(np.asarray(list(loc) + list(pre_scale), "float32"))
    return head


def _hand_log_prob(u, mu, sigma, low, high):
    normal = -0.5 * ((u - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)
    return (normal - np.log(1 - np.tanh(u) ** 2) - math.log((high - low) / 2)).sum(-1)


def test_std_is_half_at_zero_preactivation():
    out = _head([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])(np.ones((2, 2), "float32"))
    np.testing.assert_allclose(out["scale"], 0.5, atol=1e-6)
    out = _head([0.0], [-30.0], min_std=0.01)(np.ones((2, 2), "float32"))
    np.testing.assert_allclose(out["scale"], 0.01, atol=1e-6)  # the floor


def test_sample_matches_hand_computation():
    low, high = -2.0, 4.0
    head = _head([0.3, -0.7, 1.2], [0.2, -1.0, 0.5], low=low, high=high)
    out = head(np.ones((6, 2), "float32"), mode="sample")
    mu = np.array([0.3, -0.7, 1.2])
    c = math.log(math.expm1(0.49))
    sigma = np.log1p(np.exp(np.array([0.2, -1.0, 0.5]) + c)) + 0.01
    np.testing.assert_allclose(out["loc"], np.tile(mu, (6, 1)), atol=1e-6)
    np.testing.assert_allclose(out["scale"], np.tile(sigma, (6, 1)), atol=1e-6)
    u = out["raw_action"].numpy()
    assert not np.allclose(u, out["loc"])
    np.testing.assert_allclose(out["action"], low + (high - low) * (0.5 + 0.5 * np.tanh(u)),
                               atol=1e-5)
    np.testing.assert_allclose(out["log_prob"], _hand_log_prob(u, mu, sigma, low, high),
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["mean"], np.tile(low + (high - low) * (0.5 + 0.5 * np.tanh(mu)),
                                                    (6, 1)), atol=1e-5)


def test_log_prob_matches_tfp_change_of_variables():
    import tensorflow_probability as tfp

    head = _head([0.1, -0.4], [0.0, 0.3])
    out = head(np.ones((5, 2), "float32"))
    tfd, tfb = tfp.distributions, tfp.bijectors
    dist = tfd.TransformedDistribution(
        tfd.Normal(out["loc"], out["scale"]),
        tfb.Chain([tfb.Shift(0.5), tfb.Scale(0.5), tfb.Tanh()]))
    np.testing.assert_allclose(out["log_prob"],
                               tf.reduce_sum(dist.log_prob(out["action"]), -1), atol=1e-3)


def test_greedy_and_numerical_stability():
    head = _head([25.0, -25.0], [0.0, 0.0])
    out = head(np.ones((2, 2), "float32"), mode="greedy")
    np.testing.assert_allclose(out["action"], out["mean"])
    np.testing.assert_allclose(out["action"], [[1.0, 0.0]] * 2, atol=1e-6)
    lp = out["log_prob"].numpy()
    # naive log(1 - tanh^2(25)) is -inf in float32; the stable form is finite
    expected = 2 * (-math.log(0.5) - 0.5 * math.log(2 * math.pi)
                    - 2 * (math.log(2) - 25 - math.log1p(math.exp(-50))) - math.log(0.5))
    np.testing.assert_allclose(lp, expected, rtol=1e-5)
    out = head(np.ones((64, 2), "float32"), mode="sample")
    a = out["action"].numpy()
    assert np.all(np.isfinite(out["log_prob"])) and a.min() >= 0.0 and a.max() <= 1.0


def test_reparameterised_gradient():
    head = _head([0.2], [0.0])
    with tf.GradientTape(persistent=True) as tape:
        out = head(np.ones((4, 2), "float32"))
        a = tf.reduce_sum(out["action"])
        lp = tf.reduce_sum(out["log_prob"])
    g = tape.gradient(a, head.params_dense.bias).numpy()
    u, sigma = out["raw_action"].numpy(), out["scale"].numpy()
    eps = (u - 0.2) / sigma
    dadu = 0.5 * (1 - np.tanh(u) ** 2)
    np.testing.assert_allclose(g[0], dadu.sum(), rtol=1e-4)  # d a / d mu
    s = 1 / (1 + np.exp(-math.log(math.expm1(0.49))))  # d sigma / d pre
    np.testing.assert_allclose(g[1], (dadu * eps * s).sum(), rtol=1e-4)
    assert np.all(np.isfinite(tape.gradient(lp, head.params_dense.bias)))


def test_seeded_reproducibility():
    x = np.ones((4, 2), "float32")
    a = _head([0.0], [0.0], seed=3)(x)["action"].numpy()
    np.testing.assert_array_equal(a, _head([0.0], [0.0], seed=3)(x)["action"].numpy())
    assert not np.allclose(a, _head([0.0], [0.0], seed=4)(x)["action"].numpy())


def test_jit_and_roundtrips():
    head = TanhNormalHead(action_dim=3, hidden_units=8, seed=0)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    helpers.assert_jit_compiles(lambda f: head(f, mode="greedy"), x)
    with helpers.deterministic_sampling():
        helpers.assert_jit_compiles(lambda f: head(f, mode="sample"), x)
    assert tf.function(lambda f: head(f), jit_compile=True)(x)["action"].shape == (3, 3)
    helpers.assert_config_roundtrip(head)
    inp = keras.Input((5,))
    model = keras.Model(inp, TanhNormalHead(3, hidden_units=8, low=-1.0, seed=1)(
        inp, mode="greedy"))
    helpers.assert_keras_roundtrip(model, x)


@pytest.mark.parametrize("kwargs", [{"action_dim": 0}, {"hidden_units": 0},
                                    {"low": 1.0, "high": 1.0}, {"min_std": 0.6},
                                    {"min_std": -0.1}, {"seed": 0.5}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        TanhNormalHead(**kwargs)


def test_saved_model_roundtrip():
    head = TanhNormalHead(3, hidden_units=8, seed=2)
    x = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    helpers.assert_layer_saved_model_roundtrip(head, x, call=lambda l, f: l(f, mode="greedy"))
