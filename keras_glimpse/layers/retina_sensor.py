"""RAM's foveated multi-scale retina (glimpse sensor)."""

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse.validation import positive_int

_CENTERINGS = ("floor", "bilinear")


def _window_lines(locations, axis_size, offsets, bilinear):
    """Lines of all scale windows along one image axis, in one gather's indices.

    `offsets` (L,) are the static offsets of every window line from the
    floored centre pixel, all scales concatenated. Returns clamped indices
    (B, L), a boolean mask that is False for lines outside the image, and the sub-pixel
    fraction of the centre (B,) (None for floor centring).
    """
    centre = 0.5 * (tf.clip_by_value(locations, -1.0, 1.0) + 1.0) * tf.cast(axis_size, tf.float32)
    base = tf.floor(centre)
    frac = centre - base if bilinear else None
    index = tf.cast(base, tf.int32)[:, None] + offsets[None, :]
    valid = tf.logical_and(index >= 0, index < axis_size)
    return tf.clip_by_value(index, 0, axis_size - 1), valid, frac


@keras.saving.register_keras_serializable(package="keras_glimpse")
class RetinaSensor(keras.layers.Layer):
    """Foveated multi-scale glimpse sensor of the Recurrent Attention Model.

    For every image of the batch and its location `l = (y, x)` in `[-1, 1]^2`
    (`(-1, -1)` is the top-left corner), the sensor cuts `num_scales` square
    windows of side `glimpse_size * scale_factor**i` (i = 0..k-1) centred on
    the location, average-pools each down to `glimpse_size x glimpse_size`
    (kernel and stride `side // glimpse_size`) and stacks them. Pixels outside
    the image read as zero. Each axis uses its own size, so non-square images
    work too.

    Centring rules:
    - `"floor"` (default, the reference RAM code): the centre pixel of an axis
      of `n` pixels is `c = floor(0.5 * (l + 1) * n)` and the window starts at
      `c - side // 2` (the reference pads by `side // 2` and slices from `c`).
    - `"bilinear"`: the same rule without the floor; the window is sampled at
      the continuous position `0.5 * (l + 1) * n - side // 2 + j` with
      bilinear interpolation. It equals `"floor"` whenever the centre falls on
      an integer pixel and moves smoothly in between.

    Locations are clipped to `[-1, 1]`. All scales are extracted together:
    one batched gather of rows, pooling, one batched gather of columns,
    pooling. Lines outside the image are masked to zero, which is the same
    as the reference's zero padding without materialising a padded copy. No
    per-sample loops and no `extract_glimpse`: it compiles under XLA and is
    differentiable w.r.t. the image (and, in bilinear mode, the location).

    Args:
        glimpse_size: int, side `g` of each output patch in pixels.
        num_scales: int, number of scales `k`.
        scale_factor: int, ratio `s` between the sides of consecutive scales.
        centering: `"floor"` or `"bilinear"`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: float tensor `(B, H, W, C)`.
        locations: float tensor `(B, 2)`, `(y, x)` in `[-1, 1]`.

    Returns:
        Tensor `(B, num_scales, g, g, C)`; scale 0 is the finest.

    Example:
    >>> from keras_glimpse.layers.retina_sensor import RetinaSensor
    >>> retina = RetinaSensor(glimpse_size=8, num_scales=3)
    >>> images = tf.random.uniform((4, 60, 60, 1))
    >>> retina(images, tf.zeros((4, 2))).shape
    TensorShape([4, 3, 8, 8, 1])

    Reference:
        Mnih et al., "Recurrent Models of Visual Attention", NIPS 2014; the
        centring follows the kevinzakka/recurrent-visual-attention retina.
    """

    def __init__(self, glimpse_size, num_scales=1, scale_factor=2, centering="floor", **kwargs):
        super().__init__(**kwargs)
        positive_int("glimpse_size", glimpse_size)
        positive_int("num_scales", num_scales)
        positive_int("scale_factor", scale_factor)
        if centering not in _CENTERINGS:
            raise ValueError(
                f"`centering` must be one of {_CENTERINGS}; received centering={centering!r}."
            )
        self.glimpse_size = glimpse_size
        self.num_scales = num_scales
        self.scale_factor = scale_factor
        self.centering = centering
        self.sizes = tuple(glimpse_size * scale_factor**i for i in range(num_scales))
        self._channels = None

    def _check_images(self, shape):
        if shape.rank is not None and shape.rank != 4:
            raise ValueError(
                "RetinaSensor expects images of shape (batch, height, width, channels); "
                f"received shape {tuple(shape)} (rank {shape.rank})."
            )

    def build(self, images_shape):
        shape = tf.TensorShape(images_shape)
        self._check_images(shape)
        self._channels = shape[-1] if shape.rank is not None else None

    def call(self, images, locations):
        images = tf.convert_to_tensor(images)
        locations = tf.convert_to_tensor(locations)
        self._check_images(images.shape)
        channels = images.shape[-1]
        if self._channels is not None and channels is not None and channels != self._channels:
            raise ValueError(
                f"RetinaSensor was built for {self._channels} channels; received images "
                f"of shape {tuple(images.shape)}."
            )
        if locations.shape.rank != 2 or locations.shape[-1] != 2:
            raise ValueError(
                "`locations` must have shape (batch, 2) holding (y, x) in [-1, 1]; "
                f"received shape {tuple(locations.shape)}."
            )
        if not images.dtype.is_floating:
            images = tf.cast(images, self.compute_dtype)
        locations = tf.cast(locations, tf.float32)
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        # Keep the static channel count through the reshapes below (-1 would
        # lose it when the batch size is unknown, e.g. inside model.evaluate).
        channels = images.shape[-1] if images.shape[-1] is not None else -1
        g, bilinear = self.glimpse_size, self.centering == "bilinear"
        extra = int(bilinear)  # bilinear windows read one more line to interpolate
        offsets = np.concatenate([np.arange(n + extra) - n // 2 for n in self.sizes])
        starts = np.cumsum([0] + [n + extra for n in self.sizes])
        offsets = tf.constant(offsets, tf.int32)

        def blend(x, frac, axis):
            # Line j + frac interpolates lines j and j + 1 of the same window.
            if frac is None:
                return x
            frac = tf.reshape(tf.cast(frac, x.dtype), [-1, 1, 1, 1])
            lo = x[:, :-1] if axis == 1 else x[:, :, :-1]
            hi = x[:, 1:] if axis == 1 else x[:, :, 1:]
            return lo + frac * (hi - lo)

        # Rows of every scale: one gather, zero outside, blend, then pool by side // g.
        rows, valid, frac = _window_lines(locations[:, 0], height, offsets, bilinear)
        x = tf.gather(images, rows, axis=1, batch_dims=1)  # (B, L, W, C)
        x = blend(tf.where(valid[:, :, None, None], x, tf.zeros_like(x)), frac, axis=1)
        x = tf.concat(
            [
                tf.reduce_mean(
                    tf.reshape(x[:, s0 : s0 + n], [batch, g, n // g, width, channels]), axis=2
                )
                for s0, n in zip(starts, self.sizes)
            ],
            axis=1,
        )  # (B, k*g, W, C)
        # Columns of every scale: one gather over all pooled rows, then per scale.
        cols, valid, frac = _window_lines(locations[:, 1], width, offsets, bilinear)
        x = tf.gather(x, cols, axis=2, batch_dims=1)  # (B, k*g, L, C)
        x = blend(tf.where(valid[:, None, :, None], x, tf.zeros_like(x)), frac, axis=2)
        out = [
            tf.reduce_mean(
                tf.reshape(x[:, i * g : (i + 1) * g, s0 : s0 + n], [batch, g, g, n // g, channels]),
                axis=3,
            )
            for i, (s0, n) in enumerate(zip(starts, self.sizes))
        ]
        return tf.stack(out, axis=1)

    def compute_output_shape(self, images_shape, locations_shape):
        g = self.glimpse_size
        return (images_shape[0], self.num_scales, g, g, images_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            glimpse_size=self.glimpse_size,
            num_scales=self.num_scales,
            scale_factor=self.scale_factor,
            centering=self.centering,
        )
        return config
