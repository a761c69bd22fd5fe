"""A tanh-squashed Gaussian policy on a box `[low, high]^A` (SAC actor head)."""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_glimpse import precision
from keras_glimpse.validation import number, positive_int, check_seed

_MODES = ("sample", "greedy")
_TARGET_STD_AT_ZERO = 0.5


@keras.saving.register_keras_serializable(package="keras_glimpse")
class TanhNormalHead(keras.layers.Layer):
    """Reparameterised tanh-Normal policy mapped onto `[low, high]^A`.

    `x = Dense(2A)(GELU(Dense(hidden_units)(features)))` (the hidden layer is
    skipped when `hidden_units=None`); `mu = x[:, :A]` and
    `sigma = softplus(x[:, A:] + c) + min_std`, with `c` chosen so that
    `sigma = 0.5` when the pre-activation is 0 (torchrl's
    "biased_softplus_0.5"). Sampling is reparameterised,
    `u = mu + sigma * eps` with `eps = keras.random.normal(...)`, and

        a = low + (high - low) * (0.5 + 0.5 * tanh(u))
        log pi(a) = sum_d [ log N(u_d; mu_d, sigma_d)
                            - log(1 - tanh(u_d)^2) - log((high - low) / 2) ]

    with the stable form `log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`.
    Gradients flow through `a` and `log_prob` to `mu` and `sigma` (as SAC's
    actor loss needs). `"greedy"` mode returns the deterministic
    `a = low + (high - low) * (0.5 + 0.5 tanh(mu))`.

    Deviation from AdaGlimpse/torchrl: torchrl shifts the location by
    `(high - low)/2 + low` (= +0.5 on [0, 1]) before the tanh; we drop that
    shift (the spec allows it: it only moves the initial mean action and is
    absorbed by the bias). Its evaluation "mean" (the average of 1000 samples)
    is replaced by the deterministic `tanh(mu)` mapping.

    Args:
        action_dim: A (3 for AdaGlimpse: y, x, scale).
        hidden_units: width of the hidden GELU layer (256), or `None`.
        low: lower bound of every action coordinate.
        high: upper bound (must exceed `low`).
        min_std: floor added to the softplus std (0.01).
        seed: int or None, seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: `(B, D)` float tensor.
        mode: `"sample"` or `"greedy"`.

    Returns:
        A dict of tensors:
        - `action`: `(B, A)` in `[low, high]` (sampled, or the mean action).
        - `mean`: `(B, A)` deterministic action `low + (high-low)(0.5+0.5 tanh mu)`.
        - `log_prob`: `(B,)` log-density of `action` (at `u = mu` in greedy mode).
        - `loc`: `(B, A)` mu; `scale`: `(B, A)` sigma.
        - `raw_action`: `(B, A)` the pre-tanh sample u.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.tanh_normal_head import TanhNormalHead
    >>> head = TanhNormalHead(action_dim=3, hidden_units=16, seed=0)
    >>> out = head(np.zeros((2, 8), "float32"))
    >>> tuple(out["action"].shape), float(out["scale"][0, 0])
    ((2, 3), 0.5)

    Reference:
        Pardyl et al., "Active Visual Exploration with Arbitrary Glimpse
        Position and Scale" (AdaGlimpse), ECCV 2024 (arXiv:2404.03482);
        Haarnoja et al., "Soft Actor-Critic", 2018 (tanh squashing).
    """

    def __init__(self, action_dim=3, hidden_units=256, low=0.0, high=1.0, min_std=0.01,
                 seed=None, **kwargs):
        # float32 under a mixed policy: its outputs feed the losses (keras_glimpse.precision).
        kwargs["dtype"] = precision.output_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        positive_int("action_dim", action_dim)
        positive_int("hidden_units", hidden_units, allow_none=True)
        low, high = number("low", low), number("high", high)
        if not high > low:
            raise ValueError(f"`high` must exceed `low`; received low={low!r}, high={high!r}.")
        min_std = number("min_std", min_std)
        if not 0.0 <= min_std < _TARGET_STD_AT_ZERO:
            raise ValueError(f"`min_std` must be in [0, 0.5); received min_std={min_std!r}.")
        check_seed(seed)
        self.action_dim = action_dim
        self.hidden_units = hidden_units
        self.low = low
        self.high = high
        self.min_std = min_std
        self.seed = seed
        # softplus(c) + min_std == 0.5  <=>  c = log(expm1(0.5 - min_std)).
        self._std_bias = math.log(math.expm1(_TARGET_STD_AT_ZERO - min_std))
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.hidden_dense = (keras.layers.Dense(hidden_units, activation="gelu",
                                                name="hidden_dense", dtype=self.dtype_policy)
                             if hidden_units else None)
        self.params_dense = keras.layers.Dense(2 * action_dim, name="params_dense", dtype=self.dtype_policy)

    def build(self, features_shape):
        features_shape = tuple(features_shape)
        if self.hidden_dense is not None:
            self.hidden_dense.build(features_shape)
            features_shape = features_shape[:-1] + (self.hidden_units,)
        self.params_dense.build(features_shape)
        self.built = True

    def _squash(self, u):
        return self.low + (self.high - self.low) * (0.5 + 0.5 * keras.ops.tanh(u))

    def call(self, features, mode="sample"):
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}; received mode={mode!r}.")
        x = features
        if self.hidden_dense is not None:
            x = self.hidden_dense(x)
        params = self.params_dense(x)
        loc = params[:, : self.action_dim]
        scale = keras.ops.softplus(params[:, self.action_dim:] + self._std_bias) + self.min_std
        if mode == "sample":
            eps = keras.random.normal(keras.ops.shape(loc), dtype=loc.dtype,
                                      seed=self.seed_generator)
            u = loc + scale * eps
        else:
            u = loc
        base = tfp.distributions.Normal(loc=loc, scale=scale)
        log_det = 2.0 * (math.log(2.0) - u - keras.ops.softplus(-2.0 * u))  # log(1 - tanh^2 u)
        log_prob = tf.reduce_sum(
            base.log_prob(u) - log_det - math.log((self.high - self.low) / 2.0), axis=-1)
        mean = self._squash(loc)
        return {
            "action": self._squash(u) if mode == "sample" else mean,
            "mean": mean,
            "log_prob": log_prob,
            "loc": loc,
            "scale": scale,
            "raw_action": u,
        }

    def get_config(self):
        config = super().get_config()
        config.update({
            "action_dim": self.action_dim,
            "hidden_units": self.hidden_units,
            "low": self.low,
            "high": self.high,
            "min_std": self.min_std,
            "seed": self.seed,
        })
        return config
