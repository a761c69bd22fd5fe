"""BoxEmbedding: the ordinal embedding network."""

import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.box_embedding import BoxEmbedding


def test_shapes_params_and_feature_reuse():
    net = BoxEmbedding(seed=0)
    images = tf.random.stateless_normal((2, 84, 84, 1), seed=[1, 2])
    boxes = tf.constant([[[0.0, 0.0, 83.0, 83.0], [10.0, 12.0, 37.0, 39.0]]] * 2)
    out = net(images, boxes)
    assert out.shape == (2, 2, 512)
    fmap = net.feature_map(images)
    assert fmap.shape == (2, 15, 15, 128)
    np.testing.assert_allclose(net.embed_boxes(fmap, boxes), out, atol=1e-5)
    # 95.5k conv + 3.28M fc1 + 0.52M fc2 (spec §1.4)
    assert net.count_params() == 95_524 + 3_277_824 + 524_800
    # initialisation: dense N(0, 0.01), conv Kaiming fan-out, zero biases
    assert abs(np.std(net.fc1.kernel.numpy()) - 0.01) < 5e-4
    fan_out = 3 * 3 * 128
    assert abs(np.std(net.convs[3].kernel.numpy()) - np.sqrt(2.0 / fan_out)) < 3e-3
    assert not np.any(net.convs[0].bias.numpy())


def test_backbone_is_linear():
    net = BoxEmbedding(hidden_units=8, embedding_dim=4, seed=1)
    x = tf.random.stateless_normal((1, 84, 84, 1), seed=[3, 4])
    net.build(x.shape)
    for conv in net.convs:  # non-zero biases: affine, still no nonlinearity
        conv.bias.assign(tf.fill(conv.bias.shape, 0.3))
    f0 = net.feature_map(tf.zeros_like(x))
    lhs = net.feature_map(2.0 * x) - f0
    rhs = 2.0 * (net.feature_map(x) - f0)
    np.testing.assert_allclose(lhs, rhs, atol=1e-3)


def test_dropout_only_in_training():
    net = BoxEmbedding(hidden_units=64, embedding_dim=8, dropout=0.5, seed=2)
    x = tf.random.stateless_normal((1, 84, 84, 1), seed=[5, 6])
    boxes = tf.constant([[[5.0, 5.0, 60.0, 60.0]]])
    a = net(x, boxes, training=False)
    np.testing.assert_allclose(a, net(x, boxes, training=False))
    assert not np.allclose(net(x, boxes, training=True), a)


def test_config_saved_model_and_jit():
    net = BoxEmbedding(embedding_dim=8, hidden_units=16, dropout=0.25, pooling_size=3, seed=3)
    helpers.assert_config_roundtrip(net)
    x = tf.random.stateless_normal((2, 84, 84, 1), seed=[7, 8])
    boxes = tf.constant([[[0.0, 0.0, 83.0, 83.0]], [[20.0, 30.0, 47.0, 57.0]]])
    helpers.assert_jit_compiles(lambda a, b: net(a, b), x, boxes)
    helpers.assert_layer_saved_model_roundtrip(net, (x, boxes), call=lambda l, t: l(t[0], t[1]))


def test_validation():
    with pytest.raises(ValueError, match="dropout=1.5"):
        BoxEmbedding(dropout=1.5)
    with pytest.raises(ValueError, match="embedding_dim=0"):
        BoxEmbedding(embedding_dim=0)
