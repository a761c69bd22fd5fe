"""RECAP: a discrete-grid glimpse agent with LSTM memory and an attention+RNN classifier."""

import math

import keras
import tensorflow as tf

from keras_glimpse import early_exit, optimizers, precision
from keras_glimpse.distribute import clip_by_global_norm_across_replicas
from keras_glimpse.fused_adam import FusedAdam
from keras_glimpse.layers.categorical_head import CategoricalHead
from keras_glimpse.layers.gated_attention_pooling import GatedAttentionPooling
from keras_glimpse.layers.grid_glimpse import GridGlimpse
from keras_glimpse.layers.patch_encoder import PatchEncoder
from keras_glimpse.layers.recurrent_core import RecurrentCore
from keras_glimpse.layers.sequence_summarizer import SequenceSummarizer
from keras_glimpse.layers.value_head import ValueHead
from keras_glimpse.models.glimpse_model import GlimpseModel, resolve_policy
from keras_glimpse.models import recap_early_exit
from keras_glimpse.objectives import reinforce
from keras_glimpse.objectives.recap import add_terminal_reward, entropy_weight, step_rewards
from keras_glimpse.validation import positive_int

STAGES = ("pretrain", "agent")
MODES = ("greedy", "sample")
# Agent-stage evaluation metrics (validation and test), beside loss and accuracy.
EVALUATION_METRICS = ("policy_entropy", "entropy_fraction", "accuracy_random_policy")
_MASK_VALUE = -1e9


