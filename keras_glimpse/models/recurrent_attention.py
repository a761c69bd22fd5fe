"""The shared body of RAM and URAM: the glimpse loop and the policy plumbing.

Both models compose the shared blocks of `keras_glimpse.layers`:
`RetinaSensor` -> `GlimpseNetwork` -> `RecurrentCore` (ReLU RNN) -> heads
(`GaussianLocationHead` and `ValueHead`, both on `stop_gradient(h_t)`), and
the REINFORCE toolkit of `keras_glimpse.objectives.reinforce`.

Conventions shared by both models (the upstream RAM port, spec §2.6):

- Locations are `(y, x)` in `[-1, 1]`. The first location `l_0` is not a
  policy action. RAM starts every learned-policy rollout (training, greedy and
  Monte Carlo) at the centre `(0, 0)`, and its policy mean starts at the
  centre (zero kernel of the mean layer), so training and evaluation see the
  same first glimpse. URAM keeps upstream's convention: `l_0` uniform in
  `[-1, 1]^2` in `"sample"` mode and the centre in `"greedy"` mode.
- The policy decides `T - 1` locations `l_1 .. l_{T-1}` from `h_1 .. h_{T-1}`.
  Upstream also samples an `l_T` that no glimpse uses and feeds it to
  REINFORCE; that term carries no information about the reward and only adds
  variance, so it is not produced here.
- Sampled locations are detached (the head returns stop-gradient actions);
  the location and baseline heads read `stop_gradient(h_t)`, so REINFORCE
  trains only the location head and the task loss trains sensor, glimpse
  network, core and task head.
- `policy="random"` glimpses at uniform random locations at every step and
  `policy="center"` always at `(0, 0)`; the location head and baseline still
  exist, so the same weights can be evaluated with any policy (`rollout(...,
  policy=...)`, `evaluate_policy`).
"""

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import optimizers
from keras_glimpse.layers.gaussian_location_head import GaussianLocationHead
from keras_glimpse.layers.glimpse_network import GlimpseNetwork
from keras_glimpse.layers.recurrent_core import RecurrentCore
from keras_glimpse.layers.retina_sensor import RetinaSensor
from keras_glimpse.layers.value_head import ValueHead
from keras_glimpse.models.glimpse_model import GlimpseModel, resolve_policy
from keras_glimpse.validation import integer, number

_MODES = ("greedy", "sample")


