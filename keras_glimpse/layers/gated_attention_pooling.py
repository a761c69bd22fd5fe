"""Gated (tanh-scored) attention pooling over a sequence, with a temperature."""

import keras

from keras_glimpse import precision
from keras_glimpse.validation import positive_int

_MASK_VALUE = -1e9


@keras.saving.register_keras_serializable(package="keras_glimpse")
class GatedAttentionPooling(keras.layers.Layer):
    """Pools a sequence into one vector with learned, temperature-scaled weights.

    `score_t = Dense(1)(tanh(Dense(hidden_units)(x_t)))`,
    `alpha = softmax_t(score / temperature)` and the output is
    `sum_t alpha_t x_t`. With `mask` (True = valid step), invalid steps get
    `-1e9` before the softmax, i.e. zero weight; every row needs at least one
    valid step. RECAP uses 128 hidden units and temperature 0.5 (a sharper
    softmax than 1.0).

    Args:
        hidden_units: width of the tanh scoring layer (128 in RECAP).
        temperature: positive softmax temperature (0.5 in RECAP).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        sequence: `(B, T, D)` float tensor.
        mask: optional `(B, T)` bool tensor, True = the step takes part.
        return_weights: if True, also return the weights `alpha` `(B, T)`.

    Returns:
        `(B, D)` pooled tensor, or `(pooled, alpha)` with `return_weights=True`.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.gated_attention_pooling import GatedAttentionPooling
    >>> pool = GatedAttentionPooling(hidden_units=8, temperature=0.5)
    >>> tuple(pool(np.ones((2, 5, 4), "float32")).shape)
    (2, 4)

    Reference:
        RECAP / RLVC, "Reinforcement Learning for Visual Comprehension"
        (`gate` in `networks.py`), spec `ordinal-uram-recap-ram.md` section 3.4.
    """

    def __init__(self, hidden_units=128, temperature=0.5, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # `mask` is an explicit call argument
        positive_int("hidden_units", hidden_units)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not temperature > 0:
            raise ValueError(
                f"`temperature` must be a positive number; received temperature={temperature!r}."
            )
        self.hidden_units = hidden_units
        self.temperature = float(temperature)
        self.hidden_dense = keras.layers.Dense(hidden_units, activation="tanh", name="hidden_dense")
        self.score_dense = keras.layers.Dense(1, name="score_dense")

    def build(self, sequence_shape, mask_shape=None):
        sequence_shape = tuple(sequence_shape)
        if len(sequence_shape) != 3:
            raise ValueError(
                "GatedAttentionPooling expects a sequence of shape (batch, steps, features); "
                f"received shape {sequence_shape}."
            )
        self.hidden_dense.build(sequence_shape)
        self.score_dense.build(sequence_shape[:-1] + (self.hidden_units,))
        self.built = True

    def call(self, sequence, mask=None, return_weights=False):
        scores = keras.ops.squeeze(self.score_dense(self.hidden_dense(sequence)), axis=-1)
        scores = scores / self.temperature
        if mask is not None:
            valid = keras.ops.cast(mask, scores.dtype)
            scores = scores + (1.0 - valid) * precision.mask_value(scores.dtype, _MASK_VALUE)
        alpha = keras.ops.softmax(scores, axis=-1)
        pooled = keras.ops.sum(alpha[..., None] * sequence, axis=1)
        if return_weights:
            return pooled, alpha
        return pooled

    def compute_mask(self, sequence, mask=None):
        # The step mask is an explicit argument; nothing is propagated.
        return None

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return (sequence_shape[0], sequence_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_units": self.hidden_units, "temperature": self.temperature})
        return config
