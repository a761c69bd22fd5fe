import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.gated_attention_pooling import GatedAttentionPooling


def _seq(b=2, t=4, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(b, t, d)).astype("float32")


def _reference(layer, x, mask=None):
    w1, b1 = [np.asarray(v) for v in layer.hidden_dense.weights]
    w2, b2 = [np.asarray(v) for v in layer.score_dense.weights]
    scores = (np.tanh(x @ w1 + b1) @ w2 + b2)[..., 0] / layer.temperature
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    alpha = np.exp(scores - scores.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    return (alpha[..., None] * x).sum(1), alpha


def test_matches_hand_computation_with_temperature():
    layer = GatedAttentionPooling(hidden_units=5, temperature=0.5)
    x = _seq()
    pooled, alpha = layer(x, return_weights=True)
    ref_pooled, ref_alpha = _reference(layer, x)
    np.testing.assert_allclose(np.asarray(alpha), ref_alpha, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pooled), ref_pooled, atol=1e-6)


def test_tiny_case_by_hand():
    layer = GatedAttentionPooling(hidden_units=1, temperature=0.5)
    layer.build((1, 2, 1))
    layer.hidden_dense.set_weights([np.ones((1, 1), "float32"), np.zeros(1, "float32")])
    layer.score_dense.set_weights([np.ones((1, 1), "float32"), np.zeros(1, "float32")])
    x = np.array([[[0.0], [1.0]]], "float32")
    # scores = tanh(x) / 0.5 = [0, 2 tanh(1)]; alpha = softmax(scores)
    s = np.array([0.0, 2 * np.tanh(1.0)])
    a = np.exp(s) / np.exp(s).sum()
    pooled, alpha = layer(x, return_weights=True)
    np.testing.assert_allclose(np.asarray(alpha)[0], a, atol=1e-6)
    np.testing.assert_allclose(float(pooled[0, 0]), a[1], atol=1e-6)


def test_mask_gives_zero_weight():
    layer = GatedAttentionPooling(hidden_units=4)
    x = _seq(t=5)
    mask = np.array([[True, True, False, False, False], [True, False, False, False, False]])
    pooled, alpha = layer(x, mask=mask, return_weights=True)
    assert np.all(np.asarray(alpha)[~mask] < 1e-12)
    np.testing.assert_allclose(np.asarray(pooled)[1], x[1, 0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(pooled), _reference(layer, x, mask)[0], atol=1e-6)


def test_roundtrips_and_jit():
    layer = GatedAttentionPooling(hidden_units=4, temperature=0.25)
    helpers.assert_config_roundtrip(layer)
    model = keras.Sequential([keras.Input((4, 3)), layer])
    helpers.assert_keras_roundtrip(model, _seq())
    helpers.assert_jit_compiles(lambda a: layer(a), tf.constant(_seq()))


@pytest.mark.parametrize("kwargs", [{"hidden_units": 0}, {"temperature": 0.0},
                                    {"temperature": -1.0}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        GatedAttentionPooling(**kwargs)
