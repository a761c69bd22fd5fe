"""AdaGlimpse's actor / critic network over the padded set of collected patches."""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import precision
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


@functools.lru_cache(maxsize=None)
def _conv_matrix_index(h, w, cin, k, cout, padding):
    off = (k - 1) // 2 if padding == "same" else 0
    ho, wo = (h, w) if padding == "same" else (h - k + 1, w - k + 1)
    zero = k * k * cin * cout  # the index of an appended 0
    index = np.full((h, w, cin, ho, wo, cout), zero, np.int32)
    taps = (np.arange(cin)[:, None] * cout + np.arange(cout)[None, :])  # (cin, cout)
    for yo in range(ho):
        for xo in range(wo):
            for dy in range(k):
                for dx in range(k):
                    yi, xi = yo + dy - off, xo + dx - off
                    if 0 <= yi < h and 0 <= xi < w:
                        index[yi, xi, :, yo, xo, :] = (dy * k + dx) * cin * cout + taps
    index = index.reshape(h * w * cin, ho * wo * cout)
    return index, (ho, wo, cout), float(np.mean(index != zero))


def conv_matrix_index(input_shape, kernel_size, filters, padding, max_entries=1 << 20,
                      min_density=0.2):
    """A stride-1 convolution of `(h, w, cin)` inputs as one matrix product.

    Returns `(index, (ho, wo, filters))` where `index` `(h w cin, ho wo filters)`
    picks from the flattened `(k, k, cin, filters)` kernel with one 0 appended
    (`index = k k cin filters` where no tap applies), so that
    `flatten(x) @ gather(kernel, index)` is the convolution up to float rounding;
    or None when the matrix would hold more than `max_entries` entries or fewer
    than `min_density` of them are kernel taps (the product would then do far
    more multiply-adds than the convolution). On a CPU the product is several
    times faster for the tiny presets' 8 px patches (a 1-channel 5x5 conv runs
    at well under 1 GMAC/s there).
    """
    h, w, cin = (int(d) for d in input_shape)
    if padding == "valid" and (h < kernel_size or w < kernel_size):
        return None
    if h * w * cin * (h * w) * filters > max_entries:
        return None
    index, out_shape, density = _conv_matrix_index(h, w, cin, int(kernel_size), int(filters),
                                                   padding)
    if index.size > max_entries or density < min_density:
        return None
    return index, out_shape


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
        fast: the training step's formulation of the per-patch CNN: it runs
            on the filled slots only (`mask` 0), gathered into a batch of
            run-time size, every empty slot reading the CNN of one zero patch;
            and its convolutions become matrix products where
            `conv_matrix_index` allows (small patches). Equal to the plain call
            up to float rounding whenever the empty slots hold zero patches,
            as AdaGlimpse's always do (an empty slot's features only count
            when every slot is empty). Not XLA-compilable (run-time shapes);
            the plain call is the reference, and what FLOP counts measure.

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
        self.logits_out = keras.layers.Dense(num_heads, name="logits_out",
                                             dtype=precision.output_dtype())
        self.pool_out = _dense_ln_gelu(h, "pool_out")
        if role == "actor":
            self.head = TanhNormalHead(self.action_dim, hidden_units=h, low=0.0, high=1.0,
                                       seed=seed, name="policy")
        else:
            self.action_embed = _dense_ln_gelu(h, "action")
            self.q_hidden = keras.layers.Dense(h, activation="gelu", name="q_hidden")
            self.q_out = keras.layers.Dense(1, name="q_out",
                                            dtype=precision.output_dtype())

    def _conv(self, conv, x, fast):
        """`conv(x)`; `fast`: as one matrix product when `conv_matrix_index` allows."""
        table = conv_matrix_index(x.shape[1:], conv.kernel_size[0], conv.filters,
                                  conv.padding) if fast else None
        if table is None:
            return conv(x)
        if not conv.built:
            conv.build(x.shape)
        index, out_shape = table
        kernel = tf.reshape(tf.cast(conv.kernel, x.dtype), [-1])
        matrix = tf.gather(tf.concat([kernel, tf.zeros([1], x.dtype)], 0), index)
        y = tf.matmul(tf.reshape(x, [-1, index.shape[0]]), matrix)
        y = tf.nn.bias_add(tf.reshape(y, [-1, *out_shape]), tf.cast(conv.bias, x.dtype))
        return y

    def _cnn(self, x, fast=False):
        """The per-patch CNN on `(N, p, p, C)` patches: `(N, 32)` features."""
        pad = "valid" if x.shape[1] is not None and x.shape[1] >= 16 else "same"
        self.conv1.padding = self.conv2.padding = pad
        x = keras.activations.gelu(self.conv_norm1(self._conv(self.conv1, x, fast)))
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        x = keras.activations.gelu(self.conv_norm2(self._conv(self.conv2, x, fast)))
        if not (fast and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0):
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        # (fast: a 2x2 max-pool that tiles the map, then the global max, is the global max.)
        return tf.reduce_max(x, axis=[1, 2])

    def _patch_features(self, patches, empty=None):
        """`(B P, 32)` CNN features of `(B, P, p, p, C)` patches (`empty`: `(B P,)`, fast path)."""
        shape = tf.shape(patches)
        x = tf.reshape(patches, [-1, shape[2], shape[3], shape[4]])
        x.set_shape([None] + patches.shape[2:].as_list())
        if empty is None:
            return self._cnn(x)
        # Only the filled slots go through the CNN, after one zero patch whose
        # features every empty slot reads.
        filled = tf.cast(tf.where(tf.logical_not(empty)), tf.int32)
        features = self._cnn(tf.concat([tf.zeros_like(x[:1]), tf.gather_nd(x, filled)], 0),
                             fast=True)
        scattered = tf.scatter_nd(filled, features[1:], tf.stack([tf.shape(x)[0], 32]))
        # features[0], not features[:1]: under XLA the gathered rows have a bounded
        # dynamic size, and a (<=1, 32) operand does not broadcast.
        return tf.where(empty[:, None], features[0], scattered)

    def pooled_state(self, state, fast=False):
        """The trunk: `(B, hidden_units)` pooled state features (`fast`: see `call`)."""
        mask = state["mask"]
        b, n = tf.shape(mask)[0], tf.shape(mask)[1]
        empty = tf.reshape(tf.cast(mask, self.compute_dtype) > 0.5, [-1])  # (B P,)
        feats = []
        for i, part in enumerate(self.parts):
            x = state[part]
            if part == "patches":
                x = self._patch_features(x, empty if fast else None)
            else:
                x = tf.reshape(x, [-1, x.shape[-1]])  # per slot: plain 2-D Dense layers
            layers = [self.projection_dense[i], self.projection_norm[i]]
            feats.append(_apply(layers, tf.cast(x, self.compute_dtype)))
        x = _apply(self.pool_in, tf.concat(feats, axis=-1))  # (B P, h)
        logits = self.logits_out(self.logits_hidden(x))  # (B P, heads)
        # tf.where instead of `logits + mask * -1e8`: grappler fuses Dense's BiasAdd with a
        # broadcasting Add into one op that rejects the (B, P, 1) addend.
        logits = tf.where(empty[:, None], tf.cast(MASK_VALUE, logits.dtype), logits)
        weights = tf.nn.softmax(tf.reshape(logits, [b, n, self.num_heads]), axis=1)
        hd = self.hidden_units // self.num_heads
        xh = tf.reshape(x, [b, n, self.num_heads, hd])
        pooled = tf.reduce_sum(xh * tf.cast(weights, xh.dtype)[..., None], axis=1)  # (B, heads, hd)
        pooled = tf.reshape(pooled, [b, self.hidden_units])
        return _apply(self.pool_out, pooled)

    def from_pooled(self, pooled, actions=None, mode="sample"):
        """The head on `pooled_state`'s output: what `call` returns. A critic's
        trunk can be computed once and valued at several actions."""
        if self.role == "actor":
            return self.head(pooled, mode=mode)
        if actions is None:
            raise ValueError("A critic needs `actions` of shape (batch, action_dim).")
        a = _apply(self.action_embed, tf.cast(actions, pooled.dtype))
        q = self.q_out(self.q_hidden(tf.concat([pooled, a], axis=-1)))
        return q[:, 0]

    def call(self, state, actions=None, mode="sample", fast=False):
        return self.from_pooled(self.pooled_state(state, fast), actions, mode)

    def get_config(self):
        config = super().get_config()
        config.update(role=self.role, hidden_units=self.hidden_units, num_heads=self.num_heads,
                      action_dim=self.action_dim, exclude_inputs=list(self.exclude_inputs),
                      seed=self.seed)
        return config
