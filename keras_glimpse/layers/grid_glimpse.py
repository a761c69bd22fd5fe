"""RECAP's discrete grid of glimpse locations with a bilinear retina."""

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class GridGlimpse(keras.layers.Layer):
    """Glimpse sensor over a discrete grid of `N x N` candidate locations.

    A square image of side `I` is covered by `N = floor((I - P) / s) + 1`
    cells per axis. Action `a` in `[0, N^2)` is the cell at row `a // N`,
    column `a % N`; its centre pixel is `(P // 2 + row * s, P // 2 + col * s)`
    and its location is that centre normalised by `2 c / (I - 1) - 1`.

    Calling the layer returns the glimpse the agent sees: a `P x P` patch
    bilinearly sampled at points spaced one pixel apart, centred on the cell
    centre (offsets `j - (P - 1) / 2`), with sample coordinates clamped to the
    image (edge replication), as `grid_sample(align_corners=True)` does in the
    reference. For odd `P` this is exactly the unfold patch of the cell; for
    even `P` the samples fall on half pixels (slightly blurred and shifted),
    as in the reference. `all_patches` returns the exact unfold patches used
    for classifier pre-training.

    Cell indices are clipped to `[0, N^2 - 1]`.

    Args:
        image_size: int, side `I` of the (square) input images.
        patch_size: int, side `P` of a glimpse.
        stride: int, grid stride `s` in pixels.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: float tensor `(B, I, I, C)`.
        cell_index: int tensor `(B,)`, row-major cell indices.

    Returns:
        `(patches, locations)`: `(B, P, P, C)` glimpses and their `(B, 2)`
        normalised `(y, x)` locations.

    Example:
    >>> from keras_glimpse.layers.grid_glimpse import GridGlimpse
    >>> grid = GridGlimpse(image_size=64, patch_size=8, stride=4)
    >>> grid.num_cells
    225
    >>> patches, locations = grid(tf.zeros((2, 64, 64, 1)), tf.constant([0, 112]))
    >>> patches.shape, locations.shape
    (TensorShape([2, 8, 8, 1]), TensorShape([2, 2]))

    Reference:
        "Reinforcement Learning for Visual Comprehension" (RECAP / RLVC
        code), spec `ordinal-uram-recap-ram.md` section 3.3.
    """

    def __init__(self, image_size, patch_size, stride, **kwargs):
        super().__init__(**kwargs)
        positive_int("image_size", image_size)
        positive_int("patch_size", patch_size)
        positive_int("stride", stride)
        if patch_size > image_size:
            raise ValueError(
                f"`patch_size` must not exceed `image_size`; received patch_size={patch_size}, "
                f"image_size={image_size}."
            )
        if image_size < 2:
            raise ValueError(f"`image_size` must be at least 2; received image_size={image_size}.")
        self.image_size = int(image_size)
        self.patch_size = int(patch_size)
        self.stride = int(stride)
        self.cells_per_side = (self.image_size - self.patch_size) // self.stride + 1
        self.num_cells = self.cells_per_side**2
        self._channels = None

    # ------------------------------------------------------------- geometry
    def _centres(self, cell_index):
        """Centre pixels `(row, col)` (int32) of the given cell indices."""
        n = self.cells_per_side
        row, col = cell_index // n, cell_index % n
        half = self.patch_size // 2
        return half + row * self.stride, half + col * self.stride

    def _normalise(self, centre):
        return 2.0 * tf.cast(centre, tf.float32) / float(self.image_size - 1) - 1.0

    def cell_locations(self):
        """Normalised `(y, x)` locations of all cells, `(N^2, 2)`, row-major."""
        cy, cx = self._centres(tf.range(self.num_cells, dtype=tf.int32))
        return tf.stack([self._normalise(cy), self._normalise(cx)], axis=-1)

    # ----------------------------------------------------------- validation
    def _check_images(self, images):
        shape = images.shape
        if shape.rank != 4:
            raise ValueError(
                "GridGlimpse expects images of shape (batch, height, width, channels); "
                f"received shape {tuple(shape)} (rank {shape.rank})."
            )
        for dim, what in ((shape[1], "height"), (shape[2], "width")):
            if dim is not None and dim != self.image_size:
                raise ValueError(
                    f"GridGlimpse was configured for {self.image_size}x{self.image_size} "
                    f"images; received images of shape {tuple(shape)} ({what} {dim})."
                )
        if self._channels is not None and shape[-1] is not None and shape[-1] != self._channels:
            raise ValueError(
                f"GridGlimpse was built for {self._channels} channels; received images of "
                f"shape {tuple(shape)}."
            )

    def build(self, images_shape):
        shape = tf.TensorShape(images_shape)
        if shape.rank is not None and shape.rank != 4:
            raise ValueError(
                "GridGlimpse expects images of shape (batch, height, width, channels); "
                f"received shape {tuple(shape)} (rank {shape.rank})."
            )
        self._channels = shape[-1] if shape.rank is not None else None

    # ----------------------------------------------------------------- call
    def _axis_samples(self, centre):
        """Bilinear sample indices and weights along one axis, `(B, P)` each."""
        offsets = tf.range(self.patch_size, dtype=tf.float32) - 0.5 * (self.patch_size - 1)
        pos = tf.cast(centre, tf.float32)[:, None] + offsets[None, :]
        pos = tf.clip_by_value(pos, 0.0, float(self.image_size - 1))
        lo = tf.floor(pos)
        frac = pos - lo
        lo = tf.cast(lo, tf.int32)
        hi = tf.minimum(lo + 1, self.image_size - 1)
        return lo, hi, frac

    def call(self, images, cell_index):
        images = tf.convert_to_tensor(images)
        cell_index = tf.convert_to_tensor(cell_index)
        self._check_images(images)
        if cell_index.shape.rank != 1:
            raise ValueError(
                "`cell_index` must be a (batch,) integer tensor of row-major cell indices; "
                f"received shape {tuple(cell_index.shape)}."
            )
        if not images.dtype.is_floating:
            images = tf.cast(images, self.compute_dtype)
        p = self.patch_size
        cell_index = tf.clip_by_value(tf.cast(cell_index, tf.int32), 0, self.num_cells - 1)
        cy, cx = self._centres(cell_index)
        # Rows: one gather for the low and high neighbours, then blend.
        lo, hi, frac = self._axis_samples(cy)
        x = tf.gather(images, tf.concat([lo, hi], axis=1), axis=1, batch_dims=1)
        frac = tf.cast(frac, x.dtype)[:, :, None, None]
        x = x[:, :p] + frac * (x[:, p:] - x[:, :p])  # (B, P, I, C)
        # Columns.
        lo, hi, frac = self._axis_samples(cx)
        x = tf.gather(x, tf.concat([lo, hi], axis=1), axis=2, batch_dims=1)
        frac = tf.cast(frac, x.dtype)[:, None, :, None]
        patches = x[:, :, :p] + frac * (x[:, :, p:] - x[:, :, :p])  # (B, P, P, C)
        locations = tf.stack([self._normalise(cy), self._normalise(cx)], axis=-1)
        return patches, locations

    def all_patches(self, images):
        """Exact unfold (kernel `P`, stride `s`, row-major): `(B, N^2, P, P, C)`."""
        images = tf.convert_to_tensor(images)
        self._check_images(images)
        n, p = self.cells_per_side, self.patch_size
        idx = (np.arange(n)[:, None] * self.stride + np.arange(p)[None, :]).reshape(-1)
        x = tf.gather(images, idx, axis=1)  # (B, N*P, I, C)
        x = tf.gather(x, idx, axis=2)  # (B, N*P, N*P, C)
        shape = tf.shape(x)
        x = tf.reshape(x, [shape[0], n, p, n, p, shape[3]])
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
        return tf.reshape(x, [shape[0], n * n, p, p, shape[3]])

    def compute_output_shape(self, images_shape, cell_index_shape):
        p = self.patch_size
        return (images_shape[0], p, p, images_shape[-1]), (images_shape[0], 2)

    def get_config(self):
        config = super().get_config()
        config.update(image_size=self.image_size, patch_size=self.patch_size, stride=self.stride)
        return config
