"""Fixed sin-cos position encoding of arbitrary patch boxes (AdaGlimpse / BeyondGrids)."""

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse.validation import positive_int


def sincos_1d(positions, dim, temperature=10000.0):
    """MAE-style 1-D sin-cos encoding: `dim/2` sines then `dim/2` cosines.

    Args:
        positions: float tensor of any shape `S`.
        dim: even int, output channels.
        temperature: base of the geometric frequency ladder.

    Returns:
        `S + (dim,)` tensor with `omega_k = temperature ** (-k / (dim / 2))`.
    """
    half = dim // 2
    omega = tf.pow(float(temperature), -tf.range(half, dtype=tf.float32) / float(half))
    angles = tf.cast(positions, tf.float32)[..., None] * omega
    return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)


def grid_position_table(grid_height, grid_width, dim, temperature=10000.0):
    """The standard (MAE) fixed 2-D sin-cos table of a regular patch grid.

    Row-major over the grid; each entry is `[sincos_1d(col, dim/2),
    sincos_1d(row, dim/2)]` (MAE's `meshgrid(w, h)` ordering). Used by the
    decoders for their mask tokens.

    Returns:
        `(grid_height * grid_width, dim)` float32 numpy array.
    """
    if dim % 4:
        raise ValueError(f"`dim` must be divisible by 4; received dim={dim}.")
    rows, cols = np.meshgrid(np.arange(grid_height), np.arange(grid_width), indexing="ij")

    def sincos(pos, d):
        omega = float(temperature) ** (-np.arange(d // 2, dtype=np.float64) / (d // 2))
        angles = pos.reshape(-1)[:, None].astype(np.float64) * omega[None]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    table = np.concatenate([sincos(cols, dim // 2), sincos(rows, dim // 2)], axis=1)
    return table.astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_glimpse")
class ElasticPositionEncoding(keras.layers.Layer):
    """Fixed sin-cos encoding of each patch's pixel box, for elastic ViTs.

    A box `(y1, x1, y2, x2)` in pixels is divided by `patch_size` (patch
    units). Each of the four numbers gets `dim/4` channels: `dim/8` sines
    followed by `dim/8` cosines at `omega_k = temperature^(-k/(dim/8))`,
    concatenated in the order `[y1, x1, y2, x2]`. For the regular grid of
    boxes `(i, j, i+1, j+1)` this is the MAE 1-D table of every box corner,
    i.e. a fixed grid table, so a model trained on grids sees the same
    encodings. Nothing is learned.

    Args:
        dim: int divisible by 8, the token width D.
        patch_size: int, pixels per patch unit (16).
        temperature: float, frequency base (10000).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        boxes: `(..., 4)` float pixel boxes `(y1, x1, y2, x2)`.

    Returns:
        `(..., dim)` float tensor.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.elastic_position_encoding import ElasticPositionEncoding
    >>> pe = ElasticPositionEncoding(dim=16, patch_size=16)
    >>> tuple(pe(np.zeros((2, 5, 4), "float32")).shape)
    (2, 5, 16)

    Reference:
        Pardyl et al., "AdaGlimpse: Active Visual Exploration with Arbitrary
        Glimpse Position and Scale", ECCV 2024; He et al., "Masked
        Autoencoders Are Scalable Vision Learners", CVPR 2022 (sin-cos table).
    """

    def __init__(self, dim, patch_size=16, temperature=10000.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0 or dim % 8:
            raise ValueError(f"`dim` must be a positive multiple of 8; received dim={dim!r}.")
        positive_int("patch_size", patch_size)
        if not float(temperature) > 1.0:
            raise ValueError(f"`temperature` must be > 1; received temperature={temperature!r}.")
        self.dim = dim
        self.patch_size = patch_size
        self.temperature = float(temperature)

    def call(self, boxes):
        boxes = tf.cast(boxes, tf.float32) / float(self.patch_size)
        parts = [sincos_1d(boxes[..., i], self.dim // 4, self.temperature) for i in range(4)]
        return tf.cast(tf.concat(parts, axis=-1), self.compute_dtype)

    def compute_output_shape(self, boxes_shape):
        return tuple(boxes_shape[:-1]) + (self.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, patch_size=self.patch_size, temperature=self.temperature)
        return config
