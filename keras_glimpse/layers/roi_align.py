"""ROI-Align (legacy, non-aligned) as a batched separable bilinear gather."""

import keras
import tensorflow as tf

from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class RoiAlign(keras.layers.Layer):
    """Pools a `P x P` feature grid from every box with ROI-Align.

    Legacy "aligned=False" semantics (Detectron / torchvision default, used by
    the ordinal-embedding reference): a box `(x1, y1, x2, y2)` in image pixels
    maps to feature coordinates `x1 * spatial_scale ... x2 * spatial_scale`
    with **no** half-pixel offset; its width and height are clamped to at
    least one feature pixel. Each of the `P x P` bins averages
    `sampling_ratio x sampling_ratio` bilinear samples placed at
    `start + (j + 0.5) * size / (P * sampling_ratio)`. A sample more than one
    pixel outside the map contributes 0 (still counted in the average); a
    sample within one pixel outside is clamped to the border.

    Bilinear interpolation is separable and each bin is an average of
    samples, so every box reduces to a `P x h` row matrix and a `P x w`
    column matrix of interpolation weights; pooling is two batched matmuls
    (XLA-compilable, differentiable w.r.t. the features through matmuls, with
    no gather or scatter; no `crop_and_resize`).

    Args:
        output_size: int, bins per side `P`.
        spatial_scale: float, feature pixels per image pixel (15/84 for the
            ordinal-embedding backbone).
        sampling_ratio: int >= 1, samples per bin and axis (the adaptive
            `<= 0` mode of torchvision is not supported: it is data-dependent).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: float tensor `(B, h, w, C)`.
        boxes: float tensor `(B, K, 4)`, `(x1, y1, x2, y2)` in image pixels.

    Returns:
        Tensor `(B, K, P, P, C)`.

    Example:
    >>> from keras_glimpse.layers.roi_align import RoiAlign
    >>> roi = RoiAlign(output_size=5, spatial_scale=15 / 84)
    >>> features = tf.random.normal((2, 15, 15, 128))
    >>> roi(features, tf.constant([[[0.0, 0.0, 27.0, 27.0]]] * 2)).shape
    TensorShape([2, 1, 5, 5, 128])

    Reference:
        He et al., "Mask R-CNN", ICCV 2017; the legacy non-aligned variant as
        used by Li et al. 2021 (localization by ordinal embedding).
    """

    def __init__(self, output_size=5, spatial_scale=15 / 84, sampling_ratio=2, **kwargs):
        super().__init__(**kwargs)
        positive_int("output_size", output_size)
        positive_int("sampling_ratio", sampling_ratio)
        if (
            isinstance(spatial_scale, bool)
            or not isinstance(spatial_scale, (int, float))
            or not spatial_scale > 0
        ):
            raise ValueError(
                f"`spatial_scale` must be a positive number; received "
                f"spatial_scale={spatial_scale!r}."
            )
        self.output_size = output_size
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = sampling_ratio
        self._channels = None

    def _check_features(self, shape):
        if shape.rank != 4:
            raise ValueError(
                "RoiAlign expects features of shape (batch, height, width, channels); "
                f"received shape {tuple(shape)} (rank {shape.rank})."
            )
        if self._channels is not None and shape[-1] is not None and shape[-1] != self._channels:
            raise ValueError(
                f"RoiAlign was built for {self._channels} channels; received features of "
                f"shape {tuple(shape)}."
            )

    def build(self, features_shape):
        shape = tf.TensorShape(features_shape)
        self._check_features(shape)
        self._channels = shape[-1]

    def _axis_samples(self, start, end, size):
        """Bilinear indices `(B, K, P*r)` and weights for one axis."""
        p, r = self.output_size, self.sampling_ratio
        start = start * self.spatial_scale
        length = tf.maximum(end * self.spatial_scale - start, 1.0)
        j = tf.range(p * r, dtype=tf.float32) + 0.5
        pos = start[..., None] + j * (length[..., None] / float(p * r))
        n = tf.cast(size, tf.float32)
        valid = tf.logical_and(pos >= -1.0, pos <= n)
        pos = tf.maximum(pos, 0.0)
        lo = tf.floor(pos)
        at_edge = lo >= n - 1.0
        lo = tf.where(at_edge, n - 1.0, lo)
        frac = tf.where(at_edge, 0.0, pos - lo)
        lo = tf.cast(lo, tf.int32)
        hi = tf.minimum(lo + 1, size - 1)
        return lo, hi, frac, tf.cast(valid, tf.float32)

    def _axis_matrix(self, start, end, size):
        """`(B, K, P, size)` weights: bin `p` of an axis as a weighted sum of
        feature rows (bilinear samples averaged over the bin), so pooling is two
        small batched matmuls whose gradients are matmuls too (no scatter)."""
        p, r = self.output_size, self.sampling_ratio
        lo, hi, frac, valid = self._axis_samples(start, end, size)
        weight = valid / float(r)
        m = (tf.one_hot(lo, size) * ((1.0 - frac) * weight)[..., None]
             + tf.one_hot(hi, size) * (frac * weight)[..., None])  # (B, K, P*r, size)
        shape = tf.shape(m)
        return tf.reduce_sum(tf.reshape(m, [shape[0], shape[1], p, r, size]), axis=3)

    def call(self, features, boxes):
        features = tf.convert_to_tensor(features)
        boxes = tf.convert_to_tensor(boxes)
        self._check_features(features.shape)
        if boxes.shape.rank != 3 or boxes.shape[-1] != 4:
            raise ValueError(
                "`boxes` must have shape (batch, num_boxes, 4) holding (x1, y1, x2, y2) in "
                f"image pixels; received shape {tuple(boxes.shape)}."
            )
        if (
            features.shape[0] is not None
            and boxes.shape[0] is not None
            and features.shape[0] != boxes.shape[0]
        ):
            raise ValueError(
                f"`features` and `boxes` must have the same batch size; received "
                f"{features.shape[0]} and {boxes.shape[0]}."
            )
        if not features.dtype.is_floating:
            features = tf.cast(features, self.compute_dtype)
        boxes = tf.cast(boxes, tf.float32)
        shape = tf.shape(features)
        batch, height, width = shape[0], shape[1], shape[2]
        k = tf.shape(boxes)[1]
        p, dtype = self.output_size, features.dtype
        rows = tf.cast(self._axis_matrix(boxes[..., 1], boxes[..., 3], height), dtype)
        cols = tf.cast(self._axis_matrix(boxes[..., 0], boxes[..., 2], width), dtype)
        # Rows: (B, K*P, h) @ (B, h, w*C), one batched matmul.
        x = tf.matmul(tf.reshape(rows, [batch, k * p, height]),
                      tf.reshape(features, [batch, height, -1]))
        x = tf.reshape(x, [batch, k, p, width, -1])  # (B, K, P, w, C)
        # Columns: (B, K, P, w) contracted with the w axis.
        return tf.einsum("bkqw,bkpwc->bkpqc", cols, x)

    def compute_output_shape(self, features_shape, boxes_shape):
        p = self.output_size
        return (features_shape[0], boxes_shape[1], p, p, features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            output_size=self.output_size,
            spatial_scale=self.spatial_scale,
            sampling_ratio=self.sampling_ratio,
        )
        return config