@keras.saving.register_keras_serializable(package="keras_glimpse")
class RECAP(GlimpseModel):
    """RECAP: REINFORCE glimpse agent on a discrete grid, with memory (RLVC).

    The image (side I) is covered by an `N x N` grid of `P x P` cells with
    stride s, `N = floor((I - P) / s) + 1`, and `A = N^2` actions. An episode
    starts at the centre cell `(N // 2, N // 2)` and reads `num_steps` patches:

        patch_t, l_t = GridGlimpse(image, cell_t)
        e_t = PatchEncoder(patch_t, l_t)                      (embedding D)
        h_t = LSTM memory(e_t, h_{t-1})                       (RecurrentCore)
        v_t = ValueHead(stop_gradient(h_t))
        cell_{t+1} ~ softmax(policy([h_t, l_t]) + visited mask)
        logits = Dense(classes)(GatedPooling_tau=0.5(Summarizer(e_0..e_{T-1})))

    The policy is `Dense(64) ReLU -> Dense(A)` on `[h_t, l_t]` with the
    location rows of the first kernel zero-initialised; visited cells get
    `-1e9` logits, so no cell is read twice. The action sampled at the last
    step is never observed (as in the original).

    Two stages, chosen by `stage`:

    - `"pretrain"`: the classifier (encoder, summarizer, gate, classifier)
      reads **all** `N^2` grid patches in row-major order; cross-entropy with
      label smoothing `label_smoothing` (0.1); Adam with a cosine-decayed
      learning rate (1e-3 over the preset's epochs).
    - `"agent"`: the RL stage, three optimizers over explicit variable groups
      (one gradient call each, so nothing leaks):
      classification: encoder + summarizer + classifier (the gate is frozen),
      Adam 1e-4, CE only; RL: policy + memory, Adam 3e-4, the policy's
      gradients clipped to global norm 1.0 (not the memory's); value: Adam
      1e-3, clipped to 1.0. Rewards: per-step `clip(CE_{t-1} - CE_t, +-0.1)`
      (the CE of the classifier on the prefix of glimpses), plus `+-2` added to
      `r_{T-1}` for a right / wrong final prediction; returns with
      `gamma=0.98`; advantages `G - v` normalised over all `T*B` entries;
      loss `-mean(log pi * A) - beta * mean(entropy)` with `beta` decaying
      linearly from 0.03 to a floor of 0.01 over the epochs of `fit`; value
      loss `0.5 * mean((v - G)^2)`.

    **Reward sign.** The original code rewards a *rising* cross-entropy
    (`CE_t - CE_{t-1}`), which contradicts its README's stated intent
    ("maximize information gain"); we treat it as a probable bug and reward a
    falling cross-entropy by default. `original_reward_sign=True` restores the
    original behaviour.

    Deviations: `PatchEncoder` uses LayerNorm by default (`encoder_norm`;
    `"batch"` is the original's BatchNorm, synchronised across replicas);
    gradient clipping is applied to the gradients summed over replicas.

    Args:
        image_size: side I of the square input images.
        patch_size: side P of a glimpse.
        stride: grid stride s.
        num_steps: T, patches read per episode (6 cluttered, 8 MNIST).
        num_classes: number of classes.
        channels: image channels.
        embed_dim: D, the embedding / memory width (64).
        stage: `"pretrain"` or `"agent"`.
        policy: `"learned"`, or `"random"` (uniform over unvisited cells, in
            every mode: a baseline; the policy is then not trained).
        gamma: discount of the returns (0.98).
        step_reward_clip: clamp of the per-step reward (0.1).
        terminal_reward: magnitude of the terminal reward (2.0).
        original_reward_sign: reward a rising CE as the original code does.
        entropy_initial: initial entropy weight (0.03).
        entropy_floor: floor of the entropy weight (0.01).
        label_smoothing: label smoothing of the pretraining CE (0.1).
        encoder_norm: `"layer"` or `"batch"` (see `PatchEncoder`).
        attention_dropout: dropout of the summarizer's attention (0.1).
        temperature: softmax temperature of the gated pooling (0.5).
        gate_units: hidden width of the gate (128).
        policy_units: hidden width of the policy (64).
        value_units: hidden width of the value head (64).
        seed: int or None, seeds the policy's sampling.
        **kwargs: base `keras.Model` arguments (e.g. `name`).

    Call arguments:
        images: `(B, I, I, C)` float images in [0, 1].
        training: Python bool.

    Returns:
        `call` returns the greedy class logits `(B, num_classes)`.
        `rollout(images, mode)` returns a dict with `"predictions"` (logits),
        `"locations"` `(B, T, 2)` (the (y, x) locations read), `"actions"`
        `(B, T)` int32 (the cell sampled at step t, read at step t + 1; the
        last one is never read) and `"action_probs"` `(B, T, A)` (the masked
        policy at step t). In the pretrain stage `T = A`, the cells are read
        in row-major order and `"action_probs"` is one-hot.
        `rollout(images, stop_threshold=p)` (agent stage, inference) stops
        each image once the classifier's top class probability after a
        glimpse reaches p, and adds `"glimpses_used"` `(B,)` and
        `"steps_run"` (`keras_glimpse.models.recap_early_exit`).

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.models.recap import RECAP
    >>> model = RECAP(image_size=28, patch_size=7, stride=7, num_steps=3, embed_dim=16)
    >>> out = model.rollout(np.zeros((2, 28, 28, 1), "float32"), mode="sample")
    >>> tuple(out["predictions"].shape), tuple(out["action_probs"].shape)
    ((2, 10), (2, 3, 16))

    Reference:
        E. Kaiden, "Reinforcement Learning for Visual Comprehension" (RECAP),
        github.com/Evan-Kaiden/Reinforcement-Learning-for-Visual-Comprehension;
        spec `ordinal-uram-recap-ram.md` section 3. REINFORCE: Williams, 1992.
    """

    trajectory_keys = ("locations", "actions", "action_probs")
    supported_policies = ("learned", "random")
    # The agent stage's glimpse sequence can be cut short (export: serve_early_exit).
    supports_early_exit = property(lambda self: self.stage == "agent")

    def __init__(self, image_size=64, patch_size=8, stride=4, num_steps=6, num_classes=10,
                 channels=1, embed_dim=64, stage="agent", policy="learned", gamma=0.98,
                 step_reward_clip=0.1, terminal_reward=2.0, original_reward_sign=False,
                 entropy_initial=0.03, entropy_floor=0.01, label_smoothing=0.1,
                 encoder_norm="layer", attention_dropout=0.1, temperature=0.5,
                 gate_units=128, policy_units=64, value_units=64, seed=None, **kwargs):
        for name, value in (("image_size", image_size), ("patch_size", patch_size),
                            ("stride", stride), ("num_steps", num_steps),
                            ("num_classes", num_classes), ("channels", channels),
                            ("embed_dim", embed_dim), ("gate_units", gate_units),
                            ("policy_units", policy_units), ("value_units", value_units)):
            positive_int(name, value)
        super().__init__(image_shape=(image_size, image_size, channels),
                         prediction_type="classification", **kwargs)
        if patch_size > image_size:
            raise ValueError(
                f"`patch_size` must not exceed `image_size`; received patch_size={patch_size}, "
                f"image_size={image_size}."
            )
        if stage not in STAGES:
            raise ValueError(f"`stage` must be one of {STAGES}; received stage={stage!r}.")
        policy = resolve_policy(policy, self.supported_policies, owner="RECAP")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"`gamma` must be in [0, 1]; received gamma={gamma!r}.")
        if not step_reward_clip > 0:
            raise ValueError(
                f"`step_reward_clip` must be positive; received step_reward_clip={step_reward_clip!r}."
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1); received label_smoothing={label_smoothing!r}."
            )
        if not 0.0 <= entropy_floor <= entropy_initial:
            raise ValueError(
                "`entropy_floor` must be in [0, entropy_initial]; received "
                f"entropy_floor={entropy_floor!r}, entropy_initial={entropy_initial!r}."
            )
        self.image_size = int(image_size)
        self.patch_size = int(patch_size)
        self.stride = int(stride)
        self.num_steps = int(num_steps)
        self.num_classes = int(num_classes)
        self.channels = int(channels)
        self.embed_dim = int(embed_dim)
        self.stage = stage
        # The stage's rollout and train step, bound once (`stage` stays a config key).
        self._stage_rollout, self._stage_train_step = {
            "pretrain": (self._pretrain_stage_rollout, self._pretrain_train_step),
            "agent": (self._agent_stage_rollout, self._agent_train_step)}[stage]
        self.policy = policy
        self.gamma = float(gamma)
        self.step_reward_clip = float(step_reward_clip)
        self.terminal_reward = float(terminal_reward)
        self.original_reward_sign = bool(original_reward_sign)
        self.entropy_initial = float(entropy_initial)
        self.entropy_floor = float(entropy_floor)
        self.label_smoothing = float(label_smoothing)
        self.encoder_norm = encoder_norm
        self.attention_dropout = float(attention_dropout)
        self.temperature = float(temperature)
        self.gate_units = int(gate_units)
        self.policy_units = int(policy_units)
        self.value_units = int(value_units)
        self.seed = seed

        self.glimpse = GridGlimpse(self.image_size, self.patch_size, self.stride, name="glimpse")
        self.grid_size = self.glimpse.cells_per_side
        self.num_actions = self.glimpse.num_cells
        if stage == "agent" and self.num_steps > self.num_actions:
            raise ValueError(
                f"`num_steps` must not exceed the {self.num_actions} grid cells; received "
                f"num_steps={num_steps}."
            )
        self.start_cell = (self.grid_size // 2) * self.grid_size + self.grid_size // 2
        self.encoder = PatchEncoder(self.embed_dim, norm=encoder_norm, name="encoder")
        self.summarizer = SequenceSummarizer(num_heads=1, dropout=self.attention_dropout,
                                             name="summarizer")
        self.gate = GatedAttentionPooling(self.gate_units, temperature=self.temperature,
                                          name="gate")
        self.classifier = keras.layers.Dense(self.num_classes, name="classifier",
                                             dtype=precision.output_dtype())
        if stage == "agent":
            self.memory = RecurrentCore(self.embed_dim, cell_type="lstm", name="memory")
            self.policy_head = CategoricalHead(self.num_actions, hidden_units=self.policy_units,
                                               zero_init_last_inputs=2, seed=seed,
                                               name="policy_head")
            self.value_head = ValueHead(hidden_units=self.value_units, name="value_head")
            self.random_seed_generator = keras.random.SeedGenerator(
                None if seed is None else seed + 1, name="random_policy_seed")
            self.epoch = self.add_weight(name="epoch", shape=(), initializer="zeros",
                                         trainable=False)
            self.planned_epochs = self.add_weight(name="planned_epochs", shape=(),
                                                  initializer="ones", trainable=False)
        self._trackers = {}
        for name in self._metric_names():
            self._trackers[name] = keras.metrics.Mean(name=name)
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        # Evaluation only (agent stage), on the same images as the greedy
        # rollout: its policy's entropy per step (nats) and as a fraction of
        # the uniform policy's log(A), and the accuracy with random glimpses.
        self._eval_trackers = {} if self.stage == "pretrain" else {
            name: keras.metrics.Mean(name=name) for name in EVALUATION_METRICS}
        self.policy_optimizer = None
        self.value_optimizer = None
        self.policy_clipnorm = 1.0
        self.value_clipnorm = 1.0

    # ------------------------------------------------------------ plumbing
    def _metric_names(self):
        if self.stage == "pretrain":
            return ("loss",)
        return ("loss", "policy_loss", "value_loss", "reward", "entropy", "entropy_weight")

    @property
    def metrics(self):
        return list(self._trackers.values()) + [self._accuracy] + list(
            self._eval_trackers.values())

    def selection_metric(self):
        return "accuracy", "max"  # greedy policy in test_step

    @property
    def default_policy(self):
        return self.policy

    # The agent stage starts from the pretrain stage's classifier
    # (keras_glimpse.stages.init_from; apps.train --stage=agent --init_from=DIR).
    stage_parts = {"classifier": ("encoder", "summarizer", "gate", "classifier")}
    stage_names = STAGES
    legacy_init_args = {"pretrained": "classifier"}

    def init_parts(self):
        return ("classifier",) if self.stage == "agent" else ()

    def get_config(self):
        config = super().get_config()
        config.pop("image_shape", None)
        config.pop("prediction_type", None)
        config.update({
            "image_size": self.image_size, "patch_size": self.patch_size,
            "stride": self.stride, "num_steps": self.num_steps,
            "num_classes": self.num_classes, "channels": self.channels,
            "embed_dim": self.embed_dim, "stage": self.stage, "policy": self.policy,
            "gamma": self.gamma, "step_reward_clip": self.step_reward_clip,
            "terminal_reward": self.terminal_reward,
            "original_reward_sign": self.original_reward_sign,
            "entropy_initial": self.entropy_initial, "entropy_floor": self.entropy_floor,
            "label_smoothing": self.label_smoothing, "encoder_norm": self.encoder_norm,
            "attention_dropout": self.attention_dropout, "temperature": self.temperature,
            "gate_units": self.gate_units, "policy_units": self.policy_units,
            "value_units": self.value_units, "seed": self.seed,
        })
        return config

    # ----------------------------------------------------------- variables
    def classification_variables(self):
        """Encoder + summarizer + classifier (+ the gate when pretraining)."""
        layers = [self.encoder, self.summarizer, self.classifier]
        if self.stage == "pretrain":
            layers.insert(2, self.gate)
        return [v for layer in layers for v in layer.trainable_variables]

    def policy_variables(self):
        return list(self.policy_head.trainable_variables)

    def memory_variables(self):
        return list(self.memory.trainable_variables)

    def value_variables(self):
        return list(self.value_head.trainable_variables)

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer=None, policy_optimizer=None, value_optimizer=None,
                policy_clipnorm=1.0, value_clipnorm=1.0, **kwargs):
        """Compiles with RECAP's optimizers (one per variable group).

        Args:
            optimizer: the classification optimizer; defaults to Adam 1e-3
                (pretrain) or Adam 1e-4 (agent).
            policy_optimizer: agent stage, over policy + memory (Adam 3e-4).
            value_optimizer: agent stage, over the value head (Adam 1e-3).
            policy_clipnorm: global-norm clip of the policy gradients (1.0).
            value_clipnorm: global-norm clip of the value gradients (1.0).
            **kwargs: forwarded to `keras.Model.compile`.
        """
        if optimizer is None:
            optimizer = FusedAdam(1e-3 if self.stage == "pretrain" else 1e-4)
        super().compile(optimizer=optimizer, **kwargs)
        self.policy_clipnorm = float(policy_clipnorm)
        self.value_clipnorm = float(value_clipnorm)
        self.build_from_image_shape()
        self.optimizer.build(self.classification_variables())
        if self.stage == "agent":
            self.policy_optimizer = optimizers.loss_scaled(
                policy_optimizer or FusedAdam(3e-4), self)
            self.value_optimizer = optimizers.loss_scaled(
                value_optimizer or FusedAdam(1e-3), self)
            self.policy_optimizer.build(self.policy_variables() + self.memory_variables())
            self.value_optimizer.build(self.value_variables())

    def compile_from_preset(self, training):
        """Compiles from a preset's `training` table (and its `stages.<stage>` table).

        Keys: `learning_rate` (classification), `epochs` and `steps_per_epoch`
        (or `train_examples` and `batch_size`) for the pretraining cosine
        decay, `policy_learning_rate`, `value_learning_rate`, `clipnorm`.
        """
        training = optimizers.stage_table(training, self.stage)
        clipnorm = float(training.get("clipnorm", 1.0))
        if self.stage == "pretrain":
            self.compile(optimizer=optimizers.make_optimizer(
                training, default_examples=60000, schedule="cosine"))
        else:
            make = optimizers.make_optimizer
            self.compile(optimizer=make(training, learning_rate=1e-4),
                         policy_optimizer=make(training, "policy_", learning_rate=3e-4),
                         value_optimizer=make(training, "value_", learning_rate=1e-3),
                         policy_clipnorm=clipnorm, value_clipnorm=clipnorm)

    def begin_epoch(self, epoch, epochs):
        # The entropy weight decays over the `epochs` of this `fit` call.
        if self.stage == "agent":
            self.epoch.assign(float(epoch))
            self.planned_epochs.assign(float(epochs))

    def build(self, input_shape=None):
        if not self.built:
            self.rollout(tf.zeros((2,) + self.image_shape), mode="greedy")
            if self.stage == "agent" and not self.policy_head.built:
                self.policy_head.build((None, self.embed_dim + 2))
            self.built = True

    # ---------------------------------------------------------------- rollout
    def _classify(self, sequence, mask=None, training=False):
        summary = self.summarizer(sequence, mask=mask, training=training)
        return self.classifier(self.gate(summary, mask=mask))

    def _prefix_logits(self, feats, training=False):
        """Logits of the classifier on every prefix `0..t` of `feats` `(B, S, D)`
        in one call: `(B, S, K)`."""
        t = feats.shape[1]
        batch = tf.shape(feats)[0]
        tiled = tf.tile(feats[None], [t, 1, 1, 1])  # (T, B, T, D)
        tiled = tf.reshape(tiled, [t * batch, t, self.embed_dim])
        masks = SequenceSummarizer.prefix_masks(t)  # (T, T)
        masks = tf.reshape(tf.repeat(masks, batch, axis=0), [t * batch, t])
        logits = self._classify(tiled, mask=masks, training=training)
        logits = tf.reshape(logits, [t, batch, self.num_classes])
        return tf.transpose(logits, [1, 0, 2])

    def _random_policy(self, visited):
        logits = tf.where(visited, _MASK_VALUE, 0.0)
        u = keras.random.uniform(tf.shape(logits), minval=1e-7, maxval=1.0,
                                 seed=self.random_seed_generator)
        action = tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        probs = tf.nn.softmax(logits, axis=-1)
        return {
            "action": action,
            "probs": probs,
            "log_prob": tf.gather(log_probs, action, axis=1, batch_dims=1),
            "entropy": -tf.reduce_sum(probs * log_probs, axis=-1),
        }

    def _pretrain_rollout(self, images, training=False):
        batch = tf.shape(images)[0]
        a, p = self.num_actions, self.patch_size
        patches = self.glimpse.all_patches(images)  # (B, A, P, P, C)
        patches = tf.reshape(patches, [batch * a, p, p, self.channels])
        locations = self.glimpse.cell_locations()  # (A, 2)
        flat_locations = tf.tile(locations, [batch, 1])
        feats = self.encoder(patches, flat_locations, training=training)
        feats = tf.reshape(feats, [batch, a, self.embed_dim])
        logits = self._classify(feats, training=training)
        cells = tf.range(a, dtype=tf.int32)
        return {
            "predictions": logits,
            "locations": tf.tile(locations[None], [batch, 1, 1]),
            "actions": tf.tile(cells[None], [batch, 1]),
            "action_probs": tf.tile(tf.eye(a)[None], [batch, 1, 1]),
        }

    def _episode_start(self, batch):
        """`(cell, visited, memory states)` before the first glimpse: the centre
        cell, marked visited."""
        cell = tf.fill([batch], tf.constant(self.start_cell, tf.int32))
        visited = tf.one_hot(cell, self.num_actions, on_value=True, off_value=False,
                             dtype=tf.bool)
        return cell, visited, self.memory.get_initial_state(batch)

    def _glimpse_step(self, images, cell, visited, states, mode, training, policy):
        """One glimpse of the agent (the rollout's and the early-exit episode's):
        read `cell`, embed it (`feat`), update the memory (`h`, `states`) and
        choose the next cell (`action`, `out` the policy's dict) with the
        visited cells masked; `visited` includes the new cell."""
        patch, location = self.glimpse(images, cell)
        feat = self.encoder(patch, location, training=training)
        # The encoder learns from the classifier's loss only (the policy's
        # optimizer holds the policy and the memory): no gradient through here.
        h, states = self.memory(tf.stop_gradient(feat), states, training=training)
        if policy == "learned":
            inputs = tf.concat([h, tf.cast(location, h.dtype)], axis=-1)
            out = self.policy_head(inputs, mode=mode, mask=visited)
        else:
            out = self._random_policy(visited)
        action = tf.stop_gradient(out["action"])
        visited = tf.logical_or(visited, tf.one_hot(action, self.num_actions, on_value=True,
                                                    off_value=False, dtype=tf.bool))
        return {"feat": feat, "h": h, "states": states, "location": location, "out": out,
                "action": action, "visited": visited}

    def _agent_rollout(self, images, mode, training=False, with_rewards=False, policy=None):
        policy = self.policy if policy is None else policy
        cell, visited, states = self._episode_start(tf.shape(images)[0])
        feats, values, log_probs, entropies, probs, actions, locations = ([] for _ in range(7))
        for _ in range(self.num_steps):
            step = self._glimpse_step(images, cell, visited, states, mode, training, policy)
            states, visited, out = step["states"], step["visited"], step["out"]
            cell = step["action"]
            values.append(self.value_head(tf.stop_gradient(step["h"])))
            feats.append(step["feat"])
            locations.append(step["location"])
            actions.append(cell)
            probs.append(out["probs"])
            log_probs.append(out["log_prob"])
            entropies.append(out["entropy"])
        feats = tf.stack(feats, axis=1)  # (B, T, D)
        result = {
            "locations": tf.stack(locations, axis=1),
            "actions": tf.stack(actions, axis=1),
            "action_probs": tf.stack(probs, axis=1),
            "log_probs": tf.stack(log_probs, axis=1),
            "entropy": tf.stack(entropies, axis=1),
            "values": tf.stack(values, axis=1),
        }
        result["predictions"] = self._classify(feats, training=training)
        if with_rewards:
            # The rewards' classifications of the shorter prefixes carry no
            # gradient (only the full episode's CE trains the classifier), so
            # they run apart, without a backward pass: a T-times smaller one.
            step_logits = [result["predictions"][:, None]]
            if self.num_steps > 1:
                earlier = self._prefix_logits(feats[:, :-1], training=training)
                step_logits.insert(0, tf.stop_gradient(earlier))  # (blocks feats' gradient too)
            result["step_logits"] = tf.concat(step_logits, axis=1)
        return result

    def rollout(self, images, mode="greedy", training=False, policy=None, stop_threshold=None):
        """The stage's rollout (see the class docstring). With `stop_threshold`
        p (agent stage, inference only), an image stops once the classifier's
        top class probability after a glimpse, read on the glimpses so far,
        reaches p; the loop ends when every image has stopped
        (`recap_early_exit`). The classifier is trained on all T glimpses, so
        earlier reads are its guesses on a prefix: measure the accuracy cost
        (`benchmarks/early_exit.py`)."""
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}; received mode={mode!r}.")
        if stop_threshold is not None:
            stop_threshold = early_exit.resolve_threshold(stop_threshold, training)
        policy = self.resolve_policy(policy)
        images = self.check_images(tf.convert_to_tensor(images))
        if stop_threshold is not None:
            return recap_early_exit.early_exit_rollout(self, images, stop_threshold, mode, policy)
        return self._stage_rollout(images, mode, training, policy)

    def early_exit_macs(self, glimpses):
        """Analytic MACs of one image's early-exit rollout that used `glimpses`
        glimpses (`recap_early_exit.early_exit_macs`)."""
        return recap_early_exit.early_exit_macs(self, glimpses)

    def _pretrain_stage_rollout(self, images, mode, training, policy):
        # The classifier reads every cell in row-major order, whatever the policy.
        return self._pretrain_rollout(images, training=training)

    def _agent_stage_rollout(self, images, mode, training, policy):
        out = self._agent_rollout(images, mode, training=training, policy=policy)
        return {k: out[k] for k in ("predictions",) + self.trajectory_keys}

    # ------------------------------------------------------------- training
    def _labels(self, y):
        return tf.cast(tf.reshape(y, [-1]), tf.int32)

    def _pretrain_train_step(self, x, y):
        with tf.GradientTape() as tape:
            logits = self._pretrain_rollout(x, training=True)["predictions"]
            onehot = tf.one_hot(y, self.num_classes)
            per_example = keras.losses.categorical_crossentropy(
                onehot, logits, from_logits=True, label_smoothing=self.label_smoothing)
            loss = reinforce.reduce_loss(per_example)
        variables = self.classification_variables()
        grads = optimizers.gradients(tape, loss, variables, self.optimizer)
        self.optimizer.apply(grads, variables)
        self._trackers["loss"].update_state(per_example)
        self._accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def agent_losses(self, x, y, training=True):
        """Runs one sampled episode and returns RECAP's losses and statistics.

        Returns:
            dict with scalars `ce_loss`, `policy_loss`, `value_loss`,
            `entropy_weight`, and tensors `predictions` (B, K), `rewards`,
            `returns`, `advantages` (B, T).
        """
        out = self._agent_rollout(x, "sample", training=training, with_rewards=True)
        logits = out["predictions"]
        per_example_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        t = self.num_steps
        step_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.tile(y[:, None], [1, t]), logits=tf.stop_gradient(out["step_logits"]))
        correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), y)
        rewards = step_rewards(step_ce, self.step_reward_clip, self.original_reward_sign)
        rewards = add_terminal_reward(rewards, correct, self.terminal_reward)
        returns = reinforce.discounted_returns(rewards, self.gamma)
        values = out["values"]
        advantages = reinforce.normalize_advantages(returns - tf.stop_gradient(values))
        beta = entropy_weight(self.epoch, self.planned_epochs, self.entropy_initial,
                              self.entropy_floor)
        pg = reinforce.policy_gradient_loss(out["log_probs"], advantages) / t
        ent = reinforce.entropy_bonus(out["entropy"]) / t
        return {
            "ce_loss": reinforce.reduce_loss(per_example_ce),
            "policy_loss": reinforce.reduce_loss(pg) - beta * reinforce.reduce_loss(ent),
            "value_loss": 0.5 * reinforce.reduce_loss(reinforce.baseline_loss(values, returns)),
            "entropy_weight": beta,
            "per_example_ce": per_example_ce,
            "entropy": out["entropy"],
            "predictions": logits,
            "rewards": rewards,
            "returns": returns,
            "advantages": advantages,
        }

    def _agent_train_step(self, x, y):
        if self.value_optimizer is None:
            raise RuntimeError("Compile the agent-stage RECAP with RECAP.compile() first.")
        with tf.GradientTape(persistent=True) as tape:
            losses = self.agent_losses(x, y, training=True)
        cls_vars = self.classification_variables()
        cls_grads = optimizers.gradients(tape, losses["ce_loss"], cls_vars, self.optimizer)
        self.optimizer.apply(cls_grads, cls_vars)
        if self.policy == "learned":
            policy_vars, memory_vars = self.policy_variables(), self.memory_variables()
            variables = policy_vars + memory_vars
            grads = optimizers.gradients(tape, losses["policy_loss"], variables,
                                         self.policy_optimizer)
            # (the gradients carry the loss scale: so does the clipping norm)
            scale = optimizers.loss_scale(self.policy_optimizer, variables)
            policy_grads, _ = clip_by_global_norm_across_replicas(
                grads[:len(policy_vars)], self.policy_clipnorm * scale)
            self.policy_optimizer.apply(policy_grads + grads[len(policy_vars):],
                                        policy_vars + memory_vars)
        value_vars = self.value_variables()
        value_grads = optimizers.gradients(tape, losses["value_loss"], value_vars,
                                           self.value_optimizer)
        value_grads, _ = clip_by_global_norm_across_replicas(
            value_grads,
            self.value_clipnorm * optimizers.loss_scale(self.value_optimizer, value_vars))
        self.value_optimizer.apply(value_grads, value_vars)
        del tape
        self._trackers["loss"].update_state(losses["per_example_ce"])
        self._trackers["policy_loss"].update_state(losses["policy_loss"])
        self._trackers["value_loss"].update_state(losses["value_loss"])
        self._trackers["reward"].update_state(tf.reduce_sum(losses["rewards"], axis=1))
        self._trackers["entropy"].update_state(tf.reduce_mean(losses["entropy"], axis=1))
        self._trackers["entropy_weight"].update_state(losses["entropy_weight"])
        self._accuracy.update_state(y, losses["predictions"])
        return {m.name: m.result() for m in self.metrics if m.name not in EVALUATION_METRICS}

    def train_step(self, data):
        x, y = self.unpack(data)
        return self._stage_train_step(x, self._labels(y))

    def test_step(self, data):
        x, y = self.unpack(data)
        y = self._labels(y)
        if self.stage == "pretrain":
            logits = self(x, training=False)
        else:
            out = self.rollout(self.check_finite(self.check_images(x)), mode="greedy")
            logits = out["predictions"]
            probs = out["action_probs"]
            entropy = -tf.reduce_sum(probs * tf.math.log(tf.maximum(probs, 1e-12)), -1)
            uniform = math.log(probs.shape[-1])
            random = self.rollout(x, mode="greedy", policy="random")["predictions"]
            t = self._eval_trackers
            t["policy_entropy"].update_state(tf.reduce_mean(entropy, axis=1))
            t["entropy_fraction"].update_state(tf.reduce_mean(entropy, axis=1) / uniform)
            t["accuracy_random_policy"].update_state(tf.cast(tf.equal(
                tf.argmax(random, -1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32))
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        self._trackers["loss"].update_state(ce)
        self._accuracy.update_state(y, logits)
        logs = {"loss": self._trackers["loss"].result(), "accuracy": self._accuracy.result()}
        logs.update({k: m.result() for k, m in self._eval_trackers.items()})
        return logs
