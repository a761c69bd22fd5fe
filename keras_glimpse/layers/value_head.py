"""A scalar value / baseline head."""

import keras

from keras_glimpse import precision
from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class ValueHead(keras.layers.Layer):
    """State-value (REINFORCE baseline) head: `Dense(1)(ReLU(Dense(hidden)(x)))`.

    With `hidden_units=None` it is RAM's linear baseline `Dense(1)(h_t)`;
    RECAP uses `hidden_units=64`. The caller passes `stop_gradient(h_t)` so
    that the baseline loss trains this head only (DESIGN rule 6).

    Args:
        hidden_units: width of the hidden ReLU layer, or `None` (linear).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: `(B, D)` float tensor.

    Returns:
        `(B,)` float tensor of values.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.value_head import ValueHead
    >>> tuple(ValueHead(hidden_units=8)(np.ones((3, 4), "float32")).shape)
    (3,)

    Reference:
        Mnih et al., "Recurrent Models of Visual Attention", NIPS 2014
        (baseline b_t); RECAP value head (spec section 3.4).
    """

    def __init__(self, hidden_units=None, **kwargs):
        # float32 under a mixed policy: its outputs feed the losses (keras_glimpse.precision).
        kwargs["dtype"] = precision.output_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        positive_int("hidden_units", hidden_units, allow_none=True)
        self.hidden_units = hidden_units
        self.hidden_dense = (keras.layers.Dense(hidden_units, activation="relu",
                                                name="hidden_dense", dtype=self.dtype_policy)
                             if hidden_units else None)
        self.value_dense = keras.layers.Dense(1, name="value_dense", dtype=self.dtype_policy)

    def build(self, features_shape):
        features_shape = tuple(features_shape)
        if self.hidden_dense is not None:
            self.hidden_dense.build(features_shape)
            features_shape = features_shape[:-1] + (self.hidden_units,)
        self.value_dense.build(features_shape)
        self.built = True

    def call(self, features):
        x = features
        if self.hidden_dense is not None:
            x = self.hidden_dense(x)
        return keras.ops.squeeze(self.value_dense(x), axis=-1)

    def compute_output_shape(self, features_shape):
        return (features_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_units": self.hidden_units})
        return config
