import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.layers.grid_glimpse import GridGlimpse


def _bilinear_reference(image, cy, cx, p):
    """Per-pixel NumPy grid_sample(align_corners=True) with border clamping."""
    n = image.shape[0]
    out = np.zeros((p, p, image.shape[-1]), np.float64)
    for i in range(p):
        for j in range(p):
            y = min(max(cy + i - (p - 1) / 2, 0), n - 1)
            x = min(max(cx + j - (p - 1) / 2, 0), n - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, n - 1), min(x0 + 1, n - 1)
            fy, fx = y - y0, x - x0
            out[i, j] = (
                (1 - fy) * (1 - fx) * image[y0, x0]
                + (1 - fy) * fx * image[y0, x1]
                + fy * (1 - fx) * image[y1, x0]
                + fy * fx * image[y1, x1]
            )
    return out


def test_grid_sizes_from_spec():
    assert GridGlimpse(64, 8, 4).cells_per_side == 15
    assert GridGlimpse(64, 8, 4).num_cells == 225
    assert GridGlimpse(28, 3, 3).cells_per_side == 9


def test_cell_locations_row_major_yx():
    grid = GridGlimpse(64, 8, 4)
    locs = grid.cell_locations().numpy()
    assert locs.shape == (225, 2)
    # Start cell (7, 7) is centred on pixel 4 + 7*4 = 32.
    np.testing.assert_allclose(locs[7 * 15 + 7], [2 * 32 / 63 - 1] * 2, atol=1e-6)
    # Index 1 is row 0, column 1: y = pixel 4, x = pixel 8.
    np.testing.assert_allclose(locs[1], [2 * 4 / 63 - 1, 2 * 8 / 63 - 1], atol=1e-6)
    np.testing.assert_allclose(locs[15], [2 * 8 / 63 - 1, 2 * 4 / 63 - 1], atol=1e-6)
    mnist = GridGlimpse(28, 3, 3).cell_locations().numpy()
    np.testing.assert_allclose(mnist[4 * 9 + 4], [2 * 13 / 27 - 1] * 2, atol=1e-6)


def test_hand_checked_odd_patch_is_exact_unfold():
    img = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    grid = GridGlimpse(6, 3, 3)  # N = 2, centres at pixels 1 and 4
    patches, locs = grid(img, tf.constant([1]))
    np.testing.assert_array_equal(patches[0, ..., 0], [[3, 4, 5], [9, 10, 11], [15, 16, 17]])
    np.testing.assert_allclose(locs, [[2 * 1 / 5 - 1, 2 * 4 / 5 - 1]], atol=1e-6)
    allp = grid.all_patches(img).numpy()
    assert allp.shape == (1, 4, 3, 3, 1)
    np.testing.assert_array_equal(allp[0, 1], patches[0])
    np.testing.assert_array_equal(allp[0, 2, ..., 0], [[18, 19, 20], [24, 25, 26], [30, 31, 32]])


def test_even_patch_half_pixel_and_edge_clamp():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 12, 12, 2)).astype(np.float32)
    grid = GridGlimpse(12, 4, 4)  # N = 3, centres 2, 6, 10; last samples reach 11.5 -> 11
    index = np.array([0, 5, 8])
    patches, _ = grid(images, index)
    for b, a in enumerate(index):
        cy, cx = 2 + (a // 3) * 4, 2 + (a % 3) * 4
        np.testing.assert_allclose(
            patches[b], _bilinear_reference(images[b], cy, cx, 4), atol=1e-5
        )
    # Cell 0 samples rows 0.5..3.5: average of neighbouring unfold rows.
    unfold = grid.all_patches(images).numpy()[0, 0]
    np.testing.assert_allclose(
        patches[0, :3, :3],
        0.25 * (unfold[:3, :3] + unfold[1:, :3] + unfold[:3, 1:] + unfold[1:, 1:]),
        atol=1e-5,
    )


def test_all_patches_is_unfold():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 28, 28, 1)).astype(np.float32)
    grid = GridGlimpse(28, 3, 3)
    got = grid.all_patches(images).numpy()
    assert got.shape == (2, 81, 3, 3, 1)
    for a in (0, 8, 9, 40, 80):
        r, c = a // 9, a % 9
        np.testing.assert_array_equal(got[:, a], images[:, 3 * r : 3 * r + 3, 3 * c : 3 * c + 3])


def test_jit_compiles_and_gradient():
    grid = GridGlimpse(16, 4, 2)
    images = tf.random.uniform((3, 16, 16, 3), seed=0)
    index = tf.constant([0, 17, grid.num_cells - 1])
    helpers.assert_jit_compiles(lambda x, i: grid(x, i), images, index)
    helpers.assert_jit_compiles(grid.all_patches, images)
    var = tf.Variable(images)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(grid(var, index)[0])
    assert float(tf.reduce_sum(tape.gradient(loss, var))) > 0


def test_config_and_saved_model_roundtrip():
    grid = GridGlimpse(16, 4, 2)
    helpers.assert_config_roundtrip(grid)
    images = tf.random.uniform((2, 16, 16, 1), seed=3)
    helpers.assert_layer_saved_model_roundtrip(
        grid, (images, tf.constant([3, 40])), call=lambda l, x: l(*x)
    )


@pytest.mark.parametrize(
    "args", [(0, 3, 1), (8, 9, 1), (8, 3, 0), (8.0, 3, 1), (1, 1, 1)]
)
def test_bad_arguments(args):
    with pytest.raises(ValueError, match="received"):
        GridGlimpse(*args)


def test_bad_inputs():
    grid = GridGlimpse(8, 3, 1)
    with pytest.raises(ValueError, match="rank 3"):
        grid(np.zeros((8, 8, 1), np.float32), tf.constant([0]))
    with pytest.raises(ValueError, match="8x8"):
        grid(np.zeros((1, 8, 10, 1), np.float32), tf.constant([0]))
    grid(np.zeros((1, 8, 8, 1), np.float32), tf.constant([0]))
    with pytest.raises(ValueError, match="channels"):
        grid(np.zeros((1, 8, 8, 3), np.float32), tf.constant([0]))
    with pytest.raises(ValueError, match="cell_index"):
        grid(np.zeros((1, 8, 8, 1), np.float32), tf.constant([[0]]))


def test_unknown_batch_in_graph():
    grid = GridGlimpse(16, 4, 2)
    images, index = tf.random.uniform((3, 16, 16, 2), seed=4), tf.constant([1, 5, 48])
    sig = [tf.TensorSpec((None, 16, 16, 2)), tf.TensorSpec((None,), tf.int32)]
    graph = tf.function(lambda x, i: grid(x, i), input_signature=sig)
    helpers.assert_allclose_tree(graph(images, index), grid(images, index), atol=1e-6)
