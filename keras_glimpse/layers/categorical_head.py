"""A categorical policy over discrete actions, with an optional action mask."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_glimpse import precision
from keras_glimpse.validation import positive_int, check_seed

_MODES = ("sample", "greedy")
_MASK_VALUE = -1e9


@keras.saving.register_keras_serializable(package="keras_glimpse")
class CategoricalHead(keras.layers.Layer):
    """Categorical policy: logits over `num_actions`, Gumbel-max sampling.

    `logits = Dense(num_actions)(ReLU(Dense(hidden_units)(features)))` (the
    hidden layer is skipped when `hidden_units=None`). With `mask` (True = not
    allowed, e.g. RECAP's already-visited cells), `-1e9` is added to the
    excluded logits. `"sample"` mode draws by Gumbel-max,
    `argmax(logits - log(-log u))` with `u = keras.random.uniform`; `"greedy"`
    takes `argmax(logits)`. `log_prob` is `log_softmax(logits)` gathered at the
    action and `entropy` is `-sum p log p`, both from a
    `tfp.distributions.Categorical` built in `call`.

    RECAP's policy reads `concat([h_t, l_t])` and zero-initialises the kernel
    rows of the location inputs (and the bias) of its first layer, so that the
    location starts with no influence. `zero_init_last_inputs=2` does that:
    the last 2 input rows of the first layer's kernel (the hidden layer, or the
    logits layer when there is none) are set to zero when the layer is built.
    Biases start at zero anyway (Keras default).

    Args:
        num_actions: number of actions A.
        hidden_units: width of the hidden ReLU layer, or `None`.
        zero_init_last_inputs: number of trailing input features whose first-
            layer weights start at zero (2 for RECAP, 0 otherwise).
        seed: int or None, seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: `(B, D)` float tensor.
        mode: `"sample"` or `"greedy"`.
        mask: optional `(B, A)` bool tensor, True = action not allowed.

    Returns:
        A dict of tensors:
        - `action`: `(B,)` int32 (sampled, or arg-max in greedy mode).
        - `greedy`: `(B,)` int32 arg-max of the masked logits.
        - `logits`: `(B, A)` masked logits.
        - `probs`: `(B, A)` softmax of the masked logits.
        - `log_prob`: `(B,)` log-probability of `action`.
        - `entropy`: `(B,)`.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.categorical_head import CategoricalHead
    >>> head = CategoricalHead(num_actions=5, seed=0)
    >>> mask = np.array([[True, False, True, True, True]] * 2)
    >>> out = head(np.ones((2, 4), "float32"), mode="sample", mask=mask)
    >>> out["action"].numpy().tolist()
    [1, 1]

    Reference:
        RECAP `networks.py::PerceptionPolicy` (masked categorical policy);
        Li et al. 2021, localization by ordinal embedding (agent policy).
    """

    def __init__(self, num_actions, hidden_units=None, zero_init_last_inputs=0, seed=None,
                 **kwargs):
        # float32 under a mixed policy: its outputs feed the losses (keras_glimpse.precision).
        kwargs["dtype"] = precision.output_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        positive_int("num_actions", num_actions)
        positive_int("hidden_units", hidden_units, allow_none=True)
        if (isinstance(zero_init_last_inputs, bool) or not isinstance(zero_init_last_inputs, int)
                or zero_init_last_inputs < 0):
            raise ValueError(
                "`zero_init_last_inputs` must be a non-negative integer; received "
                f"zero_init_last_inputs={zero_init_last_inputs!r}."
            )
        check_seed(seed)
        self.num_actions = num_actions
        self.hidden_units = hidden_units
        self.zero_init_last_inputs = zero_init_last_inputs
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.hidden_dense = (keras.layers.Dense(hidden_units, activation="relu",
                                                name="hidden_dense", dtype=self.dtype_policy)
                             if hidden_units else None)
        self.logits_dense = keras.layers.Dense(num_actions, name="logits_dense", dtype=self.dtype_policy)

    def build(self, features_shape):
        features_shape = tuple(features_shape)
        k = self.zero_init_last_inputs
        if k and (features_shape[-1] is None or k > features_shape[-1]):
            raise ValueError(
                f"`zero_init_last_inputs={k}` exceeds the feature width "
                f"{features_shape[-1]} (features shape {features_shape})."
            )
        first = self.hidden_dense or self.logits_dense
        if self.hidden_dense is not None:
            self.hidden_dense.build(features_shape)
            self.logits_dense.build(features_shape[:-1] + (self.hidden_units,))
        else:
            self.logits_dense.build(features_shape)
        if k:
            kernel = first.kernel
            rows = kernel.shape[0]
            keep = keras.ops.concatenate(
                [keras.ops.ones((rows - k, 1), kernel.dtype), keras.ops.zeros((k, 1), kernel.dtype)],
                axis=0)
            kernel.assign(kernel * keep)
        self.built = True

    def call(self, features, mode="sample", mask=None):
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}; received mode={mode!r}.")
        x = features
        if self.hidden_dense is not None:
            x = self.hidden_dense(x)
        logits = self.logits_dense(x)
        if mask is not None:
            logits = logits + keras.ops.cast(mask, logits.dtype) * _MASK_VALUE
        greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
        if mode == "sample":
            u = keras.random.uniform(keras.ops.shape(logits), minval=1e-7, maxval=1.0,
                                     dtype=logits.dtype, seed=self.seed_generator)
            gumbel = -keras.ops.log(-keras.ops.log(u))
            action = tf.argmax(tf.stop_gradient(logits) + gumbel, axis=-1, output_type=tf.int32)
        else:
            action = greedy
        dist = tfp.distributions.Categorical(logits=logits)
        return {
            "action": action,
            "greedy": greedy,
            "logits": logits,
            "probs": keras.ops.softmax(logits, axis=-1),
            "log_prob": dist.log_prob(action),
            "entropy": dist.entropy(),
        }

    def compute_mask(self, inputs, previous_mask=None):
        # `mask` here is an action mask, not a Keras sequence mask: attach none
        # to the outputs (and do not warn that one is dropped).
        return None

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_actions": self.num_actions,
            "hidden_units": self.hidden_units,
            "zero_init_last_inputs": self.zero_init_last_inputs,
            "seed": self.seed,
        })
        return config
