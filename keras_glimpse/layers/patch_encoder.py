"""RECAP's perception encoder: a small CNN on one patch plus its location."""

import keras

from keras_glimpse.validation import positive_int

_NORMS = ("layer", "batch")


def _make_norm(norm, name):
    if norm == "batch":
        return keras.layers.BatchNormalization(synchronized=True, name=name)
    return keras.layers.LayerNormalization(name=name)


@keras.saving.register_keras_serializable(package="keras_glimpse")
class PatchEncoder(keras.layers.Layer):
    """Encodes a glimpse patch and its location into one embedding (RECAP).

    Architecture (D = `embed_dim`):

        Conv3x3(filters[0], same) -> norm -> ReLU
        Conv3x3(filters[1], stride 2, same) -> norm -> ReLU
        global average pool                        -> (B, filters[1])
        + Dense(filters[1])(location)              (linear, added)
        Dense(hidden_units) -> norm -> ReLU -> Dense(D)

    Normalisation: `norm="layer"` (the default) uses `LayerNormalization` over
    the channel axis; `norm="batch"` uses `BatchNormalization(synchronized=True)`
    as the original code does (BatchNorm2d / BatchNorm1d). LayerNorm is the
    default because it is safer under `MirroredStrategy` and with the small,
    step-dependent batches a glimpse rollout produces: it has no batch
    statistics, so training and inference behave the same, a per-replica
    batch of a few images is fine, and no cross-replica all-reduce runs at
    every glimpse step.

    Args:
        embed_dim: output width D (64 in RECAP's default, 128 in its exp1).
        norm: `"layer"` or `"batch"`.
        filters: the two convolution widths, `(64, 128)` in RECAP.
        hidden_units: width of the hidden dense layer, 256 in RECAP.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        patches: `(B, P, P, C)` float tensor.
        locations: `(B, 2)` float tensor, `(y, x)` in `[-1, 1]`.
        training: Python bool, for BatchNorm.

    Returns:
        `(B, embed_dim)` float tensor.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.patch_encoder import PatchEncoder
    >>> enc = PatchEncoder(embed_dim=16)
    >>> tuple(enc(np.zeros((2, 8, 8, 1), "float32"), np.zeros((2, 2), "float32")).shape)
    (2, 16)

    Reference:
        RECAP / RLVC, "Reinforcement Learning for Visual Comprehension"
        (`networks.py::PerceptionEncoder`), spec section 3.4.
    """

    def __init__(self, embed_dim=64, norm="layer", filters=(64, 128), hidden_units=256,
                 **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = positive_int("embed_dim", embed_dim)
        if norm not in _NORMS:
            raise ValueError(f"`norm` must be one of {_NORMS}; received norm={norm!r}.")
        self.norm = norm
        filters = tuple(filters) if isinstance(filters, (list, tuple)) else filters
        if not isinstance(filters, tuple) or len(filters) != 2:
            raise ValueError(
                f"`filters` must be a pair of positive integers; received filters={filters!r}."
            )
        for f in filters:
            positive_int("filters", f)
        self.filters = filters
        self.hidden_units = positive_int("hidden_units", hidden_units)

        self.conv1 = keras.layers.Conv2D(filters[0], 3, padding="same", name="conv1")
        self.norm1 = _make_norm(norm, "norm1")
        self.conv2 = keras.layers.Conv2D(filters[1], 3, strides=2, padding="same", name="conv2")
        self.norm2 = _make_norm(norm, "norm2")
        self.location_dense = keras.layers.Dense(filters[1], name="location_dense")
        self.hidden_dense = keras.layers.Dense(hidden_units, name="hidden_dense")
        self.norm3 = _make_norm(norm, "norm3")
        self.output_dense = keras.layers.Dense(embed_dim, name="output_dense")

    def build(self, patches_shape, locations_shape=None):
        patches_shape = tuple(patches_shape)
        if len(patches_shape) != 4:
            raise ValueError(
                "PatchEncoder expects patches of shape (batch, P, P, channels); received "
                f"shape {patches_shape}."
            )
        self.conv1.build(patches_shape)
        h1 = self.conv1.compute_output_shape(patches_shape)
        self.norm1.build(h1)
        self.conv2.build(h1)
        h2 = self.conv2.compute_output_shape(h1)
        self.norm2.build(h2)
        self.location_dense.build((None, 2))
        self.hidden_dense.build((None, self.filters[1]))
        self.norm3.build((None, self.hidden_units))
        self.output_dense.build((None, self.hidden_units))
        self.built = True

    def call(self, patches, locations, training=None):
        x = keras.ops.relu(self.norm1(self.conv1(patches), training=training))
        x = keras.ops.relu(self.norm2(self.conv2(x), training=training))
        x = keras.ops.mean(x, axis=(1, 2))
        x = x + self.location_dense(keras.ops.cast(locations, self.compute_dtype))
        x = keras.ops.relu(self.norm3(self.hidden_dense(x), training=training))
        return self.output_dense(x)

    def compute_output_shape(self, patches_shape, locations_shape=None):
        return (patches_shape[0], self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "embed_dim": self.embed_dim,
            "norm": self.norm,
            "filters": self.filters,
            "hidden_units": self.hidden_units,
        })
        return config
