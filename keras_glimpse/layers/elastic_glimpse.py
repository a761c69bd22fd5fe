"""AdaGlimpse's elastic glimpse: arbitrary position and scale, fixed resolution."""

import keras
import tensorflow as tf

from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class ElasticGlimpse(keras.layers.Layer):
    """Cuts a square glimpse of any position and size into `g x g` fixed-size patches.

    For an action `a = (a0, a1, a2)` in `[0, 1]^3` ordered **(y, x, scale)**
    and an image of height `H` and width `W`:

    - `d_min = min_size` (default `patch_size * grid_size`) and
      `d_max = min(H, W) * max_size_ratio`;
    - side `d = floor(a2 * (d_max - d_min) + d_min)`, top
      `y0 = floor(a0 * (H - d))`, left `x0 = floor(a1 * (W - d))`;
    - the glimpse is split into `g x g` sub-squares of side `p = floor(d / g)`
      starting at `(y0 + r p, x0 + c p)`; sub-squares in the last row or the
      last column have side `d - (g - 1) p` (they stay square);
    - each sub-square is resized to `patch_size x patch_size` with bilinear
      interpolation, half-pixel centres and no antialiasing, clamped at the
      sub-square border (torchvision `resize(antialias=False)` on the crop,
      i.e. `tf.image.resize(crop, method="bilinear", antialias=False)`).

    The crop-and-resize is a batched separable bilinear gather (rows, then
    columns): no `crop_and_resize`, XLA-compilable. Actions are clipped to
    `[0, 1]`; the integer geometry carries no gradient (AdaGlimpse learns the
    policy with SAC, not through the sensor).

    Args:
        grid_size: int, sub-squares per side `g`.
        patch_size: int, output side of every patch (16, the ViT patch).
        min_size: int or None, smallest glimpse side `d_min`; None means
            `patch_size * grid_size` (maximum zoom = native resolution).
        max_size_ratio: float in `(0, 1]`, largest glimpse side as a fraction
            of `min(H, W)`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        images: float tensor `(B, H, W, C)`.
        actions: float tensor `(B, 3)`, `(y, x, scale)` in `[0, 1]`.

    Returns:
        `(patches, boxes)`: `(B, g*g, patch_size, patch_size, C)` patches in
        row-major sub-square order and their `(B, g*g, 4)` float pixel boxes
        `(y1, x1, y2, x2)` (`y2 = y1 + side`, exclusive).

    Example:
    >>> from keras_glimpse.layers.elastic_glimpse import ElasticGlimpse
    >>> sensor = ElasticGlimpse(grid_size=2, patch_size=16)
    >>> patches, boxes = sensor(tf.zeros((1, 224, 224, 3)), tf.constant([[0.0, 0.0, 1.0]]))
    >>> patches.shape, boxes[0, 3].numpy().tolist()
    (TensorShape([1, 4, 16, 16, 3]), [112.0, 112.0, 224.0, 224.0])

    Reference:
        Pardyl et al., "AdaGlimpse: Active Visual Exploration with Arbitrary
        Glimpse Position and Scale", ECCV 2024.
    """

    def __init__(self, grid_size=2, patch_size=16, min_size=None, max_size_ratio=1.0, **kwargs):
        super().__init__(**kwargs)
        positive_int("grid_size", grid_size)
        positive_int("patch_size", patch_size)
        if min_size is not None:
            positive_int("min_size", min_size)
            if min_size < grid_size:
                raise ValueError(
                    f"`min_size` must be at least `grid_size` ({grid_size}) so that every "
                    f"sub-square has a pixel; received min_size={min_size}."
                )
        if (
            isinstance(max_size_ratio, bool)
            or not isinstance(max_size_ratio, (int, float))
            or not 0.0 < max_size_ratio <= 1.0
        ):
            raise ValueError(
                f"`max_size_ratio` must be a number in (0, 1]; received "
                f"max_size_ratio={max_size_ratio!r}."
            )
        self.grid_size = grid_size
        self.patch_size = patch_size
        self.min_size = min_size
        self.max_size_ratio = float(max_size_ratio)
        self._channels = None

    @property
    def d_min(self):
        return self.min_size if self.min_size is not None else self.patch_size * self.grid_size

    def _check_images(self, shape):
        if shape.rank != 4:
            raise ValueError(
                "ElasticGlimpse expects images of shape (batch, height, width, channels); "
                f"received shape {tuple(shape)} (rank {shape.rank})."
            )
        if shape[1] is not None and shape[2] is not None:
            d_max = min(shape[1], shape[2]) * self.max_size_ratio
            if d_max < self.d_min:
                raise ValueError(
                    f"The largest glimpse (min(H, W) * max_size_ratio = {d_max}) is smaller "
                    f"than the smallest one (d_min = {self.d_min}); received images of shape "
                    f"{tuple(shape)}. Use larger images, a smaller min_size/patch_size, or a "
                    "larger max_size_ratio."
                )
        if self._channels is not None and shape[-1] is not None and shape[-1] != self._channels:
            raise ValueError(
                f"ElasticGlimpse was built for {self._channels} channels; received images of "
                f"shape {tuple(shape)}."
            )

    def build(self, images_shape):
        shape = tf.TensorShape(images_shape)
        self._check_images(shape)
        self._channels = shape[-1]

    def _axis_samples(self, start, side):
        """Half-pixel bilinear sources `(B, g*g, ps)` inside each sub-square."""
        ps = self.patch_size
        side_f = tf.cast(side, tf.float32)[..., None]
        o = tf.range(ps, dtype=tf.float32) + 0.5
        src = tf.maximum(o * side_f / float(ps) - 0.5, 0.0)
        lo = tf.floor(src)
        frac = src - lo
        lo = tf.cast(lo, tf.int32)
        hi = tf.minimum(lo + 1, side[..., None] - 1)
        return start[..., None] + lo, start[..., None] + hi, frac

    def call(self, images, actions):
        images = tf.convert_to_tensor(images)
        actions = tf.convert_to_tensor(actions)
        self._check_images(images.shape)
        if actions.shape.rank != 2 or actions.shape[-1] != 3:
            raise ValueError(
                "`actions` must have shape (batch, 3) holding (y, x, scale) in [0, 1]; "
                f"received shape {tuple(actions.shape)}."
            )
        if not images.dtype.is_floating:
            images = tf.cast(images, self.compute_dtype)
        g, ps = self.grid_size, self.patch_size
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        a = tf.clip_by_value(tf.cast(actions, tf.float32), 0.0, 1.0)
        d_min = float(self.d_min)
        d_max = tf.cast(tf.minimum(height, width), tf.float32) * self.max_size_ratio
        d = tf.floor(a[:, 2] * (d_max - d_min) + d_min)
        y0 = tf.cast(tf.floor(a[:, 0] * (tf.cast(height, tf.float32) - d)), tf.int32)
        x0 = tf.cast(tf.floor(a[:, 1] * (tf.cast(width, tf.float32) - d)), tf.int32)
        d = tf.cast(d, tf.int32)
        p = d // g
        last = d - (g - 1) * p
        # Row-major sub-square table (static): row, column, "is in last row/column".
        rows = [r for r in range(g) for _ in range(g)]
        cols = [c for _ in range(g) for c in range(g)]
        edge = tf.constant([float(r == g - 1 or c == g - 1) for r, c in zip(rows, cols)])
        rows, cols = tf.constant(rows, tf.int32), tf.constant(cols, tf.int32)
        sy = y0[:, None] + rows[None, :] * p[:, None]  # (B, g*g)
        sx = x0[:, None] + cols[None, :] * p[:, None]
        side = tf.where(edge[None, :] > 0, last[:, None], p[:, None])
        boxes = tf.cast(tf.stack([sy, sx, sy + side, sx + side], axis=-1), self.compute_dtype)

        n = g * g
        # Rows: gather low and high neighbours of every sample row, then blend.
        lo, hi, frac = self._axis_samples(sy, side)  # (B, n, ps)
        idx = tf.reshape(tf.concat([lo, hi], axis=-1), [batch, n * 2 * ps])
        x = tf.gather(images, idx, axis=1, batch_dims=1)  # (B, n*2*ps, W, C)
        x = tf.reshape(x, [batch, n, 2, ps, width, -1])
        frac = tf.cast(frac, x.dtype)[..., None, None]
        x = x[:, :, 0] + frac * (x[:, :, 1] - x[:, :, 0])  # (B, n, ps, W, C)
        # Columns.
        lo, hi, frac = self._axis_samples(sx, side)
        x = tf.gather(x, tf.concat([lo, hi], axis=-1), axis=3, batch_dims=2)  # (B, n, ps, 2ps, C)
        frac = tf.cast(frac, x.dtype)[:, :, None, :, None]
        patches = x[:, :, :, :ps] + frac * (x[:, :, :, ps:] - x[:, :, :, :ps])
        return patches, boxes

    def compute_output_shape(self, images_shape, actions_shape):
        n, ps = self.grid_size**2, self.patch_size
        return (images_shape[0], n, ps, ps, images_shape[-1]), (images_shape[0], n, 4)

    def get_config(self):
        config = super().get_config()
        config.update(
            grid_size=self.grid_size,
            patch_size=self.patch_size,
            min_size=self.min_size,
            max_size_ratio=self.max_size_ratio,
        )
        return config
