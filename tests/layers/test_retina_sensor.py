import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.retina_sensor import RetinaSensor


def _image(h=6, w=6, c=1):
    return np.arange(h * w * c, dtype=np.float32).reshape(1, h, w, c)


def _reference(image, loc, g, k, s):
    """Per-image NumPy retina: zero pad by size//2, slice from floor(0.5(l+1)n)."""
    h, w, _ = image.shape
    out = []
    for i in range(k):
        size = g * s**i
        half = size // 2
        padded = np.pad(image, ((half, size), (half, size), (0, 0)))
        cy = int(np.floor(0.5 * (loc[0] + 1) * h))
        cx = int(np.floor(0.5 * (loc[1] + 1) * w))
        win = padded[cy : cy + size, cx : cx + size]
        kk = size // g
        out.append(win.reshape(g, kk, g, kk, -1).mean(axis=(1, 3)))
    return np.stack(out)


def test_hand_checked_values_6x6():
    img = _image()
    out = RetinaSensor(2, num_scales=2)(img, np.zeros((1, 2), np.float32)).numpy()[0, ..., 0]
    # Centre pixel floor(0.5 * 6) = 3; scale 0 covers rows/cols 2..3.
    np.testing.assert_array_equal(out[0], [[14, 15], [20, 21]])
    # Scale 1 (4x4) covers rows/cols 1..4, pooled by 2x2.
    np.testing.assert_array_equal(out[1], [[10.5, 12.5], [22.5, 24.5]])


def test_top_left_corner_reads_zeros_outside():
    img = np.ones((1, 6, 6, 1), np.float32)
    out = RetinaSensor(2, num_scales=2)(img, -np.ones((1, 2), np.float32)).numpy()[0, ..., 0]
    # Scale 0 covers rows/cols -1..0: only the bottom-right pixel is inside.
    np.testing.assert_array_equal(out[0], [[0, 0], [0, 1]])
    # Scale 1 covers -2..1: one 2x2 block inside.
    np.testing.assert_array_equal(out[1], [[0, 0], [0, 1]])


def test_matches_numpy_reference_non_square_multichannel():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(5, 10, 14, 3)).astype(np.float32)
    locs = rng.uniform(-1, 1, size=(5, 2)).astype(np.float32)
    locs[0] = [1.0, 1.0]
    locs[1] = [-1.0, 0.3]
    out = RetinaSensor(3, num_scales=3, scale_factor=2)(images, locs).numpy()
    assert out.shape == (5, 3, 3, 3, 3)
    for b in range(5):
        np.testing.assert_allclose(out[b], _reference(images[b], locs[b], 3, 3, 2), atol=1e-5)


def test_bilinear_equals_floor_on_pixel_centres_and_interpolates():
    img = _image(8, 8)
    floor = RetinaSensor(2, num_scales=2)
    bil = RetinaSensor(2, num_scales=2, centering="bilinear")
    on_pixel = np.array([[0.25, -0.5]], np.float32)  # centres 5 and 2, exact in float32
    np.testing.assert_allclose(bil(img, on_pixel), floor(img, on_pixel), atol=1e-5)
    # Half-way between row centres 4 and 5 -> average of the two floor glimpses.
    half = np.array([[0.125, 0.0]], np.float32)
    a = floor(img, np.array([[0.0, 0.0]], np.float32))
    b = floor(img, np.array([[0.25, 0.0]], np.float32))
    np.testing.assert_allclose(bil(img, half), 0.5 * (a + b), atol=1e-5)
    # Rows 3.5..4.5, cols 3..4 of an image whose pixel (r, c) = 8 r + c.
    np.testing.assert_allclose(bil(img, half).numpy()[0, 0, ..., 0], [[31, 32], [39, 40]])


def test_gradient_wrt_image_is_nonzero():
    images = tf.Variable(tf.random.uniform((2, 12, 12, 1)))
    layer = RetinaSensor(4, num_scales=2)
    with tf.GradientTape() as tape:
        out = layer(images, tf.constant([[0.0, 0.0], [0.9, -0.9]]))
        loss = tf.reduce_sum(out**2)
    grad = tape.gradient(loss, images)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


@pytest.mark.parametrize("centering", ["floor", "bilinear"])
def test_jit_compiles(centering):
    layer = RetinaSensor(4, num_scales=3, centering=centering)
    images = tf.random.uniform((3, 20, 16, 2), seed=1)
    locs = tf.constant([[0.1, -0.7], [1.0, 1.0], [-0.33, 0.5]])
    helpers.assert_jit_compiles(lambda x, l: layer(x, l), images, locs)


def test_config_and_saved_model_roundtrip():
    layer = RetinaSensor(4, num_scales=2, scale_factor=3, centering="bilinear")
    clone = helpers.assert_config_roundtrip(layer)
    assert clone.sizes == (4, 12)
    images = tf.random.uniform((2, 16, 16, 1), seed=2)
    locs = tf.constant([[0.2, -0.4], [0.0, 0.9]])
    helpers.assert_layer_saved_model_roundtrip(layer, (images, locs), call=lambda l, x: l(*x))


def test_functional_model_symbolic_shapes():
    images = keras.Input((28, 28, 1))
    locs = keras.Input((2,))
    out = RetinaSensor(8, num_scales=2)(images, locs)
    assert tuple(out.shape) == (None, 2, 8, 8, 1)
    model = keras.Model([images, locs], out)
    assert model([np.zeros((3, 28, 28, 1)), np.zeros((3, 2))]).shape == (3, 2, 8, 8, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(glimpse_size=0),
        dict(glimpse_size=2.5),
        dict(glimpse_size=4, num_scales=0),
        dict(glimpse_size=4, scale_factor=1.5),
        dict(glimpse_size=4, centering="nearest"),
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        RetinaSensor(**kwargs)


def test_bad_inputs():
    layer = RetinaSensor(2)
    locs = np.zeros((1, 2), np.float32)
    with pytest.raises(ValueError, match="rank 3"):
        layer(np.zeros((6, 6, 1), np.float32), locs)
    layer(np.zeros((1, 6, 6, 1), np.float32), locs)
    with pytest.raises(ValueError, match="channels"):
        layer(np.zeros((1, 6, 6, 3), np.float32), locs)
    with pytest.raises(ValueError, match="locations"):
        layer(np.zeros((1, 6, 6, 1), np.float32), np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="locations"):
        layer(np.zeros((1, 6, 6, 1), np.float32), np.zeros((2,), np.float32))


def test_unknown_batch_and_image_size_in_graph():
    layer = RetinaSensor(4, num_scales=2, centering="bilinear")
    images, locs = tf.random.uniform((3, 20, 18, 2), seed=4), tf.constant([[0.3, -0.2]] * 3)
    sig = [tf.TensorSpec((None, None, None, 2)), tf.TensorSpec((None, 2))]
    graph = tf.function(lambda x, l: layer(x, l), input_signature=sig)
    np.testing.assert_allclose(graph(images, locs), layer(images, locs), atol=1e-6)
