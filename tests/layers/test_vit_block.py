import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_config_roundtrip, assert_jit_compiles, assert_keras_roundtrip
from keras_glimpse.layers.vit_block import ViTBlock


def test_layer_scale_init_and_shapes():
    block = ViTBlock(16, 4)
    x = tf.random.normal((2, 5, 16))
    y = block(x)
    assert y.shape == (2, 5, 16)
    np.testing.assert_allclose(block.gamma1.numpy(), 1e-4)
    # With gamma = 1e-4 the block is close to the identity at init.
    assert float(tf.reduce_max(tf.abs(y - x))) < 1e-2


def test_padding_mask_removes_keys():
    block = ViTBlock(16, 2, layer_scale_init=None)
    x = tf.random.normal((1, 4, 16), seed=1)
    mask = tf.constant([[0.0, 0.0, 1.0, 1.0]])
    y, probs = block(x, padding_mask=mask, return_attention=True)
    np.testing.assert_allclose(probs[..., 2:].numpy(), 0.0, atol=1e-7)
    # Changing the padded tokens does not change the valid outputs.
    x2 = tf.concat([x[:, :2], 5.0 + tf.random.normal((1, 2, 16))], axis=1)
    y2 = block(x2, padding_mask=mask)
    np.testing.assert_allclose(y[:, :2], y2[:, :2], atol=1e-5)


def test_validation_roundtrips_and_jit():
    with pytest.raises(ValueError, match="num_heads=3"):
        ViTBlock(16, 3)
    block = ViTBlock(8, 2)
    assert_config_roundtrip(block)
    x = tf.random.normal((2, 3, 8))
    m = tf.constant([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    assert_jit_compiles(lambda a, b: block(a, padding_mask=b), x, m)
    import keras
    inp = keras.Input((3, 8))
    assert_keras_roundtrip(keras.Model(inp, ViTBlock(8, 2)(inp)), x)
