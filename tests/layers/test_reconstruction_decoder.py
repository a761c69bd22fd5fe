import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_config_roundtrip, assert_jit_compiles, assert_layer_saved_model_roundtrip
from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder


def test_shapes_padding_and_unpatchify():
    dec = ReconstructionDecoder((32, 16, 2), patch_size=8, decoder_dim=16, depth=1, num_heads=2)
    tokens = tf.random.normal((2, 4, 24))
    mask = tf.constant([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    out = dec(tokens, mask)
    assert out.shape == (2, 32, 16, 2)
    # Padded slots are ignored.
    tokens2 = tf.concat([tokens[:, :2], tokens[:, 2:] + 7.0], axis=1)
    np.testing.assert_allclose(dec(tokens2, tf.ones_like(mask) * [[0, 0, 1]]),
                               dec(tokens, tf.ones_like(mask) * [[0, 0, 1]]), atol=3e-4)
    # unpatchify is row-major patches of p x p x C.
    patches = tf.reshape(tf.range(4 * 2 * 64 * 2, dtype=tf.float32), (1, 8, 128))
    img = dec.unpatchify(patches).numpy()
    np.testing.assert_array_equal(img[0, :8, 8:16].reshape(-1), np.arange(128, 256))


def test_validation_config_jit_saved_model():
    with pytest.raises(ValueError, match="image_shape"):
        ReconstructionDecoder((30, 32, 1), patch_size=8)
    with pytest.raises(ValueError, match="decoder_dim=10"):
        ReconstructionDecoder((32, 32, 1), patch_size=8, decoder_dim=10, num_heads=2)
    dec = ReconstructionDecoder((16, 16, 1), patch_size=8, decoder_dim=16, depth=1, num_heads=2)
    assert_config_roundtrip(dec)
    tokens = tf.random.normal((2, 3, 8))
    assert_jit_compiles(lambda t: dec(t), tokens)
    assert_layer_saved_model_roundtrip(dec, tokens)
