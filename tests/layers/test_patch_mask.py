import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.patch_mask import PatchMask


def test_hand_checked_6x6_grid_3():
    img = np.arange(1, 37, dtype=np.float32).reshape(1, 6, 6, 1)
    # Keep patch 1 (row 0, column 1) and patch 5 (row 1, column 2).
    out = PatchMask(grid_size=3)(img, tf.constant([[0, 1, 0, 0, 0, 1, 0, 0, 0]])).numpy()[0, ..., 0]
    expected = np.zeros((6, 6), np.float32)
    expected[0:2, 2:4] = [[3, 4], [9, 10]]
    expected[2:4, 4:6] = [[17, 18], [23, 24]]
    np.testing.assert_array_equal(out, expected)


def test_row_major_flat_and_grid_actions_agree_with_numpy():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(5, 32, 32, 3)).astype(np.float32)
    actions = (rng.uniform(size=(5, 16)) < 0.5).astype(np.float32)
    layer = PatchMask(grid_size=4)
    flat = layer(images, actions).numpy()
    grid = layer(images, actions.reshape(5, 4, 4)).numpy()
    np.testing.assert_array_equal(flat, grid)
    expected = np.zeros_like(images)
    for b in range(5):
        for i in range(16):
            if actions[b, i]:
                r, c = 8 * (i // 4), 8 * (i % 4)
                expected[b, r : r + 8, c : c + 8] = images[b, r : r + 8, c : c + 8]
    np.testing.assert_array_equal(flat, expected)


def test_non_square_image_and_integer_or_bool_actions():
    images = np.ones((2, 8, 12, 1), np.float32)
    layer = PatchMask(grid_size=2)
    out = layer(images, tf.constant([[True, False, False, True], [False] * 4])).numpy()
    assert out[0, :4, :6].min() == 1 and out[0, :4, 6:].max() == 0
    assert out[0, 4:, 6:].min() == 1 and out[1].max() == 0


def test_low_resolution_is_strided_nearest():
    images = tf.reshape(tf.range(2 * 32 * 32 * 3, dtype=tf.float32), (2, 32, 32, 3))
    lr = PatchMask(lr_factor=4).low_resolution(images).numpy()
    assert lr.shape == (2, 8, 8, 3)
    np.testing.assert_array_equal(lr, images.numpy()[:, ::4, ::4])
    # Pixel (1, 1) of the LR image is HR pixel (4, 4), not tf.image.resize's (6, 6).
    np.testing.assert_array_equal(lr[0, 1, 1], images.numpy()[0, 4, 4])


def test_jit_compiles_and_gradient():
    layer = PatchMask(grid_size=4)
    images = tf.random.uniform((3, 16, 16, 2), seed=0)
    actions = tf.constant(np.eye(16, dtype=np.float32)[[0, 5, 15]])
    helpers.assert_jit_compiles(lambda x, a: layer(x, a), images, actions)
    helpers.assert_jit_compiles(layer.low_resolution, images)
    var = tf.Variable(images)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(var, actions))
    grad = tape.gradient(loss, var).numpy()
    assert grad.sum() == 3 * 16 * 2  # one 4x4x2 patch per image passes gradient


def test_config_and_saved_model_roundtrip():
    layer = PatchMask(grid_size=2, lr_factor=2)
    helpers.assert_config_roundtrip(layer)
    images = tf.random.uniform((2, 8, 8, 3), seed=1)
    actions = tf.constant([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    helpers.assert_layer_saved_model_roundtrip(layer, (images, actions), call=lambda l, x: l(*x))


@pytest.mark.parametrize("kwargs", [dict(grid_size=0), dict(lr_factor=0), dict(grid_size=2.0)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="received"):
        PatchMask(**kwargs)


def test_bad_inputs():
    layer = PatchMask(grid_size=4)
    with pytest.raises(ValueError, match="multiple of 4"):
        layer(np.zeros((1, 30, 32, 1), np.float32), np.ones((1, 16)))
    with pytest.raises(ValueError, match="rank 3"):
        layer(np.zeros((32, 32, 1), np.float32), np.ones((1, 16)))
    with pytest.raises(ValueError, match="actions"):
        layer(np.zeros((1, 32, 32, 1), np.float32), np.ones((1, 9)))
    with pytest.raises(ValueError, match="actions"):
        layer(np.zeros((1, 32, 32, 1), np.float32), np.ones((1, 2, 8)))
    layer(np.zeros((1, 32, 32, 1), np.float32), np.ones((1, 16)))
    with pytest.raises(ValueError, match="channels"):
        layer(np.zeros((1, 32, 32, 3), np.float32), np.ones((1, 16)))


def test_unknown_batch_and_image_size_in_graph():
    layer = PatchMask(grid_size=4)
    images, actions = tf.random.uniform((3, 16, 12, 2), seed=4), tf.constant(np.eye(16)[[1, 2, 3]])
    sig = [tf.TensorSpec((None, None, None, 2)), tf.TensorSpec((None, 16), tf.float64)]
    graph = tf.function(lambda x, a: layer(x, a), input_signature=sig)
    np.testing.assert_allclose(graph(images, actions), layer(images, actions), atol=1e-6)
