import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_config_roundtrip, assert_jit_compiles
from keras_glimpse.layers.segmentation_decoder import SegmentationDecoder, segmentation_cross_entropy


def test_output_shape_and_paper_head_widths():
    dec = SegmentationDecoder((32, 32, 3), num_classes=5, patch_size=8, decoder_dim=16, depth=1,
                              num_heads=2)
    out = dec(tf.random.normal((2, 4, 24)), tf.constant([[0.0, 0, 1], [0, 1, 1]]))
    assert out.shape == (2, 32, 32, 5)
    paper = SegmentationDecoder((224, 224, 3), 150, patch_size=16, decoder_dim=512)
    assert paper.head_channels == [512, 512, 256, 256]


def test_cross_entropy_ignores_255_hand_computed():
    logits = tf.constant([[[[2.0, 0.0], [0.0, 0.0]]]])  # (1, 1, 2, 2)
    labels = tf.constant([[[0, 255]]])
    ce = segmentation_cross_entropy(labels, logits).numpy()
    np.testing.assert_allclose(ce, [np.log(1 + np.exp(-2.0))], rtol=1e-6)
    np.testing.assert_allclose(segmentation_cross_entropy(tf.constant([[[255, 255]]]), logits), [0.0])


def test_validation_config_jit():
    with pytest.raises(ValueError, match="patch_size=12"):
        SegmentationDecoder((24, 24, 3), 4, patch_size=12)
    with pytest.raises(ValueError, match="num_classes"):
        SegmentationDecoder((32, 32, 3), 1, patch_size=8)
    dec = SegmentationDecoder((16, 16, 1), 3, patch_size=4, decoder_dim=8, depth=1, num_heads=2)
    assert_config_roundtrip(dec)
    assert_jit_compiles(lambda t: dec(t), tf.random.normal((2, 3, 8)))
