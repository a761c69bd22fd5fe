"""AdaGlimpse: glimpses of arbitrary position and scale chosen by Soft Actor-Critic."""

import functools
import math

import keras
import tensorflow as tf

from keras_glimpse import early_exit, optimizers, precision
from keras_glimpse.backbones.elastic_vit import VIT_SIZES, ElasticViT
from keras_glimpse.fused_adam import FusedAdamW
from keras_glimpse.layers.elastic_glimpse import ElasticGlimpse
from keras_glimpse.layers.glimpse_actor_critic import STATE_PARTS, GlimpseActorCritic
from keras_glimpse.models.adaglimpse_schedule import (BACKBONE_TRAINING, PHASES, STAGES,
                                                      grid_actions, phase_of_epoch,
                                                      rewards_from_scores)
from keras_glimpse.models.adaglimpse_early_exit import early_exit_episode
from keras_glimpse.models.adaglimpse_tasks import TASKS, reconstruction_score
from keras_glimpse.models.glimpse_model import GlimpseModel
from keras_glimpse.objectives import sac
from keras_glimpse.objectives.reinforce import reduce_loss
from keras_glimpse.objectives.replay_buffer import ReplayBuffer
from keras_glimpse.validation import number, positive_int

@keras.saving.register_keras_serializable(package="keras_glimpse")
class AdaGlimpse(GlimpseModel):
    """AdaGlimpse: active visual exploration with arbitrary glimpse position and scale.

    An episode takes `num_glimpses` glimpses. Each glimpse is a square of any
    position and size (action `(y, x, scale)` in `[0, 1]^3`), captured by
    `ElasticGlimpse` as `grid_size^2` patches of `patch_size^2` pixels with
    their pixel boxes. An `ElasticViT` re-encodes all patches gathered so far
    (fixed-size padded arrays `(B, T g^2, ...)` with a mask, no ragged
    tensors); a task head (`ReconstructionDecoder`, a linear classifier on
    CLS, or `SegmentationDecoder`) predicts; the per-step change of the task
    score is the reward of a Soft Actor-Critic agent (`GlimpseActorCritic`
    actor and twin critics with target copies, learned temperature) that
    reads the encoder tokens, the attention-rollout importance, the patch
    boxes and the raw patches, and outputs the next glimpse. Everything
    task-specific (head, prediction, score, loss, metrics) is the task object
    `task_impl` (`models.adaglimpse_tasks`), chosen once in the constructor.

    Training (`fit`; the schedule is `phase_of_epoch` and `PHASES`):
    - `stage="pretrain"`: backbone only, on random elastic glimpses (first a
      whole-image glimpse, then uniform random position and scale) with the
      task loss (reconstruction MSE over every patch, CE, pixel CE).
    - `stage="rl"`: epochs `< freeze_backbone_epochs` train only the agent;
      after that `backbone_training="alternating"` trains the agent in even
      and the backbone in odd epochs. An RL epoch plays each batch as one
      game: after every glimpse step the transition
      `(s_{t-1}, a_{t-1}, r_t = S_t - S_{t-1}, s_t, terminated = t == T)`
      enters an on-device replay buffer and `rl_iters_per_step` SAC updates
      run (`sac_update`: the actor, critic and temperature steps of
      `objectives.sac`) before the next action is sampled. The first `init_random_steps` glimpse
      steps use uniform random actions. A backbone epoch plays the episode
      with the sampled policy and takes one optimizer step on the last-step
      task loss.
    - Evaluation uses the deterministic mean action (the pretrain stage, which
      has no trained actor, is validated on its own training glimpses: whole
      image, then random); optionally a sample stops
      once its max class probability reaches `early_stop_threshold`
      (`avg_glimpses` is reported).

    Deviations from the original code are listed in `docs/adaglimpse.md`.

    Args:
        image_shape: `(H, W, C)`; H and W divisible by `patch_size`.
        task: `"reconstruction"`, `"classification"` or `"segmentation"`.
        num_classes: classes for classification / segmentation.
        num_glimpses: T.
        grid_size: g, patches per glimpse side.
        patch_size: native patch side (16).
        max_glimpse_size_ratio: largest glimpse side / min(H, W).
        backbone_size: `"tiny"`, `"small"`, `"base"`, `"large"` (`ElasticViT`).
        decoder_dim, decoder_depth, decoder_heads: the MAE-style decoder.
        hidden_units: agent width h (256).
        gamma, tau, target_entropy (None = -3), initial_alpha: SAC.
        replay_capacity: replay buffer size (10,000).
        rl_batch_size: SAC batch (128).
        init_random_steps: glimpse steps with uniform random actions (10,000).
        freeze_backbone_epochs: RL-only epochs before alternation (10).
        backbone_training: `"alternating"`, `"rl_only"`, or `"backbone_only"`
            (every epoch trains the backbone on the agent's glimpses with the
            agent frozen: fine-tuning a backbone to a trained policy).
        reward_type: `"diff"` (default) or `"simple"`.
        reward_scale: multiplies the reward in the SAC target (1 = the
            original). Small per-step rewards (a change of class probability
            of a few hundredths) are otherwise swamped by `alpha * log pi`
            in short runs.
        rl_iters_per_step: SAC updates per glimpse step (the original's
            `--rl-iters-per-step`, default 1).
        early_stop_threshold: None or a probability (classification eval).
        exclude_rl_inputs: state parts hidden from the agent (ablation).
        pixel_mean, pixel_std: per-channel normalisation of the input images
            (None: images are in [0, 1]); used to score RMSE on 0..255.
        stage: `"rl"` or `"pretrain"`.
        seed: int or None.
        **kwargs: `GlimpseModel` / `keras.Model` arguments.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.models.adaglimpse import AdaGlimpse
    >>> model = AdaGlimpse((32, 32, 1), num_glimpses=2, grid_size=1, patch_size=8,
    ...                    backbone_size="tiny", decoder_dim=32, decoder_depth=1,
    ...                    decoder_heads=2, hidden_units=32)
    >>> out = model.rollout(np.zeros((2, 32, 32, 1), "float32"))
    >>> tuple(out["predictions"].shape), tuple(out["boxes"].shape)
    ((2, 32, 32, 1), (2, 2, 4))

    Reference:
        Pardyl, Wronka, Wołczyk, Adamczewski, Trzciński, Zieliński,
        "AdaGlimpse: Active Visual Exploration with Arbitrary Glimpse Position
        and Scale", ECCV 2024 (arXiv:2404.03482).
    """

    trajectory_keys = ("boxes",)

    def __init__(self, image_shape=(224, 224, 3), task="reconstruction", num_classes=None,
                 num_glimpses=12, grid_size=2, patch_size=16, max_glimpse_size_ratio=1.0,
                 backbone_size="base", decoder_dim=512, decoder_depth=8, decoder_heads=16,
                 hidden_units=256, gamma=0.99, tau=0.005, target_entropy=None,
                 initial_alpha=1.0, replay_capacity=10000, rl_batch_size=128,
                 init_random_steps=10000, freeze_backbone_epochs=10,
                 backbone_training="alternating", reward_type="diff", reward_scale=1.0,
                 rl_iters_per_step=1,
                 early_stop_threshold=None, exclude_rl_inputs=(), pixel_mean=None,
                 pixel_std=None, stage="rl", seed=None, **kwargs):
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {sorted(TASKS)}; received task={task!r}.")
        super().__init__(image_shape, prediction_type=TASKS[task].prediction_type, **kwargs)
        # The one dispatch on the task: everything task-specific is `task_impl`'s.
        self.task_impl = TASKS[task](self.image_shape, num_classes, pixel_mean, pixel_std)
        for name, value in (("num_glimpses", num_glimpses), ("grid_size", grid_size),
                            ("patch_size", patch_size), ("replay_capacity", replay_capacity),
                            ("rl_batch_size", rl_batch_size)):
            positive_int(name, value)
        h, w, _ = self.image_shape
        if h % patch_size or w % patch_size:
            raise ValueError(
                f"image height and width must be divisible by patch_size={patch_size}; "
                f"received image_shape={self.image_shape}.")
        if backbone_size not in VIT_SIZES:
            raise ValueError(
                f"`backbone_size` must be one of {sorted(VIT_SIZES)}; received {backbone_size!r}.")
        if stage not in STAGES:
            raise ValueError(f"`stage` must be one of {STAGES}; received stage={stage!r}.")
        if backbone_training not in BACKBONE_TRAINING:
            raise ValueError(
                f"`backbone_training` must be one of {BACKBONE_TRAINING}; received "
                f"{backbone_training!r}.")
        rl_iters_per_step = positive_int("rl_iters_per_step", rl_iters_per_step)
        reward_scale = number("reward_scale", reward_scale, minimum=0, strict=True)
        if reward_type not in ("diff", "simple"):
            raise ValueError(f"`reward_type` must be 'diff' or 'simple'; received {reward_type!r}.")
        if early_stop_threshold is not None and not 0.0 < float(early_stop_threshold) <= 1.0:
            raise ValueError(
                f"`early_stop_threshold` must be None or in (0, 1]; received "
                f"{early_stop_threshold!r}.")
        if not 0.0 <= float(tau) <= 1.0 or not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"`gamma` and `tau` must be in [0, 1]; received {gamma!r}, {tau!r}.")
        if int(freeze_backbone_epochs) < 0 or int(init_random_steps) < 0:
            raise ValueError(
                "`freeze_backbone_epochs` and `init_random_steps` must be >= 0; received "
                f"{freeze_backbone_epochs!r}, {init_random_steps!r}.")
        self.task = task
        self.num_classes = num_classes
        self.num_glimpses = num_glimpses
        self.grid_size = grid_size
        self.patch_size = patch_size
        self.max_glimpse_size_ratio = float(max_glimpse_size_ratio)
        self.backbone_size = backbone_size
        self.decoder_dim = decoder_dim
        self.decoder_depth = decoder_depth
        self.decoder_heads = decoder_heads
        self.hidden_units = hidden_units
        self.gamma = float(gamma)
        self.tau = float(tau)
        self.target_entropy = target_entropy
        self.initial_alpha = float(initial_alpha)
        self.replay_capacity = replay_capacity
        self.rl_batch_size = rl_batch_size
        self.init_random_steps = int(init_random_steps)
        self.freeze_backbone_epochs = int(freeze_backbone_epochs)
        self.backbone_training = backbone_training
        self.reward_type = reward_type
        self.reward_scale = float(reward_scale)
        self.rl_iters_per_step = rl_iters_per_step
        self.early_stop_threshold = (None if early_stop_threshold is None
                                     else float(early_stop_threshold))
        self.exclude_rl_inputs = tuple(exclude_rl_inputs)
        self.pixel_mean = None if pixel_mean is None else [float(v) for v in pixel_mean]
        self.pixel_std = None if pixel_std is None else [float(v) for v in pixel_std]
        self.stage = stage
        self.seed = seed
        self.current_epoch = 0

        self.num_slots = num_glimpses * grid_size**2
        # The sensor and the agent's observations stay float32 under a mixed
        # policy (boxes are coordinates; the replay buffer stores float32).
        self.sensor = ElasticGlimpse(grid_size, patch_size,
                                     max_size_ratio=self.max_glimpse_size_ratio,
                                     dtype=precision.output_dtype(), name="sensor")
        self.encoder = ElasticViT(backbone_size, patch_size=patch_size, name="encoder")
        self.task_head = self.task_impl.make_head(patch_size, decoder_dim, decoder_depth,
                                                  decoder_heads)
        seeds = [None] * 3 if seed is None else [seed + 1, seed + 2, seed + 3]
        self.actor = GlimpseActorCritic("actor", hidden_units, action_dim=3,
                                        exclude_inputs=self.exclude_rl_inputs, seed=seeds[0],
                                        name="actor")

        def critic(name, trainable=True):  # twin critics and their Polyak-averaged targets
            return GlimpseActorCritic("critic", hidden_units, exclude_inputs=self.exclude_rl_inputs,
                                      trainable=trainable, name=name)

        self.critic1, self.critic2 = critic("critic1"), critic("critic2")
        self.target_critic1 = critic("target_critic1", trainable=False)
        self.target_critic2 = critic("target_critic2", trainable=False)
        self.seed_generator = keras.random.SeedGenerator(seeds[1], name="policy_seed")
        self.replay_buffer = None
        self._make_trackers()

    # The RL stage starts from the pretrain stage's backbone (encoder + task head);
    # the agent, critics and temperature start fresh (keras_glimpse.stages).
    stage_parts = {"backbone": ("encoder", "task_head")}
    stage_names = STAGES

    def init_parts(self):
        return ("backbone",) if self.stage == "rl" else ()

    # ------------------------------------------------------------ building
    def build(self, input_shape=None):
        if self.built:
            return
        zeros = tf.zeros((2,) + self.image_shape)
        out = self._episode(zeros, mode="greedy", training=False)
        state = out["final_state"]
        action = tf.zeros((2, 3))
        for net in (self.critic1, self.critic2, self.target_critic1, self.target_critic2):
            net(state, action)
        self.target_critic1.set_weights(self.critic1.get_weights())
        self.target_critic2.set_weights(self.critic2.get_weights())
        self.log_alpha = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(math.log(self.initial_alpha)),
            name="log_alpha")
        self.rl_steps = self.add_weight(shape=(), initializer="zeros", dtype="int32",
                                        trainable=False, aggregation="only_first_replica",
                                        name="rl_steps")
        self.built = True

    @property
    def backbone_variables(self):
        return self.encoder.trainable_variables + self.task_head.trainable_variables

    @property
    def critic_variables(self):
        return self.critic1.trainable_variables + self.critic2.trainable_variables

    # ------------------------------------------------------------ episode
    def _normalise_coords(self, boxes):
        h, w, _ = self.image_shape
        return boxes / tf.constant([h, w, h, w], boxes.dtype)

    def _early_stop(self, training):
        """The confidence threshold of evaluation episodes (tasks that stop early)."""
        if training or not self.task_impl.early_stops:
            return None
        return self.early_stop_threshold

    def _encode(self, patches, boxes, mask, training=False):
        enc = self.encoder(patches, boxes, mask, return_importance=True)
        tokens = enc["tokens"]
        predictions = self.task_impl.predict(self.task_head, tokens, mask, training)
        state = {
            "patches": patches,
            "importance": tf.cast(enc["importance"], patches.dtype),
            "coords": self._normalise_coords(boxes),
            "latent": tf.cast(tf.stop_gradient(tokens[:, 1:]), patches.dtype),
            "mask": mask[..., None],
        }
        return predictions, state

    def _steps(self, images, targets=None, mode="greedy", training=False, policy="actor",
               random_until=None, early_stop=None, first_actions=None, fast=False,
               encode=True):
        """Plays one episode lazily: yields one record per step `t = 0..T`.

        Step `t` encodes the `t` glimpses taken so far (`state`, `score` `S_t`,
        `predictions`), then, for `t < T`, chooses and takes glimpse `t`
        (`action`, its pixel `box`; `action` is None at `t = T`). `inputs` are
        the encoder inputs `(patches, boxes, mask)` of step `t`, `taken` the
        glimpses taken per image (early stop). The consumer runs between two
        steps: the RL step updates the agent there, before the next action.
        `fast`: the actor's (`GlimpseActorCritic`; not under XLA).
        `encode=False` (a policy that never reads the state: `"random"`,
        `"grid"`): no step is encoded (`state`, `score`, `predictions` are None),
        the same glimpses and random draws.
        """
        if not encode and (policy not in ("random", "grid") or early_stop is not None):
            raise ValueError("`encode=False` needs a policy that does not read the state "
                             f"('random' or 'grid') and no early stop; received policy={policy!r}.")
        b = tf.shape(images)[0]
        g2, p = self.grid_size**2, self.patch_size
        c = self.image_shape[2]
        T = self.num_glimpses
        patches_list, boxes_list, mask_list = [], [], []
        done = tf.zeros([b], tf.bool)
        taken = tf.zeros([b], tf.float32)
        grid = (grid_actions(b, T, self.image_shape, p, self.grid_size, self.max_glimpse_size_ratio)
                if policy == "grid" else None)
        for t in range(T + 1):
            n_empty = T - t
            patches = tf.concat(patches_list + [tf.zeros([b, n_empty * g2, p, p, c])], axis=1)
            boxes = tf.concat(boxes_list + [tf.zeros([b, n_empty * g2, 4])], axis=1)
            mask = tf.concat(mask_list + [tf.ones([b, n_empty * g2])], axis=1)
            predictions = state = score = None
            if encode:
                predictions, state = self._encode(patches, boxes, mask, training=False)
                score = self.task_impl.score(predictions, images, targets, training)
            if early_stop is not None:
                confidence = tf.reduce_max(tf.nn.softmax(predictions, -1), -1)
                done = tf.logical_or(done, confidence >= early_stop)
            action = box = None
            if t < T:
                if policy == "grid":
                    action = grid[t]
                elif first_actions is not None and t < len(first_actions):
                    action = tf.tile(tf.constant([first_actions[t]], tf.float32), [b, 1])
                else:
                    uniform = keras.random.uniform([b, 3], seed=self.seed_generator)
                    if policy == "random":
                        action = uniform
                    else:
                        out = self.actor(state, mode="sample" if mode == "sample" else "greedy",
                                         fast=fast)
                        action = out["action"]
                        if random_until is not None:
                            action = tf.where(random_until, uniform, action)
                action = tf.stop_gradient(action)
                new_patches, new_boxes = self.sensor(images, action)
                active = tf.cast(tf.logical_not(done), new_patches.dtype)
                taken = taken + active
                patches_list.append(new_patches * active[:, None, None, None, None])
                boxes_list.append(new_boxes * active[:, None, None] - (1.0 - active)[:, None, None])
                mask_list.append(tf.tile(1.0 - active[:, None], [1, g2]))
                box = tf.concat([tf.reduce_min(new_boxes[:, :, :2], 1),
                                 tf.reduce_max(new_boxes[:, :, 2:], 1)], -1)
            yield {"t": t, "state": state, "score": score, "predictions": predictions,
                   "action": action, "box": box, "taken": taken,
                   "inputs": (patches, boxes, mask)}

    @staticmethod
    def _episode_output(steps, return_steps=False):
        """The episode dict from the step records of `_steps` (all `T + 1`)."""
        steps = list(steps)
        last, glimpses = steps[-1], steps[:-1]
        patches, boxes, mask = last["inputs"]
        out = {
            "predictions": last["predictions"],
            "boxes": tf.stack([s["box"] for s in glimpses], axis=1),
            "actions": tf.stack([s["action"] for s in glimpses], axis=1),
            "patch_boxes": boxes,
            "mask": mask,
            "scores": tf.stack([s["score"] for s in steps], axis=1),
            "num_glimpses": last["taken"],
            "final_state": last["state"],
            "final_inputs": last["inputs"],
        }
        if return_steps:
            out["step_predictions"] = tf.stack([s["predictions"] for s in steps], axis=0)
        return out

    def _episode(self, images, targets=None, mode="greedy", training=False, policy="actor",
                 random_until=None, early_stop=None, return_steps=False, first_actions=None):
        """Plays one whole episode (`_steps`) and returns its `_episode_output`."""
        steps = self._steps(images, targets, mode=mode, training=training, policy=policy,
                            random_until=random_until, early_stop=early_stop,
                            first_actions=first_actions)
        return self._episode_output(steps, return_steps)

    # "learned" is the SAC actor ("actor", its former name, is still accepted).
    supported_policies = ("learned", "random", "grid")
    evaluation_baselines = ("random", "grid")  # same backbone, same pixel budget
    supports_early_exit = property(lambda self: self.task == "classification")

    def rollout(self, images, mode="greedy", training=False, policy=None, targets=None,
                return_steps=False, stop_threshold=None):
        """One episode; `stop_threshold`: see `adaglimpse_early_exit`."""
        if mode not in ("greedy", "sample"):
            raise ValueError(f"`mode` must be 'greedy' or 'sample'; received mode={mode!r}.")
        policy = self.resolve_policy(policy)
        images = tf.cast(images, self.compute_dtype)
        if stop_threshold is not None:
            return early_exit_episode(
                self, images, early_exit.resolve_threshold(stop_threshold, training), mode, policy)
        out = self._episode(images, targets, mode=mode, training=training, policy=policy,
                            early_stop=self._early_stop(training), return_steps=return_steps)
        out.pop("final_state")
        out.pop("final_inputs")
        return out

    # ------------------------------------------------------------ compile
    def compile(self, optimizer=None, actor_optimizer=None, critic_optimizer=None,
                alpha_optimizer=None, **kwargs):
        """Backbone optimizer plus the three SAC optimizers (defaults per the spec)."""
        if not self.built:
            self.build_from_image_shape()
        optimizer = optimizer or FusedAdamW(1e-5, weight_decay=1e-4)
        super().compile(optimizer=optimizer, **kwargs)
        sac_default = functools.partial(FusedAdamW, 1e-3, weight_decay=0.01)
        self.actor_optimizer = optimizers.loss_scaled(actor_optimizer or sac_default(), self)
        self.critic_optimizer = optimizers.loss_scaled(critic_optimizer or sac_default(), self)
        self.alpha_optimizer = optimizers.loss_scaled(alpha_optimizer or sac_default(), self)
        self.optimizer.build(self.backbone_variables)
        self.actor_optimizer.build(self.actor.trainable_variables)
        self.critic_optimizer.build(self.critic_variables)
        self.alpha_optimizer.build([self.log_alpha])
        if self.stage == "rl":
            self._make_replay_buffer()

    def compile_from_preset(self, training):
        """Four AdamW optimizers with one-cycle-like schedules (warm start, cosine decay).

        `training` keys: `learning_rate` (agent, 1e-3), `backbone_learning_rate`
        (1e-5), `weight_decay` (0.01), `backbone_weight_decay` (1e-4), and, for
        the schedules, `epochs` and `steps_per_epoch` (in the RL stage each batch
        is T agent optimizer steps).
        """
        # OneCycle with div_factor=1 and final_div_factor=1000: starts at max, cosine decay.
        make = functools.partial(optimizers.make_optimizer, training, optimizer="adamw",
                                 schedule="cosine", cosine_alpha=1e-3)
        per_batch = self.num_glimpses if self.stage == "rl" else 1
        agent = dict(steps_multiplier=per_batch, learning_rate=1e-3, weight_decay=0.01)
        self.compile(
            optimizer=make("backbone_", learning_rate=1e-5, weight_decay=1e-4),
            actor_optimizer=make(**agent), critic_optimizer=make(**agent),
            alpha_optimizer=make(**agent))

    def _make_trackers(self):
        names = ["loss", "score"]
        if self.stage == "rl":
            names += ["reward", "critic_loss", "actor_loss", "alpha", "q"]
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self._trackers.update(self.task_impl.make_trackers())

    @property
    def metrics(self):
        return list(self._trackers.values())

    def observation_spec(self):
        p, c = self.patch_size, self.image_shape[2]
        n, d = self.num_slots, self.encoder.embed_dim
        return {
            "patches": tf.TensorSpec((n, p, p, c), tf.float32),
            "importance": tf.TensorSpec((n, 1), tf.float32),
            "coords": tf.TensorSpec((n, 4), tf.float32),
            "latent": tf.TensorSpec((n, d), tf.float32),
            "mask": tf.TensorSpec((n, 1), tf.float32),
        }

    def _make_replay_buffer(self):
        obs = self.observation_spec()
        spec = {"observation": obs, "action": tf.TensorSpec((3,), tf.float32),
                "reward": tf.TensorSpec((), tf.float32), "next_observation": obs,
                "terminated": tf.TensorSpec((), tf.float32)}
        self.replay_buffer = ReplayBuffer(spec, capacity=self.replay_capacity, seed=self.seed)

    # ------------------------------------------------------------ training
    def current_phase(self):
        """`"pretrain"`, `"rl"` or `"backbone"` for `self.current_epoch` (`phase_of_epoch`)."""
        return phase_of_epoch(self.current_epoch, self.stage, self.backbone_training,
                              self.freeze_backbone_epochs)

    def begin_epoch(self, epoch, epochs):
        self.current_epoch = int(epoch)

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        functions = {}

        def dispatch(iterator):
            phase = self.current_phase()
            self._phase = phase
            if phase not in functions:
                functions[phase] = self._make_function(self.train_step)
            return functions[phase](iterator)

        self.train_function = dispatch
        return dispatch

    # Traced as written, without AutoGraph: its loops and branches are explicit
    # (`tf.while_loop`, `tf.cond`) or on Python values, and AutoGraph's
    # conversion of the ~100 functions it reaches took 7 of the RL step's
    # 29 s trace (benchmarks/adaglimpse.py reports the trace time).
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        images, targets = self.unpack(data)
        phase = PHASES[getattr(self, "_phase", None) or self.current_phase()]
        if phase.trains == "agent":
            return self._rl_step(images, targets)
        return self._backbone_step(images, targets, phase)

    def _blind_episode(self, images, targets, policy, first_actions, training,
                       predictions=None):
        """An episode of a policy that never reads the state (`"random"`,
        `"grid"`): the glimpses are taken without encoding any step, then the
        final ones are encoded once (or `predictions(final_inputs)` gives the
        final predictions). The same glimpses, final predictions and score as
        `_episode` at a fraction of its cost (pretraining's glimpses); `scores`
        holds the final step's only."""
        steps = list(self._steps(images, targets, mode="sample", training=training,
                                 policy=policy, first_actions=first_actions, encode=False))
        inputs = steps[-1]["inputs"]
        final = (predictions(*inputs) if predictions is not None
                 else self._encode(*inputs, training=False)[0])
        score = self.task_impl.score(tf.stop_gradient(final), images, targets, training)
        return {"predictions": final, "final_inputs": inputs, "scores": score[:, None],
                "num_glimpses": steps[-1]["taken"],
                "actions": tf.stack([s["action"] for s in steps[:-1]], axis=1)}

    def _backbone_step(self, images, targets, phase):
        """Plays an episode with `phase.policy`, then one task-loss step of the backbone."""
        variables = self.backbone_variables

        def predict(patches, boxes, mask):
            enc = self.encoder(patches, boxes, mask)
            return self.task_impl.predict(self.task_head, enc["tokens"], mask, training=True)

        with tf.GradientTape() as tape:
            if phase.policy in ("random", "grid"):  # glimpses independent of what was seen
                out = self._blind_episode(images, targets, phase.policy, phase.first_actions,
                                          training=True, predictions=predict)
                predictions = out["predictions"]
            else:
                with tape.stop_recording():
                    out = self._episode(images, targets, mode="sample", training=True,
                                        policy=phase.policy, first_actions=phase.first_actions)
                predictions = predict(*out["final_inputs"])
            per_example = self.task_impl.loss(predictions, images, targets)
            loss = reduce_loss(per_example)
        grads = optimizers.gradients(tape, loss, variables, self.optimizer)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._update_metrics(per_example, predictions, targets, out)

    # How `_rl_step` runs (the same transitions, updates and losses in every case):
    # "loop" (default): one tf.while_loop over the glimpse steps (`_rl_step_loop`);
    # "unrolled": a Python loop over `_steps`, one graph copy of the SAC update per
    # glimpse step and iteration -- always used under a tf.distribute strategy,
    # whose gradient all-reduce (a merge_call) cannot sit inside a while_loop;
    # "reference": the previous implementation, kept to test and benchmark the
    # others against: unrolled, the plain network calls and
    # `objectives.sac.sac_update` (no shared critic trunk, no `fast` CNN).
    rl_step_impl = "loop"

    def _rl_step(self, images, targets):
        """One game per batch. Between two glimpse steps (before the next action
        is sampled) the transition `(s_{t-1}, a_{t-1}, r_t, s_t, t == T)`
        enters the replay buffer and `rl_iters_per_step` SAC updates run."""
        if self.replay_buffer is None:
            self._make_replay_buffer()
        if self.rl_step_impl not in ("loop", "unrolled", "reference"):
            raise ValueError("`rl_step_impl` must be 'loop', 'unrolled' or 'reference'; "
                             f"received {self.rl_step_impl!r}.")
        if self.rl_step_impl == "loop" and not tf.distribute.has_strategy():
            return self._rl_step_loop(images, targets)
        return self._rl_step_unrolled(images, targets,
                                      reference=self.rl_step_impl == "reference")

    def _rl_step_unrolled(self, images, targets, reference=False):
        """`_rl_step` as a Python loop over the `_steps` generator (unrolled in the graph)."""
        update = self._reference_sac_update if reference else self.sac_update
        random_until = self.rl_steps < self.init_random_steps
        steps = []
        for step in self._steps(images, targets, mode="sample", training=True,
                                random_until=random_until, fast=not reference):
            if steps:
                transition = self._transition(steps[-1], step)
                self.replay_buffer.add(transition)
                for _ in range(self.rl_iters_per_step):
                    metrics = update(self.replay_buffer.sample(self.rl_batch_size))
                for k in ("critic_loss", "actor_loss", "alpha", "q"):
                    self._trackers[k].update_state(metrics[k])
                self._trackers["reward"].update_state(transition["reward"])
            if step["action"] is not None:
                self.rl_steps.assign_add(1)
            steps.append(step)
        out = self._episode_output(steps)
        per_example = self.task_impl.loss(out["predictions"], images, targets)
        return self._update_metrics(per_example, out["predictions"], targets, out)

    def _rl_step_loop(self, images, targets):
        """`_rl_step` as one `tf.while_loop`, traced once.

        The same operations as `_rl_step_unrolled` (every random draw in the
        same order), pipelined so that the encoder never waits for the SAC
        updates: iteration `i = 0..T+1` takes glimpse `t = i - 1` (for
        `1 <= i <= T`: samples action `t` from state `t` and writes the glimpse
        into slots `[t g^2, (t+1) g^2)` of the fixed-size token buffer), then
        stores transition `t-1 -> t` and runs its SAC updates (for `i >= 2`; a
        `tf.while_loop` over `rl_iters_per_step`), while the encoder reads the
        buffer (state, prediction and score `S_i`; it needs none of the
        updated agent weights, so the two run concurrently). Action `t` is
        sampled before the updates of transition `t-1 -> t`, as in the
        unrolled step. The first state (an empty buffer, the same for every
        image) is encoded for one image and repeated; so is the unused
        encoding at `i = T + 1`.
        """
        b = tf.shape(images)[0]
        g2, p = self.grid_size**2, self.patch_size
        c = self.image_shape[2]
        T = self.num_glimpses
        random_until = self.rl_steps < self.init_random_steps
        slots = tf.range(T * g2) // g2  # the glimpse that fills each token slot

        def zeros(spec):
            return tf.zeros(tf.concat([[b], spec.shape], 0), spec.dtype)

        def act(t, state, patches, boxes, mask):
            uniform = keras.random.uniform([b, 3], seed=self.seed_generator)
            action = self.actor(state, mode="sample", fast=True)["action"]
            action = tf.stop_gradient(tf.where(random_until, uniform, action))
            new_patches, new_boxes = self.sensor(images, action)
            fill = tf.equal(slots, t)
            patches = tf.where(fill[None, :, None, None, None],
                               tf.tile(new_patches, [1, T, 1, 1, 1]), patches)
            boxes = tf.where(fill[None, :, None], tf.tile(new_boxes, [1, T, 1]), boxes)
            mask = tf.where(fill[None, :], tf.zeros_like(mask), mask)
            self.rl_steps.assign_add(1)
            return action, patches, boxes, mask

        def learn(t, prev, step):
            transition = self._transition(prev, step)
            self.replay_buffer.add(transition)
            metrics = self._sac_updates()
            for k in ("critic_loss", "actor_loss", "alpha", "q"):
                self._trackers[k].update_state(metrics[k])
            self._trackers["reward"].update_state(transition["reward"])
            return tf.constant(0)

        batch = images.shape[0]

        def encode(i, patches, boxes, mask):
            n = tf.where(tf.logical_or(tf.equal(i, 0), tf.equal(i, T + 1)), 1, b)
            predictions, state = self._encode(patches[:n], boxes[:n], mask[:n], training=False)
            predictions, state = tf.nest.map_structure(
                # (a gather, not tf.repeat: XLA cannot tile by a dynamic count)
                lambda x: tf.ensure_shape(tf.gather(x, tf.range(b) % n), [batch, *x.shape[1:]]),
                (predictions, state))
            return predictions, state, self.task_impl.score(predictions, images, targets, True)

        def body(i, patches, boxes, mask, cur, prev, predictions_ta, scores_ta):
            carried = (patches, boxes, mask, cur, prev)
            t = i - 1
            action, patches, boxes, mask = tf.cond(
                tf.logical_and(i >= 1, i <= T),
                lambda: act(t, cur["state"], patches, boxes, mask),
                lambda: (tf.zeros([b, 3]), patches, boxes, mask))
            tf.cond(i >= 2, lambda: learn(t, prev, {**cur, "t": t}), lambda: tf.constant(0))
            predictions, state, score = encode(i, patches, boxes, mask)
            predictions_shape.append(predictions.shape)
            carry = (patches, boxes, mask, {"state": state, "score": score},
                     {**cur, "action": action})
            carry = tf.nest.map_structure(lambda new, old: tf.ensure_shape(new, old.shape),
                                          carry, carried)
            return (i + 1, *carry, predictions_ta.write(i, predictions),
                    scores_ta.write(i, score))

        predictions_shape = []  # static, read while tracing the body
        state0 = {"state": tf.nest.map_structure(zeros, self.observation_spec()),
                  "score": tf.zeros([b])}
        init = (tf.constant(0), tf.zeros([b, T * g2, p, p, c]), tf.zeros([b, T * g2, 4]),
                tf.ones([b, T * g2]), state0, {**state0, "action": tf.zeros([b, 3])},
                tf.TensorArray(tf.float32, size=T + 2, element_shape=None),  # predictions
                tf.TensorArray(tf.float32, size=T + 2))
        out = tf.while_loop(lambda i, *_: i <= T + 1, body, init, maximum_iterations=T + 2)
        predictions = tf.ensure_shape(out[6].read(T), predictions_shape[-1])
        out = {"predictions": predictions, "scores": tf.transpose(out[7].stack()[:T + 1]),
               "num_glimpses": tf.fill([b], float(T))}
        per_example = self.task_impl.loss(predictions, images, targets)
        return self._update_metrics(per_example, predictions, targets, out)

    def _sac_updates(self):
        """`rl_iters_per_step` SAC updates on fresh replay batches (a while_loop
        when more than one); the last one's metrics."""
        def update():
            return self.sac_update(self.replay_buffer.sample(self.rl_batch_size))

        if self.rl_iters_per_step == 1:
            return update()
        keys = ("critic_loss", "actor_loss", "alpha", "q")

        def body(i, metrics):
            metrics = update()
            return i + 1, {k: metrics[k] for k in keys}

        init = {k: tf.constant(0.0) for k in keys}
        return tf.while_loop(lambda i, _: i < self.rl_iters_per_step, body, (tf.constant(0), init),
                             maximum_iterations=self.rl_iters_per_step)[1]

    def _transition(self, prev, step):
        """The replay transition from step record `prev` (t - 1) to `step` (t)."""
        scores = tf.stack([prev["score"], step["score"]], 1)
        reward = rewards_from_scores(scores, self.reward_type)[:, 0]
        terminated = tf.cast(tf.equal(step["t"], self.num_glimpses), reward.dtype)
        return {"observation": prev["state"], "action": prev["action"], "reward": reward,
                "next_observation": step["state"],
                "terminated": tf.fill(tf.shape(reward), terminated)}

    def sac_update(self, batch):
        """One SAC iteration on a replay batch (`objectives.sac`): an actor step,
        a twin-critic step, a temperature step, then the Polyak target update.

        The same iteration as `objectives.sac.sac_update`, with each critic's
        trunk on `s` computed once: the actor step values the policy's
        actions with it, the critic step (after the actor's update, which
        leaves the critics unchanged) the replayed ones. The networks skip the
        CNN on empty slots (`GlimpseActorCritic(fast=True)`).
        """
        obs, nxt = batch["observation"], batch["next_observation"]
        critics = (self.critic1, self.critic2)
        targets = (self.target_critic1, self.target_critic2)
        actor_variables, critic_variables = self.actor.trainable_variables, self.critic_variables
        alpha = tf.exp(tf.convert_to_tensor(self.log_alpha))
        with tf.GradientTape(persistent=True) as tape:
            pi = self.actor(obs, mode="sample", fast=True)
            pooled = [critic.pooled_state(obs, fast=True) for critic in critics]
            q_pi = [critic.from_pooled(h, pi["action"]) for critic, h in zip(critics, pooled)]
            actor_loss = reduce_loss(sac.actor_loss(pi["log_prob"], *q_pi, alpha))
            q1, q2 = [critic.from_pooled(h, batch["action"]) for critic, h in zip(critics, pooled)]
            with tape.stop_recording():
                grads = optimizers.gradients(tape, actor_loss, actor_variables,
                                             self.actor_optimizer)
                self.actor_optimizer.apply_gradients(zip(grads, actor_variables))
                # The TD target: next actions from the updated actor, target critics.
                next_pi = self.actor(nxt, mode="sample", fast=True)
                next_action = tf.stop_gradient(next_pi["action"])
                tq1, tq2 = [target(nxt, next_action, fast=True) for target in targets]
                y = sac.td_target(batch["reward"], tq1, tq2,
                                  tf.stop_gradient(next_pi["log_prob"]), alpha,
                                  batch["terminated"], self.gamma, self.reward_scale)
            critic_loss = reduce_loss(sac.critic_loss(q1, q2, y))
        grads = optimizers.gradients(tape, critic_loss, critic_variables,
                                     self.critic_optimizer)
        del tape
        self.critic_optimizer.apply_gradients(zip(grads, critic_variables))
        target_entropy = -3.0 if self.target_entropy is None else float(self.target_entropy)
        alpha_loss = sac.temperature_step(self.log_alpha, pi["log_prob"], target_entropy,
                                          self.alpha_optimizer)
        sac.polyak_update(self.target_critic1.weights + self.target_critic2.weights,
                          critic_variables, self.tau)
        return {"actor_loss": actor_loss, "critic_loss": critic_loss,
                "alpha_loss": alpha_loss, "alpha": tf.exp(tf.convert_to_tensor(self.log_alpha)),
                "q": reduce_loss(tf.minimum(q1, q2)), "target": reduce_loss(y),
                "log_prob": reduce_loss(tf.stop_gradient(pi["log_prob"]))}

    def _reference_sac_update(self, batch):
        """`objectives.sac.sac_update` on the model's networks (`rl_step_impl="reference"`)."""
        return sac.sac_update(
            batch, self.actor, (self.critic1, self.critic2),
            (self.target_critic1, self.target_critic2), self.log_alpha,
            {"actor": self.actor_optimizer, "critic": self.critic_optimizer,
             "alpha": self.alpha_optimizer},
            gamma=self.gamma, tau=self.tau,
            target_entropy=-3.0 if self.target_entropy is None else float(self.target_entropy),
            reward_scale=self.reward_scale)

    def _update_metrics(self, per_example, predictions, targets, out):
        self._trackers["loss"].update_state(per_example)
        self._trackers["score"].update_state(out["scores"][:, -1])
        self.task_impl.update_metrics(self._trackers, predictions, targets, out)
        return {k: m.result() for k, m in self._trackers.items()}

    def selection_metric(self):
        return self.task_impl.selection_metric

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        """Validation and test: the greedy actor's episode; in the pretrain
        stage (no trained actor yet) the glimpses it trains on, a whole-image
        glimpse then random ones, so that its checkpoint is selected on the
        distribution it learns (an untrained actor's near-constant glimpses
        would select for those)."""
        images, targets = self.unpack(data)
        if self.stage == "pretrain":
            phase = PHASES["pretrain"]
            out = self._blind_episode(images, targets, phase.policy, phase.first_actions,
                                      training=False)
        else:
            out = self._episode(images, targets, mode="greedy", training=False,
                                early_stop=self._early_stop(training=False))
        per_example = self.task_impl.loss(out["predictions"], images, targets)
        return self._update_metrics(per_example, out["predictions"], targets, out)

    # ------------------------------------------------------------ evaluation helpers
    def score_batch(self, batch, rollout):
        """Per-image final-step score of `evaluate_policy` (see `summarize_scores`)."""
        x, y = batch[0], batch[1]
        out = rollout(tf.cast(x, tf.float32), targets=y)
        return self.task_impl.batch_scores(out, y)

    def evaluate_image_dependence(self, dataset, steps=None):
        """The greedy policy against its own average: `action_spread`, the
        standard deviation across images of each glimpse's action `(x, y,
        scale)` in [0, 1], averaged over glimpses and coordinates (0: one fixed
        sequence), and the task metric of that average sequence replayed on
        every image (`<metric>_mean_sequence_policy`, e.g.
        `accuracy_mean_sequence_policy`): a policy that looks where the object
        is beats its own average."""
        def actions(batch):
            out = self._episode(tf.cast(batch[0], tf.float32), batch[1], mode="greedy")
            return {"actions": out["actions"]}

        taken = self.evaluation_loop(dataset, actions, steps)["actions"]  # (N, T, 3)
        mean = taken.mean(axis=0).tolist()

        def replay(batch):
            out = self._episode(tf.cast(batch[0], tf.float32), batch[1], mode="greedy",
                                first_actions=mean)
            return self.task_impl.batch_scores(out, batch[1])

        fixed = self.summarize_scores(self.evaluation_loop(dataset, replay, steps))
        result = {"action_spread": float(taken.std(axis=0).mean())}
        result.update({f"{k}_mean_sequence_policy": float(v) for k, v in fixed.items()
                       if k != "count"})
        return result

    def summarize_scores(self, scores):
        """Final-step task metric of a policy (`evaluate_policy`; policies
        `"learned"`, `"random"`, `"grid"`): the task's `summarize` (RMSE on
        0..255, accuracy and `avg_glimpses`, or pixel accuracy) and `count`.
        Per-example scores (`per_example=True`) come in dataset order."""
        result = self.task_impl.summarize(scores)
        result["count"] = len(scores.get("score", ()))
        return result

    _config_keys = (
        "task", "num_classes", "num_glimpses", "grid_size", "patch_size",
        "max_glimpse_size_ratio", "backbone_size", "decoder_dim", "decoder_depth",
        "decoder_heads", "hidden_units", "gamma", "tau", "target_entropy", "initial_alpha",
        "replay_capacity", "rl_batch_size", "init_random_steps", "freeze_backbone_epochs",
        "backbone_training", "reward_type", "reward_scale", "rl_iters_per_step",
        "early_stop_threshold", "exclude_rl_inputs", "pixel_mean", "pixel_std", "stage", "seed")

    def get_config(self):
        config = super().get_config()
        config.pop("prediction_type", None)
        config.update({k: getattr(self, k) for k in self._config_keys})
        config["exclude_rl_inputs"] = list(self.exclude_rl_inputs)
        return config


__all__ = ["AdaGlimpse", "PHASES", "phase_of_epoch", "reconstruction_score",
           "rewards_from_scores", "STATE_PARTS"]
