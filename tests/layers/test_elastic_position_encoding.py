import numpy as np
import pytest
import tensorflow as tf

from helpers import assert_config_roundtrip, assert_jit_compiles, assert_keras_roundtrip
from keras_glimpse.layers.elastic_position_encoding import (
    ElasticPositionEncoding, grid_position_table)


def _mae_1d(embed_dim, pos):
    """MAE's get_1d_sincos_pos_embed_from_grid, written out independently."""
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def _mae_2d(embed_dim, grid_size):
    """MAE's get_2d_sincos_pos_embed (meshgrid(w, h) order), written out independently."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0)
    emb_h = _mae_1d(embed_dim // 2, grid[0])
    emb_w = _mae_1d(embed_dim // 2, grid[1])
    return np.concatenate([emb_h, emb_w], axis=1)


def test_grid_boxes_reproduce_the_standard_mae_table():
    dim, grid, p = 64, 14, 16
    i, j = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    boxes = np.stack([i, j, i + 1, j + 1], -1).reshape(1, -1, 4).astype("float32") * p
    pe = ElasticPositionEncoding(dim, patch_size=p)(boxes)[0].numpy()
    # The two corners, each a standard MAE 2-D table of width D/2 ((x, y) halves
    # swapped because the box order is (y, x)).
    def yx(table):
        return np.concatenate([table[:, dim // 4:], table[:, :dim // 4]], axis=1)

    top_left = yx(_mae_2d(dim // 2, grid))
    bottom_right = yx(np.stack([_mae_2d(dim // 2, grid + 1).reshape(grid + 1, grid + 1, -1)[
        1:, 1:]]).reshape(grid * grid, -1))
    np.testing.assert_allclose(pe[:, :dim // 2], top_left, atol=1e-5)
    np.testing.assert_allclose(pe[:, dim // 2:], bottom_right, atol=1e-5)
    # And the decoder's regular table is exactly MAE's 2-D table.
    np.testing.assert_allclose(grid_position_table(grid, grid, dim), _mae_2d(dim, grid), atol=1e-6)


def test_hand_computed_channels():
    pe = ElasticPositionEncoding(8, patch_size=16)
    out = pe(np.array([[[16.0, 32.0, 48.0, 64.0]]], "float32"))[0, 0].numpy()
    # D/8 = 1 frequency (omega_0 = 1): [sin y1, cos y1, sin x1, cos x1, ...] in patch units.
    expected = [np.sin(1), np.cos(1), np.sin(2), np.cos(2), np.sin(3), np.cos(3), np.sin(4),
                np.cos(4)]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_validation_config_serialization_and_jit():
    with pytest.raises(ValueError, match="dim=12"):
        ElasticPositionEncoding(12)
    with pytest.raises(ValueError, match="patch_size=0"):
        ElasticPositionEncoding(16, patch_size=0)
    pe = ElasticPositionEncoding(16, patch_size=8)
    assert_config_roundtrip(pe)
    boxes = tf.random.uniform((2, 3, 4), 0, 64)
    assert_jit_compiles(lambda b: pe(b), boxes)
    import keras
    inp = keras.Input((3, 4))
    assert_keras_roundtrip(keras.Model(inp, pe(inp)), boxes)
