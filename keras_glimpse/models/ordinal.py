"""Localization by ordinal embedding: a box-moving agent rewarded in embedding space."""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import optimizers
from keras_glimpse.fused_adam import FusedAdam
from keras_glimpse.layers.box_embedding import BoxEmbedding
from keras_glimpse.layers.categorical_head import CategoricalHead
from keras_glimpse.layers.recurrent_core import RecurrentCore
from keras_glimpse.models.glimpse_model import GlimpseModel
from keras_glimpse.objectives import box_dynamics, reinforce, triplet
from keras_glimpse.objectives import ordinal as ordinal_objectives
from keras_glimpse.validation import positive_int

STAGES = ("pretrain", "joint")
LOSS_REDUCTIONS = ("sum", "mean")


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package="keras_glimpse")
class OrdinalLocalizer(GlimpseModel):
    """Localises one object by moving a box to minimise an ordinal-embedding distance.

    Two networks (Li et al. 2021, spec §1):

    - a box embedding (`BoxEmbedding`: linear conv backbone, ROI-Align 5x5,
      MLP to 512-d) trained with an ordinal triplet loss, so that boxes with a
      higher IoU with the ground truth embed closer to the ground-truth box;
    - an agent: a 48-unit ReLU RNN (`RecurrentCore`) reading the embedding of
      its current box and a `CategoricalHead` over 10 box actions (shrink
      toward a corner or the centre, stay, move; `objectives/box_dynamics`).
      Episodes start from the whole image (`[0, 0, 84, 84]`, first ROI
      `[0, 0, 83, 83]`) and last `num_steps` = 10 steps.

    Stages (`stage`):

    - `"pretrain"`: embedding only. Per image, two random squares are drawn
      (`triplet.sample_ordinal_boxes`) and `triplet.ordinal_triplet_loss`
      (anchor = ground-truth box, margin 60) is averaged over the global
      batch; SGD with momentum 0.9 (lr 0.0019125, batch 192 in the preset).
    - `"joint"`: per batch, (1) the ground-truth embedding keeps gradients;
      (2) one sampled episode is run on the stop-gradient backbone map, with
      dropout active as the reference; the reward is the decrease of the
      embedding distance to the ground truth, `r_t = d_{t-1} - d_t`; (3) the
      agent takes an Adam step on REINFORCE with discounted returns
      (gamma 0.99), a per-step batch-mean baseline (global over replicas) and
      an entropy bonus (weight 5); (4) two distinct boxes of each trajectory
      get a triplet loss against the ground-truth embedding and the embedding
      takes an SGD step. The two losses touch disjoint variable groups
      (`agent_variables`, `embedding_variables`), each with its own optimizer.

    Agent loss reduction. The reference sums `q_t - 5 H_t` over batch and
    time. With `loss_reduction="sum"` (default) each example contributes
    `l_b = sum_t (-log pi(a_t) A_t - w H_t)`; the loss on a replica is
    `compute_average_loss(l_b) * global_batch = sum_{b in replica} l_b`, and
    the gradients summed over replicas equal the gradient of the reference's
    global sum. `"mean"` divides by the global batch instead (the same
    direction, a 1/B step size for Adam's purposes; Adam is nearly invariant
    to it except through epsilon).

    Predictions are the final boxes `(B, 4)` `(x1, y1, x2, y2)` float32, and
    the trajectory key `"boxes"` is `(B, T + 1, 4)` (initial ROI and one box
    per step). `aggregate_samples` of the Monte Carlo `sample` endpoint
    returns the **first** rollout's final box, not a mean (a mean of boxes is
    not a box the agent visited); all rollouts stay available under `boxes`.

    Args:
        image_shape: `(84, 84, 1)`; square images.
        stage: `"pretrain"` or `"joint"` (what `train_step` does).
        num_steps: episode length T (10).
        hidden_units: RNN units (48).
        embedding_dim: embedding width (512).
        fc_units: hidden dense width of the embedding head (1024).
        dropout: embedding dropout rate (0.5).
        pooling_size: ROI-Align bins per side (5).
        margin: triplet margin (60).
        gamma: discount of the agent's returns (0.99).
        entropy_weight: entropy bonus weight (5).
        loss_reduction: `"sum"` (reference) or `"mean"` for the agent loss.
        min_side: minimum box side (28).
        step_factor: shrink / move fraction (0.2).
        seed: int or None; seeds the policy, dropout and box sampling.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> from keras_glimpse.models.ordinal import OrdinalLocalizer
    >>> model = OrdinalLocalizer(stage="joint", num_steps=3, seed=0)
    >>> out = model.rollout(tf.zeros((2, 84, 84, 1)), mode="greedy")
    >>> out["predictions"].shape, out["boxes"].shape
    (TensorShape([2, 4]), TensorShape([2, 4, 4]))

    Reference:
        Li, Han, Min, Metaxas. Localization by ordinal embedding (2021),
        github.com/litingfeng/Localization-by-OrdEmbed (March 2021 code).
    """

    trajectory_keys = ("boxes",)
    supported_policies = ("learned", "random")  # random: uniform over the 10 box actions

    def __init__(self, image_shape=(84, 84, 1), stage="joint", num_steps=10, hidden_units=48,
                 embedding_dim=512, fc_units=1024, dropout=0.5, pooling_size=5, margin=60.0,
                 gamma=0.99, entropy_weight=5.0, loss_reduction="sum", min_side=28,
                 step_factor=0.2, seed=None, **kwargs):
        kwargs.pop("prediction_type", None)
        super().__init__(image_shape=image_shape, prediction_type="reconstruction", **kwargs)
        if stage not in STAGES:
            raise ValueError(f"`stage` must be one of {STAGES}; received stage={stage!r}.")
        if self.image_shape[0] != self.image_shape[1]:
            raise ValueError(f"`image_shape` must be square; received image_shape={image_shape}.")
        for name, value in (("num_steps", num_steps), ("hidden_units", hidden_units),
                            ("min_side", min_side)):
            positive_int(name, value)
        if min_side > self.image_shape[0]:
            raise ValueError(f"`min_side` must be <= the image side; received min_side={min_side}.")
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"`loss_reduction` must be one of {LOSS_REDUCTIONS}; received "
                             f"loss_reduction={loss_reduction!r}.")
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"`gamma` must be in [0, 1]; received gamma={gamma!r}.")
        if float(margin) < 0 or float(entropy_weight) < 0:
            raise ValueError(f"`margin` and `entropy_weight` must be >= 0; received "
                             f"margin={margin!r}, entropy_weight={entropy_weight!r}.")
        if not 0.0 < float(step_factor) < 1.0:
            raise ValueError(f"`step_factor` must be in (0, 1); received step_factor={step_factor!r}.")
        self.stage = stage
        # The stage's train / test step, bound once (`stage` stays a config key).
        self._stage_train_step, self._stage_test_step = {
            "pretrain": (self._pretrain_train_step, self._pretrain_test_step),
            "joint": (self._joint_train_step, self._joint_test_step)}[stage]
        self.num_steps = num_steps
        self.hidden_units = hidden_units
        self.embedding_dim = embedding_dim
        self.fc_units = fc_units
        self.dropout = dropout
        self.pooling_size = pooling_size
        self.margin = float(margin)
        self.gamma = float(gamma)
        self.entropy_weight = float(entropy_weight)
        self.loss_reduction = loss_reduction
        self.min_side = min_side
        self.step_factor = float(step_factor)
        self.seed = seed
        size = self.image_shape[0]
        feature = ((((size - 5) // 2 + 1) - 3) // 2 + 1) - 4  # 15 for 84x84
        self.embedding = BoxEmbedding(embedding_dim, fc_units, dropout, pooling_size,
                                      spatial_scale=feature / size, seed=seed, name="embedding")
        self.core = RecurrentCore(hidden_units, cell_type="rnn", name="core")
        self.policy = CategoricalHead(box_dynamics.NUM_ACTIONS, seed=seed, name="policy")
        self.sampler_seed = keras.random.SeedGenerator(seed, name="box_sampler")
        self.agent_optimizer = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.agent_loss_tracker = keras.metrics.Mean(name="agent_loss")
        self.reward_tracker = keras.metrics.Mean(name="reward")
        self.loc_acc_tracker = keras.metrics.Mean(name="loc_acc")
        self.loc_acc_greedy_tracker = keras.metrics.Mean(name="loc_acc_greedy")
        # Evaluation only, same images and steps: uniformly random box actions,
        # and the starting box left where it is.
        self.loc_acc_random_tracker = keras.metrics.Mean(name="loc_acc_random")
        self.loc_acc_initial_tracker = keras.metrics.Mean(name="loc_acc_initial")
        self.iou_tracker = keras.metrics.Mean(name="final_iou")
        self.ord_inst_tracker = keras.metrics.Mean(name="ord_acc_inst")
        self.ord_proto_tracker = keras.metrics.Mean(name="ord_acc_proto")
        self._build_parts()

    # The joint stage starts from the pretrain stage's embedding
    # (keras_glimpse.stages.init_from; apps.train --stage=joint --init_from=DIR).
    stage_parts = {"embedding": ("embedding",)}
    stage_names = STAGES
    legacy_init_args = {"pretrained": "embedding"}

    def init_parts(self):
        return ("embedding",) if self.stage == "joint" else ()

    # ------------------------------------------------------------ building
    def _build_parts(self):
        shape = (None,) + self.image_shape
        self.embedding.build(shape)
        self.core.build((None, self.embedding_dim))
        self.policy.build((None, self.hidden_units))
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    @property
    def embedding_variables(self):
        return self.embedding.trainable_variables

    @property
    def agent_variables(self):
        return self.core.trainable_variables + self.policy.trainable_variables

    @property
    def metrics(self):
        if self.stage == "pretrain":
            return [self.loss_tracker, self.ord_inst_tracker, self.ord_proto_tracker]
        return [self.loss_tracker, self.agent_loss_tracker, self.reward_tracker,
                self.loc_acc_tracker, self.loc_acc_greedy_tracker, self.iou_tracker,
                self.ord_inst_tracker, self.ord_proto_tracker, self.loc_acc_random_tracker,
                self.loc_acc_initial_tracker]

    # ------------------------------------------------------------ episode
    def _embed_one(self, fmap, boxes, training):
        boxes = tf.cast(boxes, tf.float32)[:, None, :]
        return self.embedding.embed_boxes(fmap, boxes, training=training)[:, 0]

    def _random_head(self, batch):
        n = box_dynamics.NUM_ACTIONS
        u = keras.random.uniform(tf.stack([batch]), seed=self.sampler_seed)
        action = tf.minimum(tf.cast(tf.floor(u * n), tf.int32), n - 1)
        log_n = tf.fill(tf.stack([batch]), float(np.log(n)))
        return {"action": action, "log_prob": -log_n, "entropy": log_n}

    def _episode(self, fmap, mode, training, anchor=None, policy="learned"):
        """One episode on a (stop-gradient) backbone map."""
        size = self.image_shape[0]
        batch = tf.shape(fmap)[0]
        state = box_dynamics.initial_state(batch, size)
        roi = box_dynamics.initial_roi(batch, size)
        h = self.core.get_initial_state(batch)
        e = tf.stop_gradient(self._embed_one(fmap, roi, training))
        boxes, actions, log_probs, entropies, dists = [roi], [], [], [], []
        if anchor is not None:
            dists.append(triplet.pairwise_distance(anchor, e))
        for _ in range(self.num_steps):
            out, h = self.core(e, h)
            head = self.policy(out, mode=mode) if policy == "learned" else self._random_head(batch)
            state = box_dynamics.apply_box_action(state, head["action"], size, self.min_side,
                                                  self.step_factor)
            e = tf.stop_gradient(self._embed_one(fmap, state, training))
            boxes.append(state)
            actions.append(head["action"])
            log_probs.append(head["log_prob"])
            entropies.append(head["entropy"])
            if anchor is not None:
                dists.append(triplet.pairwise_distance(anchor, e))
        boxes = tf.cast(tf.stack(boxes, axis=1), tf.float32)
        result = {
            "predictions": boxes[:, -1],
            "boxes": boxes,
            "actions": tf.stack(actions, axis=1),
            "log_probs": tf.stack(log_probs, axis=1),
            "entropies": tf.stack(entropies, axis=1),
        }
        if anchor is not None:
            result["distances"] = tf.stack(dists, axis=1)
        return result

    def rollout(self, images, mode="greedy", training=False, policy=None):
        policy = self.resolve_policy(policy)
        images = self.check_images(images)
        fmap = tf.stop_gradient(self.embedding.feature_map(images))
        out = self._episode(fmap, mode, training, policy=policy)
        return {k: out[k] for k in ("predictions", "boxes", "actions")}

    def aggregate_samples(self, predictions):
        """The first Monte Carlo rollout's final box (see the class docstring)."""
        return predictions[0]

    # ------------------------------------------------------------ training
    def compile(self, optimizer=None, agent_optimizer=None, **kwargs):
        """`optimizer` trains the embedding (default SGD, momentum 0.9, lr
        0.0019125 in `"pretrain"` and 1e-3 in `"joint"`), `agent_optimizer`
        the agent (default Adam 1e-3)."""
        if optimizer is None:
            lr = 0.0019125313967198946 if self.stage == "pretrain" else 1e-3
            optimizer = keras.optimizers.SGD(lr, momentum=0.9)
        if agent_optimizer is None:
            agent_optimizer = FusedAdam(1e-3)
        super().compile(optimizer=optimizer, **kwargs)
        self.agent_optimizer = optimizers.loss_scaled(agent_optimizer, self)
        self.optimizer.build(self.embedding_variables)
        self.agent_optimizer.build(self.agent_variables)

    def compile_from_preset(self, training):
        """Builds both optimizers from a preset's `training` table.

        Keys: `learning_rate`, `momentum` (embedding SGD); `agent_learning_rate`
        (agent Adam); step schedules as the reference's per-epoch schedulers:
        `lr_decay_epochs` / `lr_decay_factor` (embedding) and
        `agent_lr_decay_epochs` / `agent_lr_decay_factor` (agent), converted to
        optimizer steps with `optimizers.epoch_steps`: `steps_per_epoch`, else
        `train_examples // batch_size` (ordinal_clutter's training split drops
        its last partial batch); no schedule when neither is given.
        """
        training = dict(training)
        training.setdefault("batch_size", 1)
        make = functools.partial(optimizers.make_optimizer, training)
        default_lr = 0.0019125313967198946 if self.stage == "pretrain" else 1e-3
        self.compile(optimizer=make(optimizer="sgd", learning_rate=default_lr),
                     agent_optimizer=make("agent_", learning_rate=1e-3))

    def _global_batch(self, x):
        return tf.shape(x)[0] * _num_replicas()

    def _update_ordinal(self, anchor, e_i, e_j, iou_i, iou_j):
        self.ord_inst_tracker.update_state(
            triplet.ordinal_accuracy(anchor, e_i, e_j, iou_i, iou_j))
        self.ord_proto_tracker.update_state(
            triplet.ordinal_accuracy(anchor, e_i, e_j, iou_i, iou_j, prototype=True))

    def _pretrain_losses(self, images, gt, training):
        boxes, ious = triplet.sample_ordinal_boxes(
            gt, seed=self.sampler_seed, image_size=self.image_shape[0], min_side=self.min_side)
        all_boxes = tf.concat([gt[:, None, :], boxes], axis=1)  # (B, 3, 4)
        emb = self.embedding(images, all_boxes, training=training)
        per_example = triplet.ordinal_triplet_loss(emb[:, 0], emb[:, 1], emb[:, 2],
                                                   ious[:, 0], ious[:, 1], self.margin)
        return per_example, (emb[:, 0], emb[:, 1], emb[:, 2], ious[:, 0], ious[:, 1])

    def _pair_indices(self, batch):
        t1 = self.num_steps + 1
        u = keras.random.uniform(tf.stack([batch, 2]), seed=self.sampler_seed)
        i = tf.minimum(tf.cast(tf.floor(u[:, 0] * t1), tf.int32), t1 - 1)
        j = tf.minimum(tf.cast(tf.floor(u[:, 1] * (t1 - 1)), tf.int32), t1 - 2)
        j = j + tf.cast(j >= i, tf.int32)  # distinct from i
        return tf.stack([i, j], axis=1)

    def _agent_loss(self, episode, x):
        """`objectives.ordinal.agent_loss`, reduced over the global batch (sum or mean)."""
        terms = ordinal_objectives.agent_loss(episode["log_probs"], episode["entropies"],
                                              episode["distances"], self.gamma,
                                              self.entropy_weight)
        global_batch = self._global_batch(x)
        loss = reinforce.reduce_loss(terms["loss"], global_batch_size=global_batch)
        if self.loss_reduction == "sum":
            loss = loss * tf.cast(global_batch, loss.dtype)
        return loss, terms["rewards"]

    def train_step(self, data):
        x, gt = data[0], tf.cast(data[1], tf.float32)
        return self._stage_train_step(self.check_images(x), gt)

    def _pretrain_train_step(self, x, gt):
        with tf.GradientTape() as tape:
            per_example, ordinal = self._pretrain_losses(x, gt, training=True)
            loss = reinforce.reduce_loss(per_example, global_batch_size=self._global_batch(x))
        grads = optimizers.gradients(tape, loss, self.embedding_variables, self.optimizer)
        self.optimizer.apply_gradients(zip(grads, self.embedding_variables))
        self.loss_tracker.update_state(per_example)
        self._update_ordinal(*ordinal)
        return {m.name: m.result() for m in self.metrics}

    def _joint_train_step(self, x, gt):
        agent_vars = self.agent_variables
        with tf.GradientTape() as emb_tape:
            fmap = self.embedding.feature_map(x)
            e_gt = self._embed_one(fmap, gt, training=True)
            with emb_tape.stop_recording():
                with tf.GradientTape(watch_accessed_variables=False) as agent_tape:
                    agent_tape.watch([v.value for v in agent_vars])
                    episode = self._episode(tf.stop_gradient(fmap), "sample", training=True,
                                            anchor=tf.stop_gradient(e_gt))
                    agent_loss, rewards = self._agent_loss(episode, x)
            pair = self._pair_indices(tf.shape(x)[0])
            pair_boxes = tf.gather(episode["boxes"], pair, axis=1, batch_dims=1)  # (B, 2, 4)
            pair_ious = box_dynamics.box_iou(pair_boxes, gt[:, None, :])
            e_pair = self.embedding.embed_boxes(fmap, pair_boxes, training=True)
            per_example = triplet.ordinal_triplet_loss(e_gt, e_pair[:, 0], e_pair[:, 1],
                                                       pair_ious[:, 0], pair_ious[:, 1],
                                                       self.margin)
            emb_loss = reinforce.reduce_loss(per_example, global_batch_size=self._global_batch(x))
        agent_grads = optimizers.gradients(agent_tape, agent_loss, agent_vars,
                                          self.agent_optimizer)
        self.agent_optimizer.apply_gradients(zip(agent_grads, agent_vars))
        emb_grads = optimizers.gradients(emb_tape, emb_loss, self.embedding_variables,
                                        self.optimizer)
        self.optimizer.apply_gradients(zip(emb_grads, self.embedding_variables))

        final_iou = box_dynamics.box_iou(episode["predictions"], gt)
        self.loss_tracker.update_state(per_example)
        self.agent_loss_tracker.update_state(agent_loss)
        self.reward_tracker.update_state(tf.reduce_sum(rewards, axis=1))
        self.loc_acc_tracker.update_state(tf.cast(final_iou >= 0.5, tf.float32))
        self.iou_tracker.update_state(final_iou)
        self._update_ordinal(e_gt, e_pair[:, 0], e_pair[:, 1], pair_ious[:, 0], pair_ious[:, 1])
        evaluation_only = ("loc_acc_greedy", "loc_acc_random", "loc_acc_initial")
        return {m.name: m.result() for m in self.metrics if m.name not in evaluation_only}

    def selection_metric(self):
        if self.stage == "pretrain":
            return "ord_acc_inst", "max"
        return "loc_acc_greedy", "max"

    def test_step(self, data):
        x, gt = data[0], tf.cast(data[1], tf.float32)
        return self._stage_test_step(self.check_images(x), gt)

    def _pretrain_test_step(self, x, gt):
        per_example, ordinal = self._pretrain_losses(x, gt, training=False)
        self.loss_tracker.update_state(per_example)
        self._update_ordinal(*ordinal)
        return {m.name: m.result() for m in self.metrics}

    def _joint_test_step(self, x, gt):
        fmap = self.embedding.feature_map(x)
        e_gt = self._embed_one(fmap, gt, training=False)
        episode = self._episode(fmap, "sample", training=False, anchor=e_gt)
        greedy = self._episode(fmap, "greedy", training=False)
        pair = self._pair_indices(tf.shape(x)[0])
        pair_boxes = tf.gather(episode["boxes"], pair, axis=1, batch_dims=1)
        pair_ious = box_dynamics.box_iou(pair_boxes, gt[:, None, :])
        e_pair = self.embedding.embed_boxes(fmap, pair_boxes, training=False)
        per_example = triplet.ordinal_triplet_loss(e_gt, e_pair[:, 0], e_pair[:, 1],
                                                   pair_ious[:, 0], pair_ious[:, 1], self.margin)
        d = episode["distances"]
        final_iou = box_dynamics.box_iou(episode["predictions"], gt)
        greedy_iou = box_dynamics.box_iou(greedy["predictions"], gt)
        self.loss_tracker.update_state(per_example)
        self.reward_tracker.update_state(d[:, 0] - d[:, -1])
        self.loc_acc_tracker.update_state(tf.cast(final_iou >= 0.5, tf.float32))
        self.loc_acc_greedy_tracker.update_state(tf.cast(greedy_iou >= 0.5, tf.float32))
        random = self._episode(fmap, "sample", training=False, policy="random")
        for tracker, boxes in ((self.loc_acc_random_tracker, random["predictions"]),
                               (self.loc_acc_initial_tracker, random["boxes"][:, 0])):
            tracker.update_state(tf.cast(box_dynamics.box_iou(boxes, gt) >= 0.5, tf.float32))
        self.iou_tracker.update_state(final_iou)
        self._update_ordinal(e_gt, e_pair[:, 0], e_pair[:, 1], pair_ious[:, 0], pair_ious[:, 1])
        return {m.name: m.result() for m in self.metrics if m is not self.agent_loss_tracker}

    # ------------------------------------------------------------ evaluation
    def score_batch(self, batch, rollout):
        """Per-example IoU of the final box with the ground-truth box."""
        x, boxes = batch[0], batch[1]
        return {"score": box_dynamics.box_iou(rollout(x)["predictions"], boxes)}

    def summarize_scores(self, scores, threshold=0.5):
        """`accuracy` (% with IoU >= `threshold`), `mean_iou` and `count`."""
        ious = scores.get("score", np.zeros((0,), np.float32))
        return {"accuracy": 100.0 * float(np.mean(ious >= threshold)) if len(ious) else 0.0,
                "mean_iou": float(np.mean(ious)) if len(ious) else 0.0,
                "count": int(len(ious))}

    def evaluate_localization(self, dataset, mode="sample", steps=None, threshold=0.5,
                              policy=None):
        """Localisation accuracy: % of images whose final box has IoU >= `threshold`.

        Args:
            dataset: yields `(images, boxes)` (e.g. `ordinal_clutter` test split,
                for the training digit or with `other_digits=True`).
            mode: `"sample"` (the reference's protocol) or `"greedy"`.
            steps: optional number of batches.
            threshold: IoU threshold (0.5).
            policy: `"learned"` (default) or `"random"`.

        Returns:
            dict with `accuracy` (%), `mean_iou` and `count`.
        """
        return self.evaluate_policy(dataset, policy=policy, mode=mode, steps=steps,
                                    threshold=threshold)

    def evaluate_ordinal(self, dataset, steps=None):
        """Ordinal accuracy (%) of the embedding on freshly sampled box pairs."""
        def score(batch):
            args = self._pretrain_losses(self.check_images(batch[0]),
                                         tf.cast(batch[1], tf.float32), training=False)[1]
            return {"inst": triplet.ordinal_accuracy(*args),
                    "proto": triplet.ordinal_accuracy(*args, prototype=True)}

        scores = self.evaluation_loop(dataset, score, steps)
        return {"ord_acc_inst": 100.0 * float(np.mean(scores["inst"])),
                "ord_acc_proto": 100.0 * float(np.mean(scores["proto"])),
                "count": int(len(scores["inst"]))}

    # ------------------------------------------------------------ config
    def _constructor_args(self):
        return {
            "image_shape": list(self.image_shape),
            "stage": self.stage,
            "num_steps": self.num_steps,
            "hidden_units": self.hidden_units,
            "embedding_dim": self.embedding_dim,
            "fc_units": self.fc_units,
            "dropout": self.dropout,
            "pooling_size": self.pooling_size,
            "margin": self.margin,
            "gamma": self.gamma,
            "entropy_weight": self.entropy_weight,
            "loss_reduction": self.loss_reduction,
            "min_side": self.min_side,
            "step_factor": self.step_factor,
            "seed": self.seed,
        }

    def get_config(self):
        config = keras.Model.get_config(self)
        config = {k: v for k, v in config.items() if k in ("name", "trainable", "dtype")}
        config.update(self._constructor_args())
        return config
