"""AdaGlimpse: glimpses of arbitrary position and scale chosen by Soft Actor-Critic."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse.backbones.elastic_vit import VIT_SIZES, ElasticViT
from keras_glimpse.layers.elastic_glimpse import ElasticGlimpse
from keras_glimpse.layers.glimpse_actor_critic import STATE_PARTS, GlimpseActorCritic
from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder
from keras_glimpse.layers.segmentation_decoder import (
    IGNORE_LABEL, SegmentationDecoder, segmentation_cross_entropy)
from keras_glimpse.models.glimpse_model import GlimpseModel
from keras_glimpse.objectives import sac
from keras_glimpse.objectives.reinforce import reduce_loss
from keras_glimpse.objectives.replay_buffer import ReplayBuffer
from keras_glimpse.validation import number, positive_int

TASKS = {"reconstruction": "reconstruction", "classification": "classification",
         "segmentation": "segmentation"}
STAGES = ("rl", "pretrain")
BACKBONE_TRAINING = ("alternating", "rl_only", "backbone_only")
POLICIES = ("actor", "random", "grid")


def reconstruction_score(predictions, images, pixel_mean=0.0, pixel_std=1.0):
    """Per-image `-RMSE` on the 0..255 scale (both un-normalised and clipped), `(B,)`."""
    def to_255(x):
        return tf.clip_by_value((x * pixel_std + pixel_mean) * 255.0, 0.0, 255.0)

    err = tf.square(to_255(predictions) - to_255(images))
    return -tf.sqrt(tf.reduce_mean(err, axis=[1, 2, 3]))


def rewards_from_scores(scores, reward_type="diff"):
    """Rewards from the task scores `S_0..S_T` `(B, T+1)` -> `(B, T)`.

    `"diff"`: `r_t = S_t - S_{t-1}` (telescopes to `S_T - S_0`); `"simple"`: `r_t = S_t`.
    """
    if reward_type == "diff":
        return scores[:, 1:] - scores[:, :-1]
    if reward_type == "simple":
        return scores[:, 1:]
    raise ValueError(f"`reward_type` must be 'diff' or 'simple'; received {reward_type!r}.")


class _RootMean(keras.metrics.Mean):
    """sqrt of a running mean (global RMSE over a split)."""

    def result(self):
        return keras.ops.sqrt(super().result())


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
    boxes and the raw patches, and outputs the next glimpse.

    Training (`fit`):
    - `stage="pretrain"`: backbone only, on random elastic glimpses (first a
      whole-image glimpse, then uniform random position and scale) with the
      task loss (reconstruction MSE over every patch, CE, pixel CE).
    - `stage="rl"`: epochs `< freeze_backbone_epochs` train only the agent;
      after that `backbone_training="alternating"` trains the agent in even
      and the backbone in odd epochs. An RL epoch plays each batch as one
      game: after every glimpse step the transition
      `(s_{t-1}, a_{t-1}, r_t = S_t - S_{t-1}, s_t, terminated = t == T)`
      enters an on-device replay buffer and one SAC update runs
      (`objectives.sac.sac_update`). The first `init_random_steps` glimpse
      steps use uniform random actions. A backbone epoch plays the episode
      with the sampled policy and takes one optimizer step on the last-step
      task loss.
    - Evaluation uses the deterministic mean action; optionally a sample stops
      once its max class probability reaches `early_stop_threshold`
      (`avg_glimpses` is reported).

    Documented deviations from the original code: BatchNorm in the agent is
    LayerNorm; the agent's box coordinates are divided by the image size
    (the original feeds raw pixels); the evaluation action is
    `tanh(mu)` instead of the mean of 1000 samples; SAC updates start as soon
    as the replay buffer is not empty (sampling with replacement), instead of
    once it holds `rl_batch_size` transitions; the class count is
    configurable (the original hard-codes 1000); no teacher distillation.

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
        super().__init__(image_shape, prediction_type=TASKS[task], **kwargs)
        if task != "reconstruction" and (not isinstance(num_classes, int) or num_classes < 2):
            raise ValueError(
                f"task={task!r} needs an integer `num_classes` >= 2; received "
                f"num_classes={num_classes!r}.")
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
        self.sensor = ElasticGlimpse(grid_size, patch_size,
                                     max_size_ratio=self.max_glimpse_size_ratio, name="sensor")
        self.encoder = ElasticViT(backbone_size, patch_size=patch_size, name="encoder")
        if task == "reconstruction":
            self.task_head = ReconstructionDecoder(self.image_shape, patch_size, decoder_dim,
                                                   decoder_depth, decoder_heads, name="decoder")
        elif task == "classification":
            self.task_head = keras.layers.Dense(num_classes, name="classifier")
        else:
            self.task_head = SegmentationDecoder(self.image_shape, num_classes, patch_size,
                                                 decoder_dim, decoder_depth, decoder_heads,
                                                 name="decoder")
        seeds = [None] * 3 if seed is None else [seed + 1, seed + 2, seed + 3]
        self.actor = GlimpseActorCritic("actor", hidden_units, action_dim=3,
                                        exclude_inputs=self.exclude_rl_inputs, seed=seeds[0],
                                        name="actor")
        self.critic1 = GlimpseActorCritic("critic", hidden_units,
                                          exclude_inputs=self.exclude_rl_inputs, name="critic1")
        self.critic2 = GlimpseActorCritic("critic", hidden_units,
                                          exclude_inputs=self.exclude_rl_inputs, name="critic2")
        self.target_critic1 = GlimpseActorCritic("critic", hidden_units,
                                                 exclude_inputs=self.exclude_rl_inputs,
                                                 trainable=False, name="target_critic1")
        self.target_critic2 = GlimpseActorCritic("critic", hidden_units,
                                                 exclude_inputs=self.exclude_rl_inputs,
                                                 trainable=False, name="target_critic2")
        self.seed_generator = keras.random.SeedGenerator(seeds[1], name="policy_seed")
        self.replay_buffer = None
        self._make_trackers()

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

    def _predict(self, tokens, mask, training=False):
        if self.task == "classification":
            return self.task_head(tokens[:, 0])
        if self.task == "segmentation":
            return self.task_head(tokens, mask, training=training)
        return self.task_head(tokens, mask)

    def _score(self, predictions, images, targets, training):
        if self.task == "reconstruction":
            mean = 0.0 if self.pixel_mean is None else tf.constant(self.pixel_mean)
            std = 1.0 if self.pixel_std is None else tf.constant(self.pixel_std)
            return reconstruction_score(predictions, images, mean, std)
        if self.task == "classification":
            probs = tf.nn.softmax(predictions, axis=-1)
            if training and targets is not None:
                labels = tf.cast(tf.reshape(targets, [-1]), tf.int32)
                return tf.gather(probs, labels, axis=1, batch_dims=1)
            return tf.reduce_max(probs, axis=-1)
        if targets is None:
            return tf.zeros([tf.shape(images)[0]])
        return -segmentation_cross_entropy(targets, predictions)

    def task_loss(self, predictions, images, targets):
        """Per-example backbone loss `(B,)` (MSE over all pixels / CE / pixel CE)."""
        if self.task == "reconstruction":
            return tf.reduce_mean(tf.square(predictions - images), axis=[1, 2, 3])
        if self.task == "classification":
            labels = tf.cast(tf.reshape(targets, [-1]), tf.int32)
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, predictions)
        return segmentation_cross_entropy(targets, predictions)

    def _encode(self, patches, boxes, mask, training=False):
        enc = self.encoder(patches, boxes, mask, return_importance=True)
        tokens = enc["tokens"]
        predictions = self._predict(tokens, mask, training)
        state = {
            "patches": patches,
            "importance": enc["importance"],
            "coords": self._normalise_coords(boxes),
            "latent": tf.stop_gradient(tokens[:, 1:]),
            "mask": mask[..., None],
        }
        return predictions, state

    def _grid_actions(self, batch):
        """A fixed lattice of glimpses (baseline): k x k positions, tile-sized."""
        k = int(math.ceil(math.sqrt(self.num_glimpses)))
        h, w, _ = self.image_shape
        d_min = float(self.patch_size * self.grid_size)
        d_max = min(h, w) * self.max_glimpse_size_ratio
        side = min(h, w) / k
        scale = 0.0 if d_max <= d_min else float(np.clip((side - d_min) / (d_max - d_min), 0, 1))
        pos = np.linspace(0.0, 1.0, k) if k > 1 else np.array([0.5])
        acts = [(pos[i // k], pos[i % k], scale) for i in range(self.num_glimpses)]
        acts = tf.constant(np.asarray(acts, "float32"))
        return [tf.tile(acts[t][None], [batch, 1]) for t in range(self.num_glimpses)]

    def _episode(self, images, targets=None, mode="greedy", training=False, policy="actor",
                 random_until=None, on_step=None, early_stop=None, return_steps=False,
                 first_actions=None):
        """Plays one episode; `on_step(t, state, score, action_or_None)` hooks in."""
        b = tf.shape(images)[0]
        g2, p = self.grid_size**2, self.patch_size
        c = self.image_shape[2]
        T = self.num_glimpses
        patches_list, boxes_list, mask_list = [], [], []
        glimpse_boxes, scores, step_preds, actions = [], [], [], []
        done = tf.zeros([b], tf.bool)
        taken = tf.zeros([b], tf.float32)
        grid_actions = self._grid_actions(b) if policy == "grid" else None
        state = predictions = None
        for t in range(T + 1):
            n_empty = T - t
            patches = tf.concat(patches_list + [tf.zeros([b, n_empty * g2, p, p, c])], axis=1)
            boxes = tf.concat(boxes_list + [tf.zeros([b, n_empty * g2, 4])], axis=1)
            mask = tf.concat(mask_list + [tf.ones([b, n_empty * g2])], axis=1)
            predictions, state = self._encode(patches, boxes, mask, training=False)
            score = self._score(predictions, images, targets, training)
            scores.append(score)
            if return_steps:
                step_preds.append(predictions)
            if early_stop is not None:
                confidence = tf.reduce_max(tf.nn.softmax(predictions, -1), -1)
                done = tf.logical_or(done, confidence >= early_stop)
            action = None
            if t < T:
                if policy == "grid":
                    action = grid_actions[t]
                elif first_actions is not None and t < len(first_actions):
                    action = tf.tile(tf.constant([first_actions[t]], tf.float32), [b, 1])
                else:
                    uniform = keras.random.uniform([b, 3], seed=self.seed_generator)
                    if policy == "random":
                        action = uniform
                    else:
                        out = self.actor(state, mode="sample" if mode == "sample" else "greedy")
                        action = out["action"]
                        if random_until is not None:
                            action = tf.where(random_until, uniform, action)
                action = tf.stop_gradient(action)
                new_patches, new_boxes = self.sensor(images, action)
                active = tf.cast(tf.logical_not(done), tf.float32)
                taken = taken + active
                patches_list.append(new_patches * active[:, None, None, None, None])
                boxes_list.append(new_boxes * active[:, None, None] - (1.0 - active)[:, None, None])
                mask_list.append(tf.tile(1.0 - active[:, None], [1, g2]))
                glimpse_boxes.append(tf.concat([tf.reduce_min(new_boxes[:, :, :2], 1),
                                                tf.reduce_max(new_boxes[:, :, 2:], 1)], -1))
                actions.append(action)
            if on_step is not None:
                on_step(t, state, score, action)
        out = {
            "predictions": predictions,
            "boxes": tf.stack(glimpse_boxes, axis=1),
            "actions": tf.stack(actions, axis=1),
            "patch_boxes": boxes,
            "mask": mask,
            "scores": tf.stack(scores, axis=1),
            "num_glimpses": taken,
            "final_state": state,
            "final_inputs": (patches, boxes, mask),
        }
        if return_steps:
            out["step_predictions"] = tf.stack(step_preds, axis=0)
        return out

    def rollout(self, images, mode="greedy", training=False, policy="actor", targets=None,
                return_steps=False):
        if mode not in ("greedy", "sample"):
            raise ValueError(f"`mode` must be 'greedy' or 'sample'; received mode={mode!r}.")
        if policy not in POLICIES:
            raise ValueError(f"`policy` must be one of {POLICIES}; received policy={policy!r}.")
        images = tf.cast(images, self.compute_dtype)
        early = self.early_stop_threshold if (
            self.task == "classification" and not training) else None
        out = self._episode(images, targets, mode=mode, training=training, policy=policy,
                            early_stop=early, return_steps=return_steps)
        out.pop("final_state")
        out.pop("final_inputs")
        return out

    # ------------------------------------------------------------ compile
    def compile(self, optimizer=None, actor_optimizer=None, critic_optimizer=None,
                alpha_optimizer=None, **kwargs):
        """Backbone optimizer plus the three SAC optimizers (defaults per the spec)."""
        if not self.built:
            self.build_from_image_shape()
        optimizer = optimizer or keras.optimizers.AdamW(1e-5, weight_decay=1e-4)
        super().compile(optimizer=optimizer, **kwargs)
        self.actor_optimizer = actor_optimizer or keras.optimizers.AdamW(1e-3, weight_decay=0.01)
        self.critic_optimizer = critic_optimizer or keras.optimizers.AdamW(1e-3,
                                                                           weight_decay=0.01)
        self.alpha_optimizer = alpha_optimizer or keras.optimizers.AdamW(1e-3, weight_decay=0.01)
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
        the schedules, `epochs` and `steps_per_epoch` (each batch is T+1 steps).
        """
        lr = float(training.get("learning_rate", 1e-3))
        blr = float(training.get("backbone_learning_rate", 1e-5))
        wd = float(training.get("weight_decay", 0.01))
        bwd = float(training.get("backbone_weight_decay", 1e-4))
        steps = training.get("steps_per_epoch")
        epochs = training.get("epochs")

        def schedule(value, per_batch):
            if not steps or not epochs:
                return value
            total = int(epochs) * int(steps) * per_batch
            # OneCycle with div_factor=1 and final_div_factor=1000: starts at max, cosine decay.
            return keras.optimizers.schedules.CosineDecay(value, max(total, 1), alpha=1e-3)

        per_batch = self.num_glimpses if self.stage == "rl" else 1
        self.compile(
            optimizer=keras.optimizers.AdamW(schedule(blr, 1), weight_decay=bwd),
            actor_optimizer=keras.optimizers.AdamW(schedule(lr, per_batch), weight_decay=wd),
            critic_optimizer=keras.optimizers.AdamW(schedule(lr, per_batch), weight_decay=wd),
            alpha_optimizer=keras.optimizers.AdamW(schedule(lr, per_batch), weight_decay=wd),
        )

    def _make_trackers(self):
        names = ["loss", "score"]
        if self.stage == "rl":
            names += ["reward", "critic_loss", "actor_loss", "alpha", "q"]
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        if self.task == "reconstruction":
            self._trackers["rmse"] = _RootMean(name="rmse")
        elif self.task == "classification":
            self._trackers["accuracy"] = keras.metrics.Mean(name="accuracy")
            self._trackers["avg_glimpses"] = keras.metrics.Mean(name="avg_glimpses")
        else:
            self._trackers["pixel_accuracy"] = keras.metrics.Mean(name="pixel_accuracy")
            self._trackers["miou"] = keras.metrics.MeanIoU(
                self.num_classes, ignore_class=IGNORE_LABEL, sparse_y_true=True,
                sparse_y_pred=True, name="miou")

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
        """`"pretrain"`, `"rl"` or `"backbone"` for `self.current_epoch`."""
        if self.stage == "pretrain":
            return "pretrain"
        if self.backbone_training == "backbone_only":
            return "backbone"
        e = self.current_epoch
        if self.backbone_training == "rl_only" or e < self.freeze_backbone_epochs:
            return "rl"
        return "rl" if (e - self.freeze_backbone_epochs) % 2 == 0 else "backbone"

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

    def _targets(self, data):
        if isinstance(data, (tuple, list)):
            images = data[0]
            targets = data[1] if len(data) > 1 else None
        else:
            images, targets = data, None
        return self.check_images(images), targets

    def train_step(self, data):
        images, targets = self._targets(data)
        phase = getattr(self, "_phase", None) or self.current_phase()
        if phase == "rl":
            return self._rl_step(images, targets)
        return self._backbone_step(images, targets, pretrain=phase == "pretrain")

    def _backbone_step(self, images, targets, pretrain):
        b = tf.shape(images)[0]
        first = [(0.0, 0.0, 1.0)] if pretrain else None
        out = self._episode(images, targets, mode="sample", training=True,
                            policy="random" if pretrain else "actor", first_actions=first)
        patches, boxes, mask = out["final_inputs"]
        variables = self.backbone_variables
        with tf.GradientTape() as tape:
            enc = self.encoder(patches, boxes, mask)
            predictions = self._predict(enc["tokens"], mask, training=True)
            per_example = self.task_loss(predictions, images, targets)
            loss = reduce_loss(per_example)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self._update_task_metrics(predictions, images, targets, out)
        self._trackers["loss"].update_state(per_example)
        self._trackers["score"].update_state(out["scores"][:, -1])
        del b
        return {k: m.result() for k, m in self._trackers.items()}

    def sac_update(self, batch):
        """One SAC iteration on a sampled batch (public for tests and reuse)."""
        target_entropy = -3.0 if self.target_entropy is None else float(self.target_entropy)
        return sac.sac_update(
            batch, self.actor, (self.critic1, self.critic2),
            (self.target_critic1, self.target_critic2), self.log_alpha,
            {"actor": self.actor_optimizer, "critic": self.critic_optimizer,
             "alpha": self.alpha_optimizer},
            gamma=self.gamma, tau=self.tau, target_entropy=target_entropy,
            reward_scale=self.reward_scale)

    def _rl_step(self, images, targets):
        if self.replay_buffer is None:
            self._make_replay_buffer()
        T = self.num_glimpses
        memory = {}
        logs = {}

        def on_step(t, state, score, action):
            if t > 0:
                prev_state, prev_action, prev_score = memory["s"]
                reward = rewards_from_scores(tf.stack([prev_score, score], 1),
                                             self.reward_type)[:, 0]
                term = tf.fill(tf.shape(reward), 1.0 if t == T else 0.0)
                self.replay_buffer.add({
                    "observation": prev_state, "action": prev_action, "reward": reward,
                    "next_observation": state, "terminated": term})
                for _ in range(self.rl_iters_per_step):
                    metrics = self.sac_update(self.replay_buffer.sample(self.rl_batch_size))
                for k in ("critic_loss", "actor_loss", "alpha", "q"):
                    self._trackers[k].update_state(metrics[k])
                self._trackers["reward"].update_state(reward)
            if action is not None:
                memory["s"] = (state, action, score)
                self.rl_steps.assign_add(1)

        random_until = self.rl_steps < self.init_random_steps
        out = self._episode(images, targets, mode="sample", training=True,
                            random_until=random_until, on_step=on_step)
        per_example = self.task_loss(out["predictions"], images, targets)
        self._trackers["loss"].update_state(per_example)
        self._trackers["score"].update_state(out["scores"][:, -1])
        self._update_task_metrics(out["predictions"], images, targets, out)
        logs.update({k: m.result() for k, m in self._trackers.items()})
        return logs

    def _update_task_metrics(self, predictions, images, targets, out):
        if self.task == "reconstruction":
            self._trackers["rmse"].update_state(tf.square(out["scores"][:, -1]))
        elif self.task == "classification":
            labels = tf.cast(tf.reshape(targets, [-1]), tf.int32)
            pred = tf.argmax(predictions, -1, output_type=tf.int32)
            self._trackers["accuracy"].update_state(tf.cast(pred == labels, tf.float32))
            self._trackers["avg_glimpses"].update_state(out["num_glimpses"])
        else:
            labels = tf.cast(targets, tf.int32)
            pred = tf.argmax(predictions, -1, output_type=tf.int32)
            valid = tf.cast(labels != IGNORE_LABEL, tf.float32)
            self._trackers["pixel_accuracy"].update_state(
                tf.cast(pred == labels, tf.float32), sample_weight=valid)
            self._trackers["miou"].update_state(labels, pred)

    def selection_metric(self):
        return {"reconstruction": ("rmse", "min"), "classification": ("accuracy", "max"),
                "segmentation": ("miou", "max")}[self.task]

    def test_step(self, data):
        images, targets = self._targets(data)
        out = self._episode(images, targets, mode="greedy", training=False,
                            early_stop=self.early_stop_threshold
                            if self.task == "classification" else None)
        if targets is None and self.task == "reconstruction":
            targets = images
        per_example = self.task_loss(out["predictions"], images,
                                     images if self.task == "reconstruction" else targets)
        self._trackers["loss"].update_state(per_example)
        self._trackers["score"].update_state(out["scores"][:, -1])
        self._update_task_metrics(out["predictions"], images, targets, out)
        return {k: m.result() for k, m in self._trackers.items()}

    # ------------------------------------------------------------ evaluation helpers
    def evaluate_policy(self, dataset, policy="actor", steps=None, per_example=False):
        """Final-step task metric of `policy` (`actor` greedy, `random`, `grid`) on a dataset.

        Returns a dict with `rmse` (0..255, global over the split) for
        reconstruction, `accuracy` and `avg_glimpses` for classification,
        `pixel_accuracy` for segmentation. With `per_example=True` it also holds
        `per_example`, a NumPy array with one score per image (the final RMSE,
        1.0/0.0 for a correct/wrong class, the pixel accuracy), in dataset order,
        for paired comparisons of two policies on the same images.
        """
        fn = tf.function(lambda x, y: self._episode(
            x, y, mode="greedy", policy=policy,
            early_stop=self.early_stop_threshold if self.task == "classification" else None))
        scores, glimpses, pix, pix_n = [], 0.0, 0.0, 0.0
        for i, (x, y) in enumerate(dataset):
            if steps is not None and i >= steps:
                break
            out = fn(tf.cast(x, tf.float32), y)
            if self.task == "reconstruction":
                score = -out["scores"][:, -1]  # the score is -RMSE per image
            elif self.task == "classification":
                pred = tf.argmax(out["predictions"], -1, output_type=tf.int32)
                score = tf.cast(pred == tf.cast(tf.reshape(y, [-1]), tf.int32), tf.float32)
                glimpses += float(tf.reduce_sum(out["num_glimpses"]))
            else:
                labels = tf.cast(y, tf.int32)
                pred = tf.argmax(out["predictions"], -1, output_type=tf.int32)
                valid = tf.cast(labels != IGNORE_LABEL, tf.float32)
                hits = tf.cast(pred == labels, tf.float32) * valid
                pix += float(tf.reduce_sum(hits))
                pix_n += float(tf.reduce_sum(valid))
                axes = list(range(1, hits.shape.rank))
                score = tf.reduce_sum(hits, axes) / tf.maximum(tf.reduce_sum(valid, axes), 1.0)
            scores.append(score.numpy())
        scores = np.concatenate(scores) if scores else np.zeros((0,), np.float32)
        n = len(scores)
        if self.task == "reconstruction":
            result = {"rmse": math.sqrt(float(np.sum(np.square(scores))) / max(n, 1))}
        elif self.task == "classification":
            result = {"accuracy": float(np.sum(scores)) / max(n, 1),
                      "avg_glimpses": glimpses / max(n, 1)}
        else:  # pooled over all valid pixels, not the mean of the per-image scores
            result = {"pixel_accuracy": pix / max(pix_n, 1.0)}
        result["count"] = n
        if per_example:
            result["per_example"] = scores
        return result

    def get_config(self):
        config = super().get_config()
        config.pop("prediction_type", None)
        config.update(
            task=self.task, num_classes=self.num_classes, num_glimpses=self.num_glimpses,
            grid_size=self.grid_size, patch_size=self.patch_size,
            max_glimpse_size_ratio=self.max_glimpse_size_ratio,
            backbone_size=self.backbone_size, decoder_dim=self.decoder_dim,
            decoder_depth=self.decoder_depth, decoder_heads=self.decoder_heads,
            hidden_units=self.hidden_units, gamma=self.gamma, tau=self.tau,
            target_entropy=self.target_entropy, initial_alpha=self.initial_alpha,
            replay_capacity=self.replay_capacity, rl_batch_size=self.rl_batch_size,
            init_random_steps=self.init_random_steps,
            freeze_backbone_epochs=self.freeze_backbone_epochs,
            backbone_training=self.backbone_training, reward_type=self.reward_type,
            reward_scale=self.reward_scale, rl_iters_per_step=self.rl_iters_per_step,
            early_stop_threshold=self.early_stop_threshold,
            exclude_rl_inputs=list(self.exclude_rl_inputs), pixel_mean=self.pixel_mean,
            pixel_std=self.pixel_std, stage=self.stage, seed=self.seed)
        return config


__all__ = ["AdaGlimpse", "reconstruction_score", "rewards_from_scores", "STATE_PARTS"]