# --------------------------------------------------------------------------- shared base
class RecurrentAttention(GlimpseModel):
    """Shared body of RAM and URAM: the glimpse loop and the policy plumbing."""

    trajectory_keys = ("locations",)
    supported_policies = ("learned", "random", "center")
    # The `compute_losses` term each tracker of `metrics` averages, in order.
    _metric_terms = ()

    def _init_blocks(self, num_glimpses, glimpse_size, num_scales, scale_factor, glimpse_units,
                     location_units, hidden_units, location_hidden_units, std,
                     reinforce_weight, policy, seed):
        self.num_glimpses = integer("num_glimpses", num_glimpses)
        self.glimpse_size = integer("glimpse_size", glimpse_size)
        self.num_scales = integer("num_scales", num_scales)
        self.scale_factor = integer("scale_factor", scale_factor)
        self.glimpse_units = integer("glimpse_units", glimpse_units)
        self.location_units = integer("location_units", location_units)
        self.hidden_units = integer("hidden_units", hidden_units)
        if location_hidden_units is not None:
            location_hidden_units = integer("location_hidden_units", location_hidden_units)
        self.location_hidden_units = location_hidden_units
        self.std = number("std", std, minimum=0, strict=True)
        self.reinforce_weight = number("reinforce_weight", reinforce_weight, minimum=0)
        self.policy = resolve_policy(policy, self.supported_policies,
                                     owner=type(self).__name__)
        if seed is not None:
            seed = integer("seed", seed, minimum=0)
        self.seed = seed
        self.sensor = RetinaSensor(glimpse_size, num_scales=num_scales,
                                   scale_factor=scale_factor, name="retina")
        self.glimpse_network = GlimpseNetwork(glimpse_units, location_units, hidden_units,
                                              name="glimpse_network")
        self.core = RecurrentCore(hidden_units, cell_type="rnn", name="core")
        self.location_head = GaussianLocationHead(std=self.std,
                                                  hidden_units=location_hidden_units,
                                                  mean_initializer=("zeros" if self.zero_mean_init
                                                                    else "glorot_uniform"),
                                                  seed=seed, name="location_head")
        self.baseline = ValueHead(name="baseline")
        self.seed_generator = keras.random.SeedGenerator(
            None if seed is None else seed + 1, name="location_seed_generator")

    def _block_config(self):
        return {
            "name": self.name, "trainable": self.trainable,
            "image_shape": list(self.image_shape),
            "num_glimpses": self.num_glimpses, "glimpse_size": self.glimpse_size,
            "num_scales": self.num_scales, "scale_factor": self.scale_factor,
            "glimpse_units": self.glimpse_units, "location_units": self.location_units,
            "hidden_units": self.hidden_units,
            "location_hidden_units": self.location_hidden_units, "std": self.std,
            "reinforce_weight": self.reinforce_weight, "policy": self.policy, "seed": self.seed,
        }

    # RAM: the learned policy's rollouts all start at the centre and its mean
    # starts at the centre (see the RAM docstring); URAM keeps upstream's
    # uniform random l_0 in sampled rollouts and the default initialisation.
    centre_start = False
    zero_mean_init = False

    def build(self, input_shape=None):
        if self.built:
            return
        # RAM's location head starts with a zero mean kernel (centre_start): the
        # untrained policy looks at the centre whatever h_t is. With the default
        # Glorot kernel the mean is a fixed random point that drifts as the core
        # (trained by the classifier) rescales h_t and saturates tanh at a corner,
        # where the policy gradient vanishes.
        self.rollout(tf.zeros((1,) + self.image_shape), mode="greedy")
        self.built = True

    def _images(self, images):
        # GlimpseModel.check_images reads `.shape.rank`: convert numpy first.
        return self.check_images(tf.convert_to_tensor(images))

    def _sense(self, images, locations):
        # RetinaSensor loses the static channel count when the batch size is
        # unknown (its reshape uses -1 for C); restore it for GlimpseNetwork.
        g = self.glimpse_size
        return tf.ensure_shape(self.sensor(images, locations),
                               (None, self.num_scales, g, g, self.image_shape[-1]))

    def _random_locations(self, batch):
        return keras.random.uniform(tf.stack([batch, 2]), minval=-1.0, maxval=1.0,
                                    seed=self.seed_generator)

    def _glimpse_step(self, images, loc, states, training):
        """One glimpse: retina at `loc` -> glimpse network -> core; `(h, states)`."""
        g = self.glimpse_network(self._sense(images, loc), loc)
        return self.core(g, states, training=training)

    def _next_location(self, head, policy, batch, zeros):
        if policy == "learned":
            return head["action"]
        if policy == "random":
            return self._random_locations(batch)
        return zeros

    def _first_location(self, images, mode, policy):
        batch = tf.shape(images)[0]
        zeros = tf.zeros(tf.stack([batch, 2]), self.location_head.compute_dtype)
        if policy == "center" or (policy == "learned"
                                  and (mode == "greedy" or self.centre_start)):
            return zeros
        return self._random_locations(batch)

    def _glimpse_loop(self, images, mode, policy, training, step_fn=None):
        """Runs T glimpses; returns the stacked per-step tensors."""
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}; received mode={mode!r}.")
        policy = self.resolve_policy(policy)
        # Static (H, W, C) keep the retina's output shape static (data
        # pipelines may hand over batches with unknown spatial dimensions).
        images = tf.ensure_shape(images, (None,) + tuple(self.image_shape))
        batch = tf.shape(images)[0]
        # Locations, log-probabilities and baselines are the heads' float32
        # under a mixed policy (keras_glimpse.precision).
        zeros = tf.zeros(tf.stack([batch, 2]), self.location_head.compute_dtype)
        loc = self._first_location(images, mode, policy)
        states = self.core.get_initial_state(batch)
        locations, hidden, log_probs, baselines, extras = [], [], [], [], []
        for t in range(self.num_glimpses):
            locations.append(loc)
            h, states = self._glimpse_step(images, loc, states, training)
            hidden.append(h)
            if step_fn is not None:
                extras.append(step_fn(h))
            if t == self.num_glimpses - 1:
                break
            h_sg = tf.stop_gradient(h)
            head = self.location_head(h_sg, mode=mode)
            baselines.append(self.baseline(h_sg))
            log_probs.append(head["log_prob"])
            loc = self._next_location(head, policy, batch, zeros)
        if log_probs:
            log_probs = tf.stack(log_probs, axis=1)
            baselines = tf.stack(baselines, axis=1)
        else:
            log_probs = tf.zeros(tf.stack([batch, 0]), self.location_head.compute_dtype)
            baselines = tf.zeros(tf.stack([batch, 0]), self.baseline.compute_dtype)
        return {
            "locations": tf.stack(locations, axis=1),
            "hidden_states": tf.stack(hidden, axis=1),
            "log_probs": log_probs,
            "baselines": baselines,
            "extras": extras,
        }

    @property
    def default_policy(self):
        return self.policy

    # ------------------------------------------------------------ one step for both
    def compute_losses(self, images, targets, out):
        """Per-example loss terms of a rollout `out` (a dict holding `total`)."""
        raise NotImplementedError

    def _update_metrics(self, terms):
        for tracker, key in zip(self.metrics, self._metric_terms):
            tracker.update_state(terms[key])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        images, targets = self.unpack(data)
        with tf.GradientTape() as tape:
            out = self.rollout(images, mode="sample", training=True)
            terms = self.compute_losses(images, targets, out)
            loss = tf.nn.compute_average_loss(terms["total"])
        variables = self.trainable_variables
        grads = optimizers.gradients(tape, loss, variables, self.optimizer)
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None])
        return self._update_metrics(terms)

    def test_step(self, data):
        images, targets = self.unpack(data)
        out = self.rollout(images, mode="greedy", training=False)
        return self._update_metrics(self.compute_losses(images, targets, out))

    def compile_from_preset(self, training):
        self.compile(optimizer=optimizers.make_optimizer(training, learning_rate=3e-4))

    def glimpse_boxes(self, locations, image_shape=None):
        """Pixel boxes `(y1, x1, y2, x2)` (end-exclusive) of every scale.

        Args:
            locations: `(..., 2)` array of `(y, x)` in `[-1, 1]`.

        Returns:
            numpy array `(..., num_scales, 4)`, the retina's floor centring.
        """
        h, w = (image_shape or self.image_shape)[:2]
        loc = np.clip(np.asarray(locations, np.float32), -1.0, 1.0)
        cy = np.floor(0.5 * (loc[..., 0] + 1.0) * h)
        cx = np.floor(0.5 * (loc[..., 1] + 1.0) * w)
        boxes = []
        for i in range(self.num_scales):
            size = self.glimpse_size * self.scale_factor ** i
            y1, x1 = cy - size // 2, cx - size // 2
            boxes.append(np.stack([y1, x1, y1 + size, x1 + size], axis=-1))
        return np.stack(boxes, axis=-2)


