"""RAM's glimpse network: fuses "what" (the glimpse) and "where" (its location)."""

import math

import keras

from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class GlimpseNetwork(keras.layers.Layer):
    """The "what + where" glimpse network of the Recurrent Attention Model.

    Flattens the glimpse (any trailing shape, e.g. the `(k, g, g, C)` output of
    `RetinaSensor`) and embeds it and the location separately, then sums two
    linear projections of the embeddings:

        h_g = ReLU(Dense(glimpse_units)(flatten(glimpse)))
        h_l = ReLU(Dense(location_units)(l))
        g   = ReLU(Dense(output_units)(h_g) + Dense(output_units)(h_l))

    Args:
        glimpse_units: width of the glimpse ("what") embedding h_g.
        location_units: width of the location ("where") embedding h_l.
        output_units: width of the fused glimpse feature g.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        glimpses: `(B, ...)` float tensor; every axis after the batch is flattened
            (the trailing shape must be static).
        locations: `(B, 2)` float tensor, `(y, x)` in `[-1, 1]`.

    Returns:
        `(B, output_units)` float tensor.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.glimpse_network import GlimpseNetwork
    >>> net = GlimpseNetwork(glimpse_units=16, location_units=16, output_units=32)
    >>> g = net(np.zeros((4, 1, 8, 8, 1), "float32"), np.zeros((4, 2), "float32"))
    >>> tuple(g.shape)
    (4, 32)

    Reference:
        Mnih et al., "Recurrent Models of Visual Attention", NIPS 2014
        (arXiv:1406.6247), glimpse network f_g.
    """

    def __init__(self, glimpse_units=128, location_units=128, output_units=256, **kwargs):
        super().__init__(**kwargs)
        self.glimpse_units = positive_int("glimpse_units", glimpse_units)
        self.location_units = positive_int("location_units", location_units)
        self.output_units = positive_int("output_units", output_units)
        self.glimpse_dense = keras.layers.Dense(glimpse_units, activation="relu",
                                                name="glimpse_dense")
        self.location_dense = keras.layers.Dense(location_units, activation="relu",
                                                 name="location_dense")
        self.what_dense = keras.layers.Dense(output_units, name="what_dense")
        self.where_dense = keras.layers.Dense(output_units, name="where_dense")

    def _flat_dim(self, glimpses_shape):
        trailing = tuple(glimpses_shape[1:])
        if not trailing or any(d is None for d in trailing):
            raise ValueError(
                "GlimpseNetwork needs glimpses with a static non-batch shape; received "
                f"shape {tuple(glimpses_shape)}."
            )
        return int(math.prod(trailing))

    def build(self, glimpses_shape, locations_shape=None):
        flat = self._flat_dim(glimpses_shape)
        loc_dim = 2 if locations_shape is None or locations_shape[-1] is None else locations_shape[-1]
        self.glimpse_dense.build((None, flat))
        self.location_dense.build((None, loc_dim))
        self.what_dense.build((None, self.glimpse_units))
        self.where_dense.build((None, self.location_units))
        self.built = True

    def call(self, glimpses, locations):
        flat = self._flat_dim(glimpses.shape)
        x = keras.ops.reshape(glimpses, (-1, flat))
        h_g = self.glimpse_dense(x)
        h_l = self.location_dense(keras.ops.cast(locations, self.compute_dtype))
        return keras.ops.relu(self.what_dense(h_g) + self.where_dense(h_l))

    def compute_output_shape(self, glimpses_shape, locations_shape=None):
        return (glimpses_shape[0], self.output_units)

    def get_config(self):
        config = super().get_config()
        config.update({
            "glimpse_units": self.glimpse_units,
            "location_units": self.location_units,
            "output_units": self.output_units,
        })
        return config
