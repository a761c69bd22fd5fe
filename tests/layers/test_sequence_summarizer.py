import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.sequence_summarizer import SequenceSummarizer


def _seq(b=2, t=5, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(b, t, d)).astype("float32")


def test_shape_and_config_roundtrip():
    layer = SequenceSummarizer(num_heads=2, dropout=0.0)
    assert tuple(layer(_seq()).shape) == (2, 5, 8)
    clone = helpers.assert_config_roundtrip(layer)
    assert clone.num_heads == 2 and clone.dropout == 0.0


def test_prefix_masks_equal_running_on_each_prefix():
    """Row t of the tiled, prefix-masked call equals a call on x[:, :t+1]."""
    layer = SequenceSummarizer(dropout=0.0)
    x = _seq(b=3, t=4)
    t = x.shape[1]
    masks = SequenceSummarizer.prefix_masks(t)
    np.testing.assert_array_equal(np.asarray(masks), np.tril(np.ones((t, t), bool)))
    for step in range(t):
        mask = np.broadcast_to(np.asarray(masks)[step], (3, t))
        full = np.asarray(layer(x, mask=mask))[:, : step + 1]
        prefix = np.asarray(layer(x[:, : step + 1]))
        np.testing.assert_allclose(full, prefix, atol=1e-5)


def test_masked_steps_do_not_change_valid_outputs():
    layer = SequenceSummarizer(dropout=0.0)
    x = _seq(t=6)
    mask = np.array([[True] * 3 + [False] * 3] * 2)
    y = x.copy()
    y[:, 3:] += 5.0
    a = np.asarray(layer(x, mask=mask))[:, :3]
    b = np.asarray(layer(y, mask=mask))[:, :3]
    np.testing.assert_allclose(a, b, atol=1e-5)
    # Without the mask the later steps do change the earlier outputs (attention).
    assert not np.allclose(np.asarray(layer(x))[:, :3], np.asarray(layer(y))[:, :3], atol=1e-3)


def test_dropout_only_in_training():
    layer = SequenceSummarizer(dropout=0.5)
    x = _seq()
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(layer(x, training=False)))
    assert not np.allclose(np.asarray(layer(x, training=True)), np.asarray(layer(x)))


def test_keras_and_saved_model_roundtrip_and_jit():
    x = _seq()
    model = keras.Sequential([keras.Input((5, 8)), SequenceSummarizer(dropout=0.0)])
    helpers.assert_keras_roundtrip(model, x)
    layer = SequenceSummarizer(dropout=0.0)
    mask = tf.constant([[True, True, False, False, False]] * 2)
    helpers.assert_layer_saved_model_roundtrip(layer, (tf.constant(x), mask),
                                               call=lambda l, a: l(a[0], mask=a[1]))
    helpers.assert_jit_compiles(lambda a, m: layer(a, mask=m), tf.constant(x), mask)


@pytest.mark.parametrize("kwargs", [{"num_heads": 0}, {"num_heads": 1.5}, {"dropout": 1.0},
                                    {"dropout": -0.1}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match=str(list(kwargs.values())[0])):
        SequenceSummarizer(**kwargs)


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="divisible"):
        SequenceSummarizer(num_heads=3)(_seq(d=8))
