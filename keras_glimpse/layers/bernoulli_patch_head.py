"""PatchDrop's factorised Bernoulli policy over which patches to acquire."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_glimpse import precision
from keras_glimpse.validation import positive_int, check_seed

_MODES = ("sample", "greedy")
_EPS = 1e-7


@keras.saving.register_keras_serializable(package="keras_glimpse")
class BernoulliPatchHead(keras.layers.Layer):
    """Independent Bernoulli policy over `num_patches` patches (PatchDrop).

    `s = sigmoid(Dense(num_patches)(features))` is the probability of
    acquiring each patch. In `"sample"` mode (training exploration) the
    probabilities are bounded,

        s' = alpha * s + (1 - alpha) * (1 - s)      (in [1-alpha, alpha]),

    and the action is `a_i = 1[u_i < s'_i]` with `u = keras.random.uniform`.
    Its log-probability is `sum_i a_i log s'_i + (1 - a_i) log(1 - s'_i)`
    (probabilities clipped to `[1e-7, 1 - 1e-7]`). In `"greedy"` mode there is
    no bounding: the action is the greedy one and the distribution is
    `Bernoulli(s)`. The greedy action `1[s >= 0.5]` (equal to `1[s' >= 0.5]`,
    since the bounding is monotone and symmetric about 0.5) is returned in
    both modes, so one call gives both halves of the self-critical baseline.

    Args:
        num_patches: number of patches N (16 for PatchDrop's 4x4 grid).
        alpha: exploration bound in `[0.5, 1]` (0.8 in PatchDrop; 1 disables it).
        seed: int or None, seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        features: `(B, D)` float tensor.
        mode: `"sample"` or `"greedy"`.

    Returns:
        A dict of tensors:
        - `action`: `(B, N)` float 0/1 (sampled, or greedy in greedy mode).
        - `greedy`: `(B, N)` float 0/1, `1[s >= 0.5]`.
        - `probs`: `(B, N)` the probabilities of the distribution acted on
          (bounded `s'` in sample mode, `s` in greedy mode).
        - `log_prob_per_patch`: `(B, N)` log-probability of `action` per patch.
        - `log_prob`: `(B,)` its sum over patches.
        - `entropy`: `(B,)` summed Bernoulli entropy.
        - `logits`: `(B, N)` the raw logits.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.bernoulli_patch_head import BernoulliPatchHead
    >>> head = BernoulliPatchHead(num_patches=16, seed=0)
    >>> out = head(np.zeros((2, 8), "float32"))
    >>> tuple(out["action"].shape), tuple(out["log_prob"].shape)
    ((2, 16), (2,))

    Reference:
        Uzkent & Ermon, "Learning When and Where to Zoom with Deep
        Reinforcement Learning", CVPR 2020 (arXiv:2003.00425).
    """

    def __init__(self, num_patches, alpha=0.8, seed=None, **kwargs):
        # float32 under a mixed policy: its outputs feed the losses (keras_glimpse.precision).
        kwargs["dtype"] = precision.output_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        positive_int("num_patches", num_patches)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (
                0.5 <= alpha <= 1.0):
            raise ValueError(f"`alpha` must be a number in [0.5, 1]; received alpha={alpha!r}.")
        check_seed(seed)
        self.num_patches = num_patches
        self.alpha = float(alpha)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.logits_dense = keras.layers.Dense(num_patches, name="logits_dense", dtype=self.dtype_policy)

    def build(self, features_shape):
        self.logits_dense.build(tuple(features_shape))
        self.built = True

    def call(self, features, mode="sample"):
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}; received mode={mode!r}.")
        logits = self.logits_dense(features)
        s = keras.ops.sigmoid(logits)
        greedy = tf.stop_gradient(keras.ops.cast(s >= 0.5, s.dtype))
        if mode == "sample":
            probs = self.alpha * s + (1.0 - self.alpha) * (1.0 - s)
            u = keras.random.uniform(keras.ops.shape(probs), dtype=probs.dtype,
                                     seed=self.seed_generator)
            action = tf.stop_gradient(keras.ops.cast(u < probs, probs.dtype))
        else:
            probs = s
            action = greedy
        dist = tfp.distributions.Bernoulli(probs=tf.clip_by_value(probs, _EPS, 1.0 - _EPS),
                                           dtype=probs.dtype)
        log_prob_per_patch = dist.log_prob(action)
        return {
            "action": action,
            "greedy": greedy,
            "probs": probs,
            "log_prob_per_patch": log_prob_per_patch,
            "log_prob": tf.reduce_sum(log_prob_per_patch, axis=-1),
            "entropy": tf.reduce_sum(dist.entropy(), axis=-1),
            "logits": logits,
        }

    def get_config(self):
        config = super().get_config()
        config.update({"num_patches": self.num_patches, "alpha": self.alpha, "seed": self.seed})
        return config
