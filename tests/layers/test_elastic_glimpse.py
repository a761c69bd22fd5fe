import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.elastic_glimpse import ElasticGlimpse


def _reference(image, action, g, ps, d_min, ratio=1.0):
    """Per-sample reference: integer geometry, crop, tf.image.resize(bilinear, no antialias)."""
    h, w, _ = image.shape
    d_max = min(h, w) * ratio
    d = int(np.floor(action[2] * (d_max - d_min) + d_min))
    y0, x0 = int(np.floor(action[0] * (h - d))), int(np.floor(action[1] * (w - d)))
    p = d // g
    patches, boxes = [], []
    for r in range(g):
        for c in range(g):
            side = d - (g - 1) * p if (r == g - 1 or c == g - 1) else p
            y, x = y0 + r * p, x0 + c * p
            crop = image[y : y + side, x : x + side]
            patches.append(
                tf.image.resize(crop, (ps, ps), method="bilinear", antialias=False).numpy()
            )
            boxes.append([y, x, y + side, x + side])
    return np.stack(patches), np.array(boxes, np.float32)


def test_quadrants_of_224_image():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(1, 224, 224, 3)).astype(np.float32)
    layer = ElasticGlimpse(grid_size=2, patch_size=16)
    patches, boxes = layer(images, tf.constant([[0.0, 0.0, 1.0]]))
    assert patches.shape == (1, 4, 16, 16, 3)
    np.testing.assert_array_equal(
        boxes[0], [[0, 0, 112, 112], [0, 112, 112, 224], [112, 0, 224, 112], [112, 112, 224, 224]]
    )
    img = images[0]
    quadrants = [img[:112, :112], img[:112, 112:], img[112:, :112], img[112:, 112:]]
    for q, quad in enumerate(quadrants):
        want = tf.image.resize(quad, (16, 16), method="bilinear", antialias=False).numpy()
        np.testing.assert_allclose(patches[0, q], want, atol=1e-5)


def test_hand_checked_6x6():
    img = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    # g=1, ps=2, d_min=2, d_max=6: scale 0.5 -> d = 4; y0 = floor(0.5*2) = 1, x0 = floor(1*2) = 2.
    patches, boxes = ElasticGlimpse(grid_size=1, patch_size=2)(img, tf.constant([[0.5, 1.0, 0.5]]))
    np.testing.assert_array_equal(boxes[0], [[1, 2, 5, 6]])
    # Crop rows 1..4, cols 2..5; 4 -> 2 half-pixel bilinear samples at 0.5 and 2.5.
    crop = img[0, 1:5, 2:6, 0]
    want = [
        [crop[0:2, 0:2].mean(), crop[0:2, 2:4].mean()],
        [crop[2:4, 0:2].mean(), crop[2:4, 2:4].mean()],
    ]
    np.testing.assert_allclose(patches[0, 0, ..., 0], want)
    np.testing.assert_allclose(patches[0, 0, ..., 0], [[11.5, 13.5], [23.5, 25.5]])


def test_uneven_split_upsampling_and_non_square_match_reference():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(4, 40, 52, 2)).astype(np.float32)
    actions = np.array(
        [[0.3, 0.7, 0.41], [1.0, 1.0, 0.0], [0.0, 0.5, 0.77], [0.9, 0.1, 1.0]], np.float32
    )
    layer = ElasticGlimpse(grid_size=3, patch_size=8, min_size=5)
    patches, boxes = layer(images, actions)
    assert patches.shape == (4, 9, 8, 8, 2) and boxes.shape == (4, 9, 4)
    for b in range(4):
        want_p, want_b = _reference(images[b], actions[b], 3, 8, 5)
        np.testing.assert_array_equal(boxes[b], want_b)
        np.testing.assert_allclose(patches[b], want_p, atol=1e-5)
    # Action 1 has d = 5, p = 1: the last row/column sub-squares have side 3 (upsampled).
    assert set(np.unique(boxes[1, :, 2] - boxes[1, :, 0])) == {1.0, 3.0}


def test_max_size_ratio_and_clipped_actions():
    images = tf.random.uniform((2, 64, 64, 1), seed=0)
    layer = ElasticGlimpse(grid_size=2, patch_size=4, max_size_ratio=0.5)
    _, boxes = layer(images, tf.constant([[1.5, -1.0, 2.0], [0.0, 0.0, 0.0]]))
    # Clipped to (1, 0, 1): d = 32 -> y0 = 32, x0 = 0; last sub-square starts at (48, 16).
    np.testing.assert_array_equal(boxes[0, 0], [32, 0, 48, 16])
    np.testing.assert_array_equal(boxes[0, 3], [48, 16, 64, 32])
    np.testing.assert_array_equal(boxes[1, 3], [4, 4, 8, 8])


def test_jit_compiles_and_gradient():
    layer = ElasticGlimpse(grid_size=2, patch_size=4)
    images = tf.random.uniform((3, 20, 24, 3), seed=0)
    actions = tf.constant([[0.2, 0.9, 0.5], [1.0, 0.0, 0.1], [0.5, 0.5, 1.0]])
    helpers.assert_jit_compiles(lambda x, a: layer(x, a), images, actions)
    var = tf.Variable(images)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(var, actions)[0])
    assert float(tf.reduce_sum(tape.gradient(loss, var))) > 0


def test_config_and_saved_model_roundtrip():
    layer = ElasticGlimpse(grid_size=3, patch_size=4, min_size=6, max_size_ratio=0.75)
    helpers.assert_config_roundtrip(layer)
    images = tf.random.uniform((2, 32, 32, 3), seed=2)
    actions = tf.constant([[0.1, 0.8, 0.3], [0.6, 0.2, 0.9]])
    helpers.assert_layer_saved_model_roundtrip(layer, (images, actions), call=lambda l, x: l(*x))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(grid_size=0),
        dict(patch_size=-1),
        dict(grid_size=3, min_size=2),
        dict(max_size_ratio=0.0),
        dict(max_size_ratio=1.5),
        dict(max_size_ratio="1"),
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        ElasticGlimpse(**kwargs)


def test_bad_inputs():
    layer = ElasticGlimpse(grid_size=2, patch_size=16)
    with pytest.raises(ValueError, match="smaller"):
        layer(np.zeros((1, 24, 64, 3), np.float32), np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="rank 3"):
        layer(np.zeros((64, 64, 3), np.float32), np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="actions"):
        layer(np.zeros((1, 64, 64, 3), np.float32), np.zeros((1, 2), np.float32))
    layer(np.zeros((1, 64, 64, 3), np.float32), np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="channels"):
        layer(np.zeros((1, 64, 64, 1), np.float32), np.zeros((1, 3), np.float32))


def test_unknown_batch_and_image_size_in_graph():
    layer = ElasticGlimpse(grid_size=2, patch_size=4)
    images, actions = tf.random.uniform((3, 20, 24, 2), seed=4), tf.random.uniform((3, 3), seed=5)
    sig = [tf.TensorSpec((None, None, None, 2)), tf.TensorSpec((None, 3))]
    graph = tf.function(lambda x, a: layer(x, a), input_signature=sig)
    helpers.assert_allclose_tree(graph(images, actions), layer(images, actions), atol=1e-6)
