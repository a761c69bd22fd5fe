import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.bernoulli_patch_head import BernoulliPatchHead

LOGITS = np.array([-2.0, -0.1, 0.0, 0.4, 3.0], "float32")


def _head(alpha=0.8, seed=0):
    head = BernoulliPatchHead(num_patches=5, alpha=alpha, seed=seed)
    head.build((None, 3))
    head.logits_dense.kernel.assign(np.zeros((3, 5), "float32"))
    head.logits_dense.bias.assign(LOGITS)
    return head


def _hand_log_prob(a, p):
    return a * np.log(p) + (1 - a) * np.log(1 - p)


def test_sample_mode_matches_hand_computation():
    out = _head(alpha=0.8)(np.ones((7, 3), "float32"), mode="sample")
    s = 1 / (1 + np.exp(-LOGITS))
    bounded = 0.8 * s + 0.2 * (1 - s)
    np.testing.assert_allclose(out["probs"], np.tile(bounded, (7, 1)), atol=1e-6)
    assert out["probs"].numpy().min() >= 0.2 - 1e-6 and out["probs"].numpy().max() <= 0.8 + 1e-6
    a = out["action"].numpy()
    assert set(np.unique(a)) <= {0.0, 1.0}
    per_patch = _hand_log_prob(a, bounded)
    np.testing.assert_allclose(out["log_prob_per_patch"], per_patch, atol=1e-5)
    np.testing.assert_allclose(out["log_prob"], per_patch.sum(-1), atol=1e-5)
    ent = -(bounded * np.log(bounded) + (1 - bounded) * np.log(1 - bounded)).sum()
    np.testing.assert_allclose(out["entropy"], np.full(7, ent), atol=1e-5)
    np.testing.assert_array_equal(out["greedy"], np.tile([0, 0, 1, 1, 1], (7, 1)))


def test_greedy_mode_is_unbounded_threshold():
    out = _head(alpha=0.8)(np.ones((2, 3), "float32"), mode="greedy")
    s = 1 / (1 + np.exp(-LOGITS))
    np.testing.assert_array_equal(out["action"], np.tile([0, 0, 1, 1, 1], (2, 1)))
    np.testing.assert_array_equal(out["greedy"], out["action"])
    np.testing.assert_allclose(out["probs"], np.tile(s, (2, 1)), atol=1e-6)
    np.testing.assert_allclose(out["log_prob"], np.full(2, _hand_log_prob(
        np.array([0, 0, 1, 1, 1]), s).sum()), atol=1e-5)


def test_sampling_frequency_and_extreme_probabilities():
    head = _head(alpha=1.0)
    head.logits_dense.bias.assign(np.array([-1.0, 0.0, 1.0, -40.0, 40.0], "float32"))
    out = head(np.ones((4000, 3), "float32"))
    freq = out["action"].numpy().mean(0)
    np.testing.assert_allclose(freq[:3], 1 / (1 + np.exp(-np.array([-1.0, 0.0, 1.0]))), atol=0.03)
    assert freq[3] == 0.0 and freq[4] == 1.0
    assert np.all(np.isfinite(out["log_prob"])) and np.all(np.isfinite(out["entropy"]))


def test_gradient_flows_to_logits_only_through_log_prob():
    head = _head()
    with tf.GradientTape() as tape:
        out = head(np.ones((8, 3), "float32"))
        loss = tf.reduce_sum(out["log_prob"])
    g = tape.gradient(loss, head.logits_dense.bias).numpy()
    s = 1 / (1 + np.exp(-LOGITS))
    p = 0.8 * s + 0.2 * (1 - s)
    a = out["action"].numpy()
    # d/dz [a log p + (1-a) log(1-p)] with p = 0.2 + 0.6 s, ds/dz = s(1-s)
    dlogp_dp = a / p - (1 - a) / (1 - p)
    np.testing.assert_allclose(g, (dlogp_dp * 0.6 * s * (1 - s)).sum(0), rtol=1e-4, atol=1e-5)


def test_seeded_reproducibility_and_deterministic_sampling():
    x = np.ones((16, 3), "float32")
    a = _head(seed=7)(x)["action"].numpy()
    np.testing.assert_array_equal(a, _head(seed=7)(x)["action"].numpy())
    assert not np.array_equal(a, _head(seed=8)(x)["action"].numpy())
    with helpers.deterministic_sampling():  # u = 0.37 everywhere
        out = _head()(x)
    np.testing.assert_array_equal(out["action"], (out["probs"].numpy() > 0.37).astype("float32"))


def test_jit_and_roundtrips():
    head = BernoulliPatchHead(num_patches=4, seed=0)
    x = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    helpers.assert_jit_compiles(lambda f: head(f, mode="greedy"), x)
    with helpers.deterministic_sampling():
        helpers.assert_jit_compiles(lambda f: head(f, mode="sample"), x)
    assert tf.function(lambda f: head(f), jit_compile=True)(x)["action"].shape == (3, 4)
    helpers.assert_config_roundtrip(head)
    inp = keras.Input((6,))
    model = keras.Model(inp, BernoulliPatchHead(4, alpha=0.7, seed=1)(inp, mode="greedy"))
    helpers.assert_keras_roundtrip(model, x)


@pytest.mark.parametrize("kwargs", [{"num_patches": 0}, {"num_patches": 4, "alpha": 0.3},
                                    {"num_patches": 4, "alpha": 1.5}, {"num_patches": 4, "seed": 1.5}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        BernoulliPatchHead(**kwargs)


def test_saved_model_roundtrip():
    head = BernoulliPatchHead(4, seed=2)
    x = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
    helpers.assert_layer_saved_model_roundtrip(head, x, call=lambda l, f: l(f, mode="greedy"))
