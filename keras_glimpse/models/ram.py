"""Recurrent Attention Model (RAM) and Unsupervised RAM (URAM).

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
from keras_glimpse.objectives import reinforce

_MODES = ("greedy", "sample")


# --------------------------------------------------------------------------- losses
def ram_loss(logits, labels, log_probs, baselines, reinforce_weight=0.01):
    """RAM's hybrid loss, per example.

    `L = NLL(y | h_T) + mean_t (b_t - R)^2 + w * (-sum_t log pi(l_t) (R - b_t))`
    with the reward `R = 1[argmax logits = y]` broadcast over the policy steps
    (undiscounted terminal reward, spec §2.6). The reward and the advantage
    are constants (stop-gradient).

    Args:
        logits: `(B, K)` class logits at the last step.
        labels: `(B,)` integer labels.
        log_probs: `(B, T')` log-probabilities of the sampled locations.
        baselines: `(B, T')` baseline predictions `b_t`.
        reinforce_weight: `w`, the weight of the REINFORCE term (0.01 upstream).

    Returns:
        dict of `(B,)` tensors: `total`, `nll`, `baseline`, `reinforce` and
        `reward`.
    """
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
    reward = tf.stop_gradient(tf.cast(tf.equal(pred, labels), logits.dtype))
    num_steps = log_probs.shape[1] if log_probs.shape[1] is not None else tf.shape(log_probs)[1]
    returns = reinforce.terminal_returns(reward, num_steps)
    if baselines.shape[1] == 0:
        base = tf.zeros_like(reward)
        pg = tf.zeros_like(reward)
    else:
        base = reinforce.baseline_loss(baselines, returns)
        advantages = tf.stop_gradient(returns - baselines)
        pg = reinforce.policy_gradient_loss(log_probs, advantages)
    total = nll + base + reinforce_weight * pg
    return {"total": total, "nll": nll, "baseline": base, "reinforce": pg, "reward": reward}


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


# --------------------------------------------------------------------------- shared base
class _RecurrentAttention(GlimpseModel):
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

    def _glimpse_loop(self, images, mode, policy, training, step_fn=None):
        """Runs T glimpses; returns the stacked per-step tensors."""
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}; received mode={mode!r}.")
        policy = self.resolve_policy(policy)
        # Static (H, W, C) keep the retina's output shape static (data
        # pipelines may hand over batches with unknown spatial dimensions).
        images = tf.ensure_shape(images, (None,) + tuple(self.image_shape))
        batch = tf.shape(images)[0]
        zeros = tf.zeros(tf.stack([batch, 2]), images.dtype)
        if policy == "center" or (policy == "learned"
                                  and (mode == "greedy" or self.centre_start)):
            loc = zeros
        else:
            loc = self._random_locations(batch)
        states = self.core.get_initial_state(batch)
        locations, hidden, log_probs, baselines, extras = [], [], [], [], []
        for t in range(self.num_glimpses):
            locations.append(loc)
            glimpses = self._sense(images, loc)
            g = self.glimpse_network(glimpses, loc)
            h, states = self.core(g, states, training=training)
            hidden.append(h)
            if step_fn is not None:
                extras.append(step_fn(h))
            if t == self.num_glimpses - 1:
                break
            h_sg = tf.stop_gradient(h)
            head = self.location_head(h_sg, mode=mode)
            baselines.append(self.baseline(h_sg))
            log_probs.append(head["log_prob"])
            if policy == "learned":
                loc = head["action"]
            elif policy == "random":
                loc = self._random_locations(batch)
            else:
                loc = zeros
        if log_probs:
            log_probs = tf.stack(log_probs, axis=1)
            baselines = tf.stack(baselines, axis=1)
        else:
            log_probs = tf.zeros(tf.stack([batch, 0]), images.dtype)
            baselines = tf.zeros(tf.stack([batch, 0]), images.dtype)
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
    def _unpack(self, data):
        if isinstance(data, (tuple, list)):
            return self._images(data[0]), (data[1] if len(data) > 1 else None)
        return self._images(data), None

    def compute_losses(self, images, targets, out):
        """Per-example loss terms of a rollout `out` (a dict holding `total`)."""
        raise NotImplementedError

    def _update_metrics(self, terms):
        for tracker, key in zip(self.metrics, self._metric_terms):
            tracker.update_state(terms[key])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        images, targets = self._unpack(data)
        with tf.GradientTape() as tape:
            out = self.rollout(images, mode="sample", training=True)
            terms = self.compute_losses(images, targets, out)
            loss = tf.nn.compute_average_loss(terms["total"])
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None])
        return self._update_metrics(terms)

    def test_step(self, data):
        images, targets = self._unpack(data)
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


# --------------------------------------------------------------------------- RAM
@keras.saving.register_keras_serializable(package="keras_glimpse")
class RAM(_RecurrentAttention):
    """Recurrent Attention Model for classification (Mnih et al., 2014).

    Retina (`num_scales` windows of `glimpse_size * scale_factor**i` pixels) ->
    glimpse network (128 / 128 -> 256) -> ReLU RNN core (`hidden_units`) ->
    Gaussian location head (on `stop_gradient(h_t)`, one hidden layer, fixed
    `std`) and a learned linear baseline per step (`ValueHead` on
    `stop_gradient(h_t)`) -> linear classifier on `h_T`.

    Training (hybrid loss, spec §2.6, `ram_loss`): NLL of the final prediction
    + baseline MSE + `reinforce_weight` x REINFORCE, with reward 1 for a
    correct final prediction broadcast over the policy steps. Each term is
    per-example and reduced with `tf.nn.compute_average_loss`, so a step is
    the same on one device or under `MirroredStrategy`. See the module
    docstring for the gradient routing.

    Where it departs from the upstream port, and why (measured on 60x60
    cluttered MNIST, docs/ram.md): every learned-policy rollout starts at the
    centre, in training as in evaluation (upstream samples a uniform random
    `l_0` in training but evaluation starts elsewhere, so the policy is
    evaluated from first glimpses it was never trained on), and the policy
    mean is initialised at the centre (zero kernel of its output layer).
    With the default initialisation the untrained mean is a fixed random
    point whose pre-tanh value grows as the classifier rescales `h_t`: the
    policy drifts into a corner and saturates `tanh`, where REINFORCE can no
    longer move it. Use `std` 0.1-0.2 on 60x60 canvases (the presets use
    0.2): with `std` 0.05 (1.5 pixels) the score-function gradient's
    signal-to-noise ratio, proportional to `std`, is too low to learn in a
    short run.

    Monte Carlo evaluation (DRAM's trick, used by upstream): the `sample`
    endpoint and `evaluate_monte_carlo(dataset, num_samples=M)` average the
    log-probabilities of M sampled rollouts.

    Args:
        image_shape: `(H, W, C)` of the inputs.
        num_glimpses: T, glimpses per image.
        glimpse_size: side g of the finest retina window, in pixels.
        num_scales: k, number of retina scales.
        scale_factor: ratio between consecutive scales.
        glimpse_units: width of the glimpse ("what") layer (128).
        location_units: width of the location ("where") layer (128).
        hidden_units: width of g_t and of the RNN state (256).
        location_hidden_units: hidden layer of the location head (128) or None.
        std: fixed standard deviation of the location policy (0.05, the
            upstream 28x28 value; 0.2 in the 60x60 and 100x100 presets).
        num_classes: number of classes.
        reinforce_weight: weight of the REINFORCE term (0.01).
        policy: `"learned"`, `"random"` (uniform random locations) or
            `"center"` (always `(0, 0)`).
        seed: int or None, seeds the policy and the random locations.
        start: where the first glimpse `l_0` of a learned-policy rollout is:
            `"centre"` in training and evaluation (the 60x60 and 100x100
            presets), or `"random"`: uniform in `[-1, 1]^2` in sampled
            rollouts (training, Monte Carlo) and the centre in greedy ones, as
            the upstream port does (`ram_mnist28`). On 28x28 MNIST the random
            start is what keeps the model from memorising: with a centred start
            each digit is seen through nearly the same 6 glimpses every epoch,
            and the validation error stalled at about 3.3 % while the training
            error fell below 1 % (docs/ram.md).

    Call arguments:
        images: `(B, H, W, C)` float tensor.

    Returns:
        `(B, num_classes)` logits of the greedy rollout. `rollout` returns a
        dict with `predictions`, `locations` (B, T, 2), `log_probs` and
        `baselines` (B, T-1) and `hidden_states` (B, T, hidden_units).

    Example:
    >>> from keras_glimpse.models.ram import RAM
    >>> model = RAM(image_shape=(28, 28, 1), num_glimpses=6, glimpse_size=8)
    >>> model.compile(optimizer="adam")
    >>> model(tf.zeros((2, 28, 28, 1))).shape
    TensorShape([2, 10])

    Reference:
        Mnih, Heess, Graves, Kavukcuoglu, "Recurrent Models of Visual
        Attention", NIPS 2014; conventions of kevinzakka/recurrent-visual-attention.
    """

    centre_start = True
    zero_mean_init = True
    STARTS = ("centre", "random")

    def __init__(self, image_shape=(28, 28, 1), num_glimpses=6, glimpse_size=8, num_scales=1,
                 scale_factor=2, glimpse_units=128, location_units=128, hidden_units=256,
                 location_hidden_units=128, std=0.05, num_classes=10, reinforce_weight=0.01,
                 policy="learned", seed=None, start="centre", **kwargs):
        super().__init__(image_shape, prediction_type="classification", **kwargs)
        if start not in self.STARTS:
            raise ValueError(f"`start` must be one of {self.STARTS}; received start={start!r}.")
        self.start = start
        self.centre_start = start == "centre"
        self._init_blocks(num_glimpses, glimpse_size, num_scales, scale_factor, glimpse_units,
                          location_units, hidden_units, location_hidden_units, std,
                          reinforce_weight, policy, seed)
        self.num_classes = integer("num_classes", num_classes, minimum=2)
        self.classifier = keras.layers.Dense(num_classes, name="classifier")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.reward_tracker = keras.metrics.Mean(name="reward")
        self.baseline_tracker = keras.metrics.Mean(name="baseline_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker, self.reward_tracker,
                self.baseline_tracker]

    def selection_metric(self):
        return "accuracy", "max"  # greedy accuracy in test_step

    def rollout(self, images, mode="greedy", training=False, policy=None):
        out = self._glimpse_loop(images, mode, policy, training)
        out.pop("extras")
        out["predictions"] = self.classifier(out["hidden_states"][:, -1])
        return out

    _metric_terms = ("total", "reward", "reward", "baseline")  # accuracy = reward

    def compute_losses(self, images, targets, out):
        return ram_loss(out["predictions"], targets, out["log_probs"], out["baselines"],
                        self.reinforce_weight)

    def get_config(self):
        config = self._block_config()
        config["num_classes"] = self.num_classes
        config["start"] = self.start
        return config


# --------------------------------------------------------------------------- URAM
@keras.saving.register_keras_serializable(package="keras_glimpse")
class URAM(_RecurrentAttention):
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
                                          activation=decoder_activation, name="decoder")
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
