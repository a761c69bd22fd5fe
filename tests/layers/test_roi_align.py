import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.roi_align import RoiAlign


def _bilinear(fmap, y, x):
    h, w = fmap.shape[:2]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(fmap.shape[-1])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * fmap[y0, x0]
        + (1 - ly) * lx * fmap[y0, x1]
        + ly * (1 - lx) * fmap[y1, x0]
        + ly * lx * fmap[y1, x1]
    )


def _roi_align_reference(fmap, box, p, scale, r):
    """Legacy (aligned=False) ROI-Align of one box, loops over bins and samples."""
    x1, y1, x2, y2 = [v * scale for v in box]
    bw, bh = max(x2 - x1, 1.0) / p, max(y2 - y1, 1.0) / p
    out = np.zeros((p, p, fmap.shape[-1]))
    for i in range(p):
        for j in range(p):
            acc = 0.0
            for iy in range(r):
                for ix in range(r):
                    y = y1 + i * bh + (iy + 0.5) * bh / r
                    x = x1 + j * bw + (ix + 0.5) * bw / r
                    acc = acc + _bilinear(fmap, y, x)
            out[i, j] = acc / (r * r)
    return out


def test_hand_checked_tiny_map():
    fmap = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)  # value = 4 y + x
    layer = RoiAlign(output_size=2, spatial_scale=1.0, sampling_ratio=1)
    # Box (x1, y1, x2, y2) = (0, 0, 2, 2): bins of 1 px, samples at 0.5 and 1.5.
    out = layer(fmap, tf.constant([[[0.0, 0.0, 2.0, 2.0]]])).numpy()[0, 0, ..., 0]
    np.testing.assert_allclose(out, [[2.5, 3.5], [6.5, 7.5]])
    # A box with x2 < x1 is clamped to width 1: samples at x = 3.25 and 3.75 -> clamped to 3.
    out = layer(fmap, tf.constant([[[3.0, 0.0, 1.0, 2.0]]])).numpy()[0, 0, ..., 0]
    np.testing.assert_allclose(out, [[5.0, 5.0], [9.0, 9.0]])


def test_matches_numpy_reference_including_outside_samples():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    boxes = np.array(
        [
            [[0, 0, 27, 27], [10.3, 4.2, 40.7, 31.9], [-12, -9, 8, 5]],
            [[20, 15, 30, 18], [25, 20, 60, 50], [1, 1, 1.5, 1.2]],
        ],
        np.float32,
    )
    scale = 0.2
    layer = RoiAlign(output_size=3, spatial_scale=scale, sampling_ratio=2)
    out = layer(features, boxes).numpy()
    assert out.shape == (2, 3, 3, 3, 3)
    for b in range(2):
        for k in range(3):
            want = _roi_align_reference(features[b], boxes[b, k], 3, scale, 2)
            np.testing.assert_allclose(out[b, k], want, atol=1e-5)


def test_outside_samples_zero_or_clamped():
    fmap = np.ones((1, 4, 4, 1), np.float32)
    layer = RoiAlign(output_size=1, spatial_scale=1.0, sampling_ratio=1)
    # Single samples at x = -2.25 (more than one pixel outside) and x = -0.5 (within one).
    boxes = tf.constant([[[-3.0, 1.0, -1.5, 2.0], [-1.0, 1.0, 0.0, 2.0], [1.0, 4.5, 2.0, 5.5]]])
    out = layer(fmap, boxes).numpy()[0, :, 0, 0, 0]
    np.testing.assert_array_equal(out, [0.0, 1.0, 0.0])


def test_ordinal_setting_shapes_and_jit():
    layer = RoiAlign()  # 5x5, scale 15/84, ratio 2
    features = tf.random.normal((2, 15, 15, 8), seed=0)
    boxes = tf.constant([[[0.0, 0.0, 27.0, 27.0], [40.0, 30.0, 83.0, 83.0]]] * 2)
    out = helpers.assert_jit_compiles(lambda f, b: layer(f, b), features, boxes)
    assert out.shape == (2, 2, 5, 5, 8)
    want = _roi_align_reference(features.numpy()[1], boxes.numpy()[1, 1], 5, 15 / 84, 2)
    np.testing.assert_allclose(out[1, 1], want, atol=1e-4)


def test_gradient_wrt_features():
    features = tf.Variable(tf.random.normal((1, 6, 6, 2), seed=1))
    with tf.GradientTape() as tape:
        layer = RoiAlign(output_size=2, spatial_scale=1.0)
        out = layer(features, tf.constant([[[1.0, 1.0, 4.0, 4.0]]]))
        loss = tf.reduce_sum(out)
    grad = tape.gradient(loss, features).numpy()
    # The total gradient equals the number of outputs (weights of each output sum to 1).
    np.testing.assert_allclose(grad.sum(), 2 * 2 * 2, rtol=1e-5)


def test_config_and_saved_model_roundtrip():
    layer = RoiAlign(output_size=3, spatial_scale=0.25, sampling_ratio=3)
    helpers.assert_config_roundtrip(layer)
    features = tf.random.normal((2, 8, 8, 4), seed=2)
    boxes = tf.constant([[[0.0, 0.0, 16.0, 20.0]], [[4.0, 8.0, 31.0, 31.0]]])
    helpers.assert_layer_saved_model_roundtrip(layer, (features, boxes), call=lambda l, x: l(*x))


@pytest.mark.parametrize(
    "kwargs",
    [dict(output_size=0), dict(spatial_scale=0.0), dict(spatial_scale=-1), dict(sampling_ratio=0)],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        RoiAlign(**kwargs)


def test_bad_inputs():
    layer = RoiAlign(output_size=2, spatial_scale=1.0)
    boxes = np.zeros((1, 1, 4), np.float32)
    with pytest.raises(ValueError, match="rank 3"):
        layer(np.zeros((4, 4, 1), np.float32), boxes)
    with pytest.raises(ValueError, match="boxes"):
        layer(np.zeros((1, 4, 4, 1), np.float32), np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="batch size"):
        layer(np.zeros((2, 4, 4, 1), np.float32), boxes)
    layer(np.zeros((1, 4, 4, 1), np.float32), boxes)
    with pytest.raises(ValueError, match="channels"):
        layer(np.zeros((1, 4, 4, 2), np.float32), boxes)


def test_unknown_batch_and_box_count_in_graph():
    layer = RoiAlign(output_size=3, spatial_scale=0.5)
    features = tf.random.uniform((3, 8, 8, 2), seed=4)
    boxes = tf.random.uniform((3, 4, 4), 0, 16, seed=5)
    sig = [tf.TensorSpec((None, None, None, 2)), tf.TensorSpec((None, None, 4))]
    graph = tf.function(lambda f, b: layer(f, b), input_signature=sig)
    np.testing.assert_allclose(graph(features, boxes), layer(features, boxes), atol=1e-6)
