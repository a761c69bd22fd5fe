"""AdaGlimpse's actor / critic network over the padded set of collected patches."""

import keras
import tensorflow as tf

from keras_glimpse.layers.tanh_normal_head import TanhNormalHead
from keras_glimpse.validation import integer

STATE_PARTS = ("patches", "importance", "coords", "latent")
MASK_VALUE = -1e8


def _pre_norm_bias():
    """Random biases for the layers that feed a LayerNorm (PyTorch draws them too).

    Keras zero-initialises biases. Here that is harmful: the first state of every
    episode is all empty (zeros), and most patches of a digits canvas are black, so
    such a layer outputs its bias alone, and a zero bias has zero variance. The
    LayerNorm then divides by sqrt(epsilon): its output is noise and its input
    gradient is 1000x (epsilon 1e-6), chained through every norm of the trunk. Those
    gradients dominate Adam's second moments and damp every other update. A
    U(-1/sqrt(units), 1/sqrt(units)) bias keeps the variance away from zero."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")


def _dense_ln_gelu(units, name):
    return [keras.layers.Dense(units, bias_initializer=_pre_norm_bias(), name=f"{name}_dense"),
            keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")]


def _apply(layers, x):
    x = layers[1](layers[0](x))
    return keras.activations.gelu(x)


@keras.saving.register_keras_serializable(package="keras_glimpse")
class GlimpseActorCritic(keras.layers.Layer):
    """SAC actor or Q-critic reading the glimpse state of AdaGlimpse (spec B6).

    Trunk (not shared between actor and critics):
    1. per-patch CNN: conv 5x5 (8) -> norm -> GELU -> max-pool 2 -> conv 5x5
       (32) -> norm -> GELU -> max-pool 2 -> global max (32 features; for
       16x16 patches the map is 1x1 exactly as the paper). Patches smaller
       than 16 px use 'same' padding.
    2. four input projections, Dense -> LayerNorm -> GELU to
       `2 * hidden_units / parts` each: patch features, importance (1),
       coords (4), latent (D); concatenated per slot.
    3. attention pooling over the slots: Dense -> LN -> GELU to
       `hidden_units`; logits Dense -> GELU -> Dense(num_heads); -1e8 on
       empty slots; softmax over slots per head; each head pools its own
       `hidden_units/num_heads` channel slice; Dense -> LN -> GELU.
    Actor: `TanhNormalHead(action_dim, hidden_units)` on the pooled state.
    Critic: action embedding Dense -> LN -> GELU, concatenated with the pooled
    state, Dense -> GELU -> Dense(1).

    Deviation: the paper's BatchNorm layers (in the CNN) are LayerNorm here
    (batch statistics make SAC targets depend on the batch split, and are not
    reproducible under MirroredStrategy); the rest matches the spec.

    Args:
        role: `"actor"` or `"critic"`.
        hidden_units: h (256).
        num_heads: attention-pooling heads (8); must divide `hidden_units`.
        action_dim: action size (3: y, x, scale).
        exclude_inputs: state parts to drop (subset of patches, importance,
            coords, latent), the paper's ablation flag.
        seed: seed of the actor's sampling.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        state: dict with `patches` `(B, P, p, p, C)`, `importance` `(B, P, 1)`,
            `coords` `(B, P, 4)`, `latent` `(B, P, D)`, `mask` `(B, P, 1)`
            (1 = empty slot).
        actions: `(B, action_dim)` (critic only).
        mode: `"sample"` or `"greedy"` (actor only).

    Returns:
        actor: the `TanhNormalHead` dict (`action`, `mean`, `log_prob`, ...);
        critic: `(B,)` Q-values.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.glimpse_actor_critic import GlimpseActorCritic
    >>> state = {"patches": np.zeros((2, 4, 16, 16, 3), "float32"),
    ...          "importance": np.zeros((2, 4, 1), "float32"),
    ...          "coords": np.zeros((2, 4, 4), "float32"),
    ...          "latent": np.zeros((2, 4, 8), "float32"),
    ...          "mask": np.zeros((2, 4, 1), "float32")}
    >>> q = GlimpseActorCritic("critic", hidden_units=32)(state, np.zeros((2, 3), "float32"))
    >>> tuple(q.shape)
    (2,)

    Reference:
        Pardyl et al., "AdaGlimpse", ECCV 2024; Haarnoja et al., "Soft
        Actor-Critic Algorithms and Applications", 2018.
    """

    def __init__(self, role="actor", hidden_units=256, num_heads=8, action_dim=3,
                 exclude_inputs=(), seed=None, **kwargs):
        super().__init__(**kwargs)
        if role not in ("actor", "critic"):
            raise ValueError(f"`role` must be 'actor' or 'critic'; received role={role!r}.")
        integer("hidden_units", hidden_units, minimum=2)
        if not isinstance(num_heads, int) or num_heads <= 0 or hidden_units % num_heads:
            raise ValueError(
                f"`num_heads` must be a positive divisor of hidden_units={hidden_units}; "
                f"received num_heads={num_heads!r}.")
        exclude_inputs = tuple(exclude_inputs)
        bad = set(exclude_inputs) - set(STATE_PARTS)
        if bad or len(exclude_inputs) >= len(STATE_PARTS):
            raise ValueError(
                f"`exclude_inputs` must be a proper subset of {STATE_PARTS}; received "
                f"exclude_inputs={exclude_inputs!r}.")
        self.role = role
        self.hidden_units = hidden_units
        self.num_heads = num_heads
        self.action_dim = int(action_dim)
        self.exclude_inputs = exclude_inputs
        self.seed = seed
        self.parts = [p for p in STATE_PARTS if p not in exclude_inputs]
        h = hidden_units
        part_units = 2 * h // len(self.parts)
        self.conv1 = keras.layers.Conv2D(8, 5, bias_initializer=_pre_norm_bias(), name="conv1")
        self.conv_norm1 = keras.layers.LayerNormalization(epsilon=1e-6, name="conv_norm1")
        self.conv2 = keras.layers.Conv2D(32, 5, bias_initializer=_pre_norm_bias(), name="conv2")
        self.conv_norm2 = keras.layers.LayerNormalization(epsilon=1e-6, name="conv_norm2")
        # Flat lists (not a dict of lists) so that tf.saved_model tracks the layers.
        self.projection_dense = [keras.layers.Dense(part_units, bias_initializer=_pre_norm_bias(),
                                                    name=f"in_{p}_dense")
                                 for p in self.parts]
        self.projection_norm = [keras.layers.LayerNormalization(epsilon=1e-6, name=f"in_{p}_norm")
                                for p in self.parts]
        self.pool_in = _dense_ln_gelu(h, "pool_in")
        self.logits_hidden = keras.layers.Dense(h, activation="gelu", name="logits_hidden")
        self.logits_out = keras.layers.Dense(num_heads, name="logits_out")
        self.pool_out = _dense_ln_gelu(h, "pool_out")
        if role == "actor":
            self.head = TanhNormalHead(self.action_dim, hidden_units=h, low=0.0, high=1.0,
                                       seed=seed, name="policy")
        else:
            self.action_embed = _dense_ln_gelu(h, "action")
            self.q_hidden = keras.layers.Dense(h, activation="gelu", name="q_hidden")
            self.q_out = keras.layers.Dense(1, name="q_out")

    def _patch_features(self, patches):
        shape = tf.shape(patches)
        p = patches.shape[2]
        pad = "valid" if p is not None and p >= 16 else "same"
        self.conv1.padding = self.conv2.padding = pad
        x = tf.reshape(patches, [-1, shape[2], shape[3], shape[4]])
        x = keras.activations.gelu(self.conv_norm1(self.conv1(x)))
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = keras.activations.gelu(self.conv_norm2(self.conv2(x)))
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = tf.reduce_max(x, axis=[1, 2])
        return tf.reshape(x, [shape[0], shape[1], 32])

    def pooled_state(self, state):
        """The trunk: `(B, hidden_units)` pooled state features."""
        feats = []
        for i, part in enumerate(self.parts):
            x = state[part]
            if part == "patches":
                x = self._patch_features(x)
            layers = [self.projection_dense[i], self.projection_norm[i]]
            feats.append(_apply(layers, tf.cast(x, self.compute_dtype)))
        x = _apply(self.pool_in, tf.concat(feats, axis=-1))  # (B, P, h)
        logits = self.logits_out(self.logits_hidden(x))  # (B, P, heads)
        # tf.where instead of `logits + mask * -1e8`: grappler fuses Dense's BiasAdd with a
        # broadcasting Add into one op that rejects the (B, P, 1) addend.
        empty = tf.broadcast_to(tf.cast(state["mask"], logits.dtype) > 0.5, tf.shape(logits))
        logits = tf.where(empty, tf.fill(tf.shape(logits), tf.cast(MASK_VALUE, logits.dtype)),
                          logits)
        weights = tf.nn.softmax(logits, axis=1)
        b, n = tf.shape(x)[0], tf.shape(x)[1]
        hd = self.hidden_units // self.num_heads
        xh = tf.reshape(x, [b, n, self.num_heads, hd])
        pooled = tf.reduce_sum(xh * weights[..., None], axis=1)  # (B, heads, hd)
        pooled = tf.reshape(pooled, [b, self.hidden_units])
        return _apply(self.pool_out, pooled)

    def call(self, state, actions=None, mode="sample"):
        pooled = self.pooled_state(state)
        if self.role == "actor":
            return self.head(pooled, mode=mode)
        if actions is None:
            raise ValueError("A critic needs `actions` of shape (batch, action_dim).")
        a = _apply(self.action_embed, tf.cast(actions, pooled.dtype))
        q = self.q_out(self.q_hidden(tf.concat([pooled, a], axis=-1)))
        return q[:, 0]

    def get_config(self):
        config = super().get_config()
        config.update(role=self.role, hidden_units=self.hidden_units, num_heads=self.num_heads,
                      action_dim=self.action_dim, exclude_inputs=list(self.exclude_inputs),
                      seed=self.seed)
        return config
