"""Unsupervised RAM: a recurrent attention model with a cumulative reconstruction decoder.

Data path: `RetinaSensor` -> `GlimpseNetwork` -> `RecurrentCore` -> heads
(`GaussianLocationHead`, `ValueHead`, a `Dense` decoder summed over glimpses)
-> `uram_loss` (reconstruction MSE + REINFORCE on its per-glimpse decrease).
The glimpse loop it shares with RAM is in
`keras_glimpse.models.recurrent_attention`.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse import optimizers
from keras_glimpse.validation import number
from keras_glimpse.objectives import reinforce
from keras_glimpse.models.recurrent_attention import RecurrentAttention


def reconstruction_errors(images, reconstructions):
    """Per-example MSE after each glimpse, `e_t = mean_pixels (x - X_t)^2`.

    Args:
        images: `(B, H, W, C)`.
        reconstructions: `(B, T, H, W, C)` cumulative reconstructions `X_1 .. X_T`.

    Returns:
        `(B, T + 1)`: `e_0 = mean x^2` (the empty reconstruction) then `e_1 .. e_T`.
    """
    images = tf.cast(images, reconstructions.dtype)
    e0 = tf.reduce_mean(tf.square(images), axis=[1, 2, 3])
    et = tf.reduce_mean(tf.square(images[:, None] - reconstructions), axis=[2, 3, 4])
    return tf.concat([e0[:, None], et], axis=1)


def uram_loss(images, reconstructions, log_probs, baselines, reinforce_weight=0.01,
              discount=1.0):
    """URAM's corrected loss (spec §2.7), per example.

    - Reconstruction: `L_rec = mean_{t=1..T} e_t` (every step supervised,
      option B of the spec).
    - Reward: the per-step improvement `r_t = e_{t-1} - e_t` (positive when
      the error falls), stop-gradient. The location `l_j` chosen from `h_j`
      first affects `X_{j+1}`, so its return is
      `G_j = sum_{k > j} discount^(k-j-1) r_k` (with `discount=1`,
      `G_j = e_j - e_T`).
    - Baseline: `mean_j (b_j - G_j)^2`; REINFORCE: `-sum_j log pi(l_j) (G_j - b_j)`.

    Args:
        images: `(B, H, W, C)` targets.
        reconstructions: `(B, T, H, W, C)` cumulative reconstructions.
        log_probs: `(B, T-1)` log-probabilities of the policy's locations.
        baselines: `(B, T-1)` baseline predictions.
        reinforce_weight: weight of the REINFORCE term.
        discount: discount of the improvement rewards.

    Returns:
        dict of `(B,)` tensors: `total`, `reconstruction`, `final_mse`,
        `baseline`, `reinforce`, `reward` (the total improvement `e_0 - e_T`).
    """
    errors = reconstruction_errors(images, reconstructions)  # (B, T+1)
    rec = tf.reduce_mean(errors[:, 1:], axis=1)
    improvements = tf.stop_gradient(errors[:, :-1] - errors[:, 1:])  # r_1 .. r_T
    if log_probs.shape[1] == 0:
        base = tf.zeros_like(rec)
        pg = tf.zeros_like(rec)
    else:
        returns = reinforce.discounted_returns(improvements[:, 1:], discount)  # G_1 .. G_{T-1}
        base = reinforce.baseline_loss(baselines, returns)
        advantages = tf.stop_gradient(returns - baselines)
        pg = reinforce.policy_gradient_loss(log_probs, advantages)
    total = rec + base + reinforce_weight * pg
    return {"total": total, "reconstruction": rec, "final_mse": errors[:, -1], "baseline": base,
            "reinforce": pg, "reward": tf.reduce_sum(improvements, axis=1)}


# --------------------------------------------------------------------------- URAM
@keras.saving.register_keras_serializable(package="keras_glimpse")
class URAM(RecurrentAttention):
    """Unsupervised RAM: a recurrent attention model with a cumulative decoder.

    The RAM body (retina with `num_scales` windows, glimpse network, ReLU RNN,
    Gaussian location head and linear baseline on `stop_gradient(h_t)`)
    with a decoder `Dense(H*W*C)` applied to every `h_t`; the reconstruction
    after glimpse t is the running sum `X_t = sum_{tau <= t} D(h_tau)`.

    This is the **corrected** method of spec §2.7 (`uram_loss`): every step's
    reconstruction is supervised (MSE averaged over steps), the baseline is
    trained (MSE to the return), and the policy is trained by REINFORCE with a
    **per-sample** reward, the per-step improvement `e_{t-1} - e_t` of the
    reconstruction error, with gradients stopped through the reward. The
    original code's objective is deliberately **not** reproduced: it used the
    batch-mean reconstruction error (a cost, lower is better) directly as the
    reward, so REINFORCE pushed the policy *towards* higher error, wrapped
    the term in an absolute value (its sign then depended on the batch), gave
    no per-sample credit, never trained its baseline and let reconstruction
    gradients flow through the reward. None of this is a well-posed policy
    gradient, and keeping it would only reproduce noise.

    The decoder is linear by default (the original used a ReLU): a running sum
    of non-negative parts can never correct an overshoot.

    Args:
        image_shape: `(H, W, C)` (CIFAR-10: 32x32x3, pixels in [0, 1]).
        num_glimpses: T (9).
        glimpse_size: g (6).
        num_scales: k (3).
        scale_factor: s (2).
        glimpse_units, location_units: widths of the glimpse network branches (128).
        hidden_units: RNN state width (256).
        location_hidden_units: hidden layer of the location head (128) or None.
        std: fixed policy standard deviation (0.17 as the original).
        reinforce_weight: weight of the REINFORCE term (0.01).
        discount: discount of the per-step improvement rewards (1.0).
        decoder_activation: activation of the per-step decoder (`"linear"`).
        policy: `"learned"`, `"random"` or `"center"`.
        seed: int or None.

    Call arguments:
        images: `(B, H, W, C)` float tensor.

    Returns:
        `(B, H, W, C)` the final cumulative reconstruction of the greedy
        rollout. `rollout` also returns `reconstructions` (B, T, H, W, C),
        `locations` (B, T, 2), `hidden_states` (B, T, hidden_units),
        `log_probs` and `baselines` (B, T-1).

    Example:
    >>> from keras_glimpse.models.ram import URAM
    >>> model = URAM(image_shape=(32, 32, 3))
    >>> model(tf.zeros((2, 32, 32, 3))).shape
    TensorShape([2, 32, 32, 3])

    Reference:
        Mnih et al., "Recurrent Models of Visual Attention", NIPS 2014; the
        URAM honours project (Viditjn/Unsupervied-Recurrent-Attention-Model),
        corrected as in the spec.
    """

    def __init__(self, image_shape=(32, 32, 3), num_glimpses=9, glimpse_size=6, num_scales=3,
                 scale_factor=2, glimpse_units=128, location_units=128, hidden_units=256,
                 location_hidden_units=128, std=0.17, reinforce_weight=0.01, discount=1.0,
                 decoder_activation="linear", policy="learned", seed=None, **kwargs):
        super().__init__(image_shape, prediction_type="reconstruction", **kwargs)
        self._init_blocks(num_glimpses, glimpse_size, num_scales, scale_factor, glimpse_units,
                          location_units, hidden_units, location_hidden_units, std,
                          reinforce_weight, policy, seed)
        discount = number("discount", discount, minimum=0)
        if discount > 1.0:
            raise ValueError(f"`discount` must be in [0, 1]; received discount={discount!r}.")
        self.discount = discount
        try:
            keras.activations.get(decoder_activation)
        except (ValueError, TypeError) as e:
            raise ValueError("`decoder_activation` must name a Keras activation; received "
                             f"decoder_activation={decoder_activation!r}.") from e
        self.decoder_activation = decoder_activation
        self.decoder = keras.layers.Dense(int(np.prod(self.image_shape)),
                                          activation=decoder_activation, name="decoder",
                                          dtype=precision.output_dtype())
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mse_tracker = keras.metrics.Mean(name="reconstruction_mse")
        self.reward_tracker = keras.metrics.Mean(name="reward")
        self.baseline_tracker = keras.metrics.Mean(name="baseline_loss")

    def selection_metric(self):
        return "reconstruction_mse", "min"

    @property
    def metrics(self):
        return [self.loss_tracker, self.mse_tracker, self.reward_tracker, self.baseline_tracker]

    def rollout(self, images, mode="greedy", training=False, policy=None):
        out = self._glimpse_loop(images, mode, policy, training, step_fn=self.decoder)
        parts = tf.stack(out.pop("extras"), axis=1)  # (B, T, H*W*C)
        cumulative = tf.math.cumsum(parts, axis=1)
        shape = tf.concat([tf.shape(images)[:1], [self.num_glimpses], self.image_shape], 0)
        out["reconstructions"] = tf.reshape(cumulative, shape)
        out["predictions"] = out["reconstructions"][:, -1]
        return out

    _metric_terms = ("total", "final_mse", "reward", "baseline")

    def compute_losses(self, images, targets, out):
        return uram_loss(images, out["reconstructions"], out["log_probs"], out["baselines"],
                         self.reinforce_weight, self.discount)

    def score_batch(self, batch, rollout):
        x = self._images(batch[0] if isinstance(batch, (tuple, list)) else batch)
        errors = reconstruction_errors(x, rollout(x)["reconstructions"])
        return {"errors_sum": tf.reduce_sum(errors, axis=0), "score": errors[:, -1]}

    def summarize_scores(self, scores):
        """`curve` (mean MSE after 0..T glimpses), `reconstruction_mse` (its
        last entry) and `count`."""
        total = scores.get("errors_sum", np.zeros(self.num_glimpses + 1))
        curve = total / max(scores["count"], 1)
        return {"curve": curve, "reconstruction_mse": float(curve[-1]),
                "count": scores["count"]}

    def reconstruction_curve(self, dataset, steps=None, mode="greedy", policy=None):
        """Mean reconstruction MSE after 0, 1, ..., T glimpses over a dataset.

        Returns:
            numpy array `(T + 1,)`; entry 0 is the error of the empty
            reconstruction (mean x^2).
        """
        return self.evaluate_policy(dataset, policy=policy, mode=mode, steps=steps)["curve"]

    def features(self, images, mode="greedy"):
        """The final core state `h_T` (B, hidden_units) of a rollout."""
        return self.rollout(self._images(images), mode=mode)["hidden_states"][:, -1]

    def linear_probe(self, dataset, test_dataset=None, num_classes=10, epochs=5,
                     learning_rate=1e-3, steps=None, batch_size=256, seed=0):
        """Linear-probe accuracy: a softmax `Dense` trained on frozen `h_T` features.

        The attention model is frozen (features are computed once with the
        greedy rollout); only the probe is trained (Adam, cross-entropy).

        Args:
            dataset: `(images, labels)` batches to fit the probe on.
            test_dataset: optional `(images, labels)` batches to score it on.
            num_classes: number of classes.
            epochs, learning_rate, batch_size: probe training settings.
            steps: optional cap on the number of batches read from each dataset.
            seed: seed of the probe's initialisation and shuffling.

        Returns:
            dict with `train_accuracy` and (with `test_dataset`) `test_accuracy`.
        """
        def score(batch):
            return {"features": self.features(batch[0]), "labels": tf.reshape(batch[1], [-1])}

        def extract(ds):
            out = self.evaluation_loop(ds, score, steps)
            return out["features"], out["labels"].astype(np.int32)

        x_train, y_train = extract(dataset)
        keras.utils.set_random_seed(seed)
        probe = keras.Sequential([keras.Input((self.hidden_units,)),
                                  keras.layers.Dense(num_classes, activation="softmax")])
        probe.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        probe.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
        result = {"train_accuracy": float(probe.evaluate(x_train, y_train, verbose=0)[1])}
        if test_dataset is not None:
            x_test, y_test = extract(test_dataset)
            result["test_accuracy"] = float(probe.evaluate(x_test, y_test, verbose=0)[1])
        return result

    def get_config(self):
        config = self._block_config()
        config.update(discount=self.discount, decoder_activation=self.decoder_activation)
        return config
