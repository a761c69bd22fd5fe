"""A tiny GlimpseModel used by the foundation tests (registry, apps, export,
distribution) so that they do not depend on any real method model.

Two soft Gaussian glimpses over a small image: each glimpse weights the image
by a Gaussian bump centred on a location, a Dense layer encodes it, a
recurrent sum carries the state, a Gaussian location head (a
`tfp.distributions.Normal` built inside the rollout, noise drawn with
`keras.random.normal`) picks the next location, and a Dense classifier reads
the final state. `train_step` adds a REINFORCE term with a learned baseline
and reduces every per-example term with `tf.nn.compute_average_loss`.

`nan_at_step` (tests only) turns the loss into NaN from that optimizer step on.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_glimpse.models.glimpse_model import GlimpseModel

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="keras_glimpse_tests")
class ToyGlimpseModel(GlimpseModel):
    """Tiny 2-step Gaussian-glimpse classifier (tests only).

    Args:
        image_shape: (H, W, C) of the inputs.
        num_classes: number of classes.
        num_glimpses: number of glimpses per episode.
        units: width of the hidden state.
        std: standard deviation of the Gaussian location policy.
        sigma: width of the Gaussian glimpse bump, in [-1, 1] coordinates.
        seed: seed of the location noise.
        stage: accepted (and recorded) to exercise stage selection in the apps.
        nan_at_step: if set, the training loss becomes NaN from this optimizer
            step on (to test `TerminateOnNaN`).
    """

    trajectory_keys = ("locations",)

    def __init__(self, image_shape=(8, 8, 1), num_classes=10, num_glimpses=2, units=16,
                 std=0.2, sigma=0.3, seed=0, stage="default", nan_at_step=None, **kwargs):
        super().__init__(image_shape=image_shape, prediction_type="classification", **kwargs)
        if int(num_glimpses) < 1:
            raise ValueError(f"`num_glimpses` must be >= 1; received num_glimpses={num_glimpses}.")
        self.num_classes = int(num_classes)
        self.num_glimpses = int(num_glimpses)
        self.units = int(units)
        self.std = float(std)
        self.sigma = float(sigma)
        self.seed = seed
        self.stage = stage
        self.nan_at_step = nan_at_step
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.encoder = keras.layers.Dense(units, activation="relu", name="encoder")
        self.location_encoder = keras.layers.Dense(units, name="location_encoder")
        self.location_mean = keras.layers.Dense(2, activation="tanh", name="location_mean")
        self.baseline = keras.layers.Dense(1, name="baseline")
        self.classifier = keras.layers.Dense(num_classes, name="classifier")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        h, w, _ = self.image_shape
        ys = tf.linspace(-1.0, 1.0, h)
        xs = tf.linspace(-1.0, 1.0, w)
        self._grid_y = ys
        self._grid_x = xs

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def _glimpse(self, images, locations):
        # Gaussian bump (B, H, W, 1) centred on (y, x); weighted image flattened.
        dy = tf.square(self._grid_y[None, :] - locations[:, :1])  # (B, H)
        dx = tf.square(self._grid_x[None, :] - locations[:, 1:])  # (B, W)
        bump = tf.exp(-(dy[:, :, None] + dx[:, None, :]) / (2.0 * self.sigma**2))
        weighted = images * bump[..., None]
        return tf.reshape(weighted, (tf.shape(images)[0], -1))

    def rollout(self, images, mode="greedy", training=False):
        batch = tf.shape(images)[0]
        state = tf.zeros((batch, self.units))
        location = tf.zeros((batch, 2))
        locations, log_probs, baselines = [], [], []
        for _ in range(self.num_glimpses):
            g = self.encoder(self._glimpse(images, location))
            state = state + g + self.location_encoder(location)
            locations.append(location)
            baselines.append(self.baseline(tf.stop_gradient(state))[:, 0])
            mean = self.location_mean(tf.stop_gradient(state))
            policy = tfd.Normal(loc=mean, scale=self.std)
            if mode == "sample":
                noise = keras.random.normal(tf.shape(mean), seed=self.seed_generator)
                raw = tf.stop_gradient(mean + self.std * noise)
            else:
                raw = mean
            log_probs.append(tf.reduce_sum(policy.log_prob(raw), axis=-1))
            location = tf.stop_gradient(tf.clip_by_value(raw, -1.0, 1.0))
        return {
            "predictions": self.classifier(state),
            "locations": tf.stack(locations, axis=1),
            "log_prob": tf.add_n(log_probs),
            "baseline": tf.reduce_mean(tf.stack(baselines, axis=1), axis=1),
        }

    def _per_example_loss(self, x, y, training):
        out = self.rollout(self.check_images(x), mode="sample", training=training)
        logits = out["predictions"]
        y = tf.cast(tf.reshape(y, (-1,)), tf.int32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        reward = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)
        advantage = tf.stop_gradient(reward - out["baseline"])
        per_example = ce - out["log_prob"] * advantage + tf.square(reward - out["baseline"])
        return per_example, logits, y

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            per_example, logits, y = self._per_example_loss(x, y, training=True)
            loss = tf.nn.compute_average_loss(per_example)
            if self.nan_at_step is not None:
                step = tf.cast(self.optimizer.iterations, tf.float32)
                loss = loss + tf.where(step >= float(self.nan_at_step), float("nan"), 0.0)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply(grads, variables)
        self.loss_tracker.update_state(tf.reduce_mean(per_example) + (loss - loss * 1.0))
        self.accuracy_tracker.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data[0], data[1]
        logits = self(x, training=False)
        y = tf.cast(tf.reshape(y, (-1,)), tf.int32)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        self.loss_tracker.update_state(ce)
        self.accuracy_tracker.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        config = super().get_config()
        config.pop("prediction_type", None)
        config.update({
            "num_classes": self.num_classes, "num_glimpses": self.num_glimpses,
            "units": self.units, "std": self.std, "sigma": self.sigma, "seed": self.seed,
            "stage": self.stage, "nan_at_step": self.nan_at_step,
        })
        return config
