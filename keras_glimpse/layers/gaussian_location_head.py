"""RAM's Gaussian location policy."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_glimpse import precision
from keras_glimpse.validation import positive_int, check_seed

_MODES = ("sample", "greedy")


@keras.saving.register_keras_serializable(package="keras_glimpse")
class GaussianLocationHead(keras.layers.Layer):
    """Gaussian policy over the next glimpse location, with a fixed std.

    mean = tanh(Dense(2)(ReLU(Dense(hidden_units)(features)))) (the hidden
    layer is skipped when `hidden_units=None`). In `"sample"` mode the raw
    action is `mean + std * eps` with `eps = keras.random.normal(...)`; its
    log-probability `sum_xy log N(raw; mean, std)` is taken on the
    *unclamped*, stop-gradient sample, so its gradient flows to `mean` only
    (REINFORCE, the score-function estimator). The action handed to the
    sensor is `clip(stop_gradient(raw), -1, 1)`: it is detached, as in the
    fixed RAM reference (kevinzakka PR #32), so classification or
    reconstruction gradients never reach the policy through the location.
    In `"greedy"` mode the action is the mean.

    Gradient routing: the caller passes `stop_gradient(h_t)` as `features`
    so that the policy gradient does not reach the core (DESIGN rule 6).

    Args:
        std: the fixed standard deviation (0.05 in the RAM reference, 0.17 in
            URAM).
        hidden_units: width of the hidden ReLU layer (128 in the reference), or
            `None` for a linear map to the mean.
        mean_initializer: kernel initializer of the layer producing the mean.
            `"zeros"` makes the untrained policy look at the centre whatever
            the features (RAM uses it: a random initial mean drifts and
            saturates tanh at a corner, where the policy gradient vanishes).
        seed: int or None, seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: `(B, D)` float tensor.
        mode: `"sample"` or `"greedy"`.

    Returns:
        A dict of tensors:
        - `action`: `(B, 2)` location in `[-1, 1]`, `(y, x)`, stop-gradient.
        - `raw_action`: `(B, 2)` unclamped sample (the mean in greedy mode),
          stop-gradient.
        - `mean`: `(B, 2)` the policy mean (differentiable).
        - `log_prob`: `(B,)` `sum_xy log N(raw_action; mean, std)`.
        - `entropy`: `(B,)` the Gaussian entropy (a constant for fixed std).

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.gaussian_location_head import GaussianLocationHead
    >>> head = GaussianLocationHead(std=0.1, hidden_units=16, seed=0)
    >>> out = head(np.zeros((3, 8), "float32"), mode="sample")
    >>> tuple(out["action"].shape), tuple(out["log_prob"].shape)
    ((3, 2), (3,))

    Reference:
        Mnih et al., "Recurrent Models of Visual Attention", NIPS 2014
        (location network f_l); kevinzakka/recurrent-visual-attention.
    """

    def __init__(self, std=0.05, hidden_units=128, mean_initializer="glorot_uniform", seed=None,
                 **kwargs):
        # float32 under a mixed policy: its outputs feed the losses (keras_glimpse.precision).
        kwargs["dtype"] = precision.output_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not std > 0:
            raise ValueError(f"`std` must be a positive number; received std={std!r}.")
        positive_int("hidden_units", hidden_units, allow_none=True)
        check_seed(seed)
        self.std = float(std)
        self.hidden_units = hidden_units
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.hidden_dense = (keras.layers.Dense(hidden_units, activation="relu",
                                                name="hidden_dense", dtype=self.dtype_policy)
                             if hidden_units else None)
        self.mean_initializer = keras.initializers.get(mean_initializer)
        self.mean_dense = keras.layers.Dense(2, kernel_initializer=self.mean_initializer,
                                             name="mean_dense", dtype=self.dtype_policy)

    def build(self, features_shape):
        features_shape = tuple(features_shape)
        if self.hidden_dense is not None:
            self.hidden_dense.build(features_shape)
            features_shape = features_shape[:-1] + (self.hidden_units,)
        self.mean_dense.build(features_shape)
        self.built = True

    def call(self, features, mode="sample"):
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}; received mode={mode!r}.")
        x = features
        if self.hidden_dense is not None:
            x = self.hidden_dense(x)
        mean = keras.ops.tanh(self.mean_dense(x))
        if mode == "sample":
            eps = keras.random.normal(keras.ops.shape(mean), dtype=mean.dtype,
                                      seed=self.seed_generator)
            raw = tf.stop_gradient(mean + self.std * eps)
        else:
            raw = tf.stop_gradient(mean)
        dist = tfp.distributions.Normal(loc=mean, scale=tf.cast(self.std, mean.dtype))
        log_prob = tf.reduce_sum(dist.log_prob(raw), axis=-1)
        entropy = tf.reduce_sum(dist.entropy(), axis=-1)
        return {
            "action": tf.clip_by_value(raw, -1.0, 1.0),
            "raw_action": raw,
            "mean": mean,
            "log_prob": log_prob,
            "entropy": entropy,
        }

    def get_config(self):
        config = super().get_config()
        config.update({"std": self.std, "hidden_units": self.hidden_units,
                       "mean_initializer": keras.initializers.serialize(self.mean_initializer),
                       "seed": self.seed})
        return config
