"""PatchDrop: a policy on a low-resolution view picks which HR patches to acquire."""

import functools
import logging
import re

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import optimizers
from keras_glimpse.backbones.cifar_resnet import CifarResNet
from keras_glimpse.backbones.resnet import ResNet
from keras_glimpse.backbones.sparse_patch_vit import SparsePatchViT
from keras_glimpse.layers.bernoulli_patch_head import BernoulliPatchHead
from keras_glimpse.layers.patch_mask import PatchMask
from keras_glimpse.models.glimpse_model import GlimpseModel
from keras_glimpse.objectives.patchdrop import patchdrop_loss, patchdrop_reward  # noqa: F401
from keras_glimpse.objectives.reinforce import reduce_loss
from keras_glimpse.validation import positive_int

logger = logging.getLogger("keras_glimpse")

STAGES = ("classifier", "pretrain", "finetune", "finetune2stream")
# Same-image comparisons that `test_step` reports beside the greedy policy's
# accuracy in the policy stages (validation and test): the HR classifier on
# every patch (the upper bound), on a random mask keeping as many patches per
# image (the same-budget random policy) and on the batch's most-kept patches
# for every image (the best fixed mask near the policy: how image-dependent
# the policy is).
EVALUATION_BASELINES = ("accuracy_all_patches", "accuracy_random_same_kept",
                        "accuracy_fixed_mask")
_BACKBONE_RE = re.compile(r"^(cifar_resnet|resnet)(\d+)$")


def distinct_policies(actions):
    """Number of distinct 0/1 rows of `actions` `(B, N)` (XLA-friendly: sort-based).

    Rows are encoded as integers over their first 62 patches (exact for
    N <= 62, i.e. grids up to 7x7).
    """
    actions = tf.cast(actions, tf.int64)[:, :62]
    n = actions.shape[-1]
    codes = tf.reduce_sum(actions * tf.bitwise.left_shift(
        tf.ones([n], tf.int64), tf.range(n, dtype=tf.int64)), axis=-1)
    codes = tf.sort(codes)
    changes = tf.cast(tf.not_equal(codes[1:], codes[:-1]), tf.float32)
    return 1.0 + tf.reduce_sum(changes)


def random_mask_like(actions, seed):
    """A uniformly random 0/1 mask per row of `actions` `(B, N)` that keeps as
    many patches as that row does (the same-budget random policy); `seed`: an
    int or a `keras.random.SeedGenerator` (required: an unseeded baseline would
    differ from run to run)."""
    if seed is None:
        raise ValueError("`random_mask_like` needs a `seed` (an int or a "
                         "keras.random.SeedGenerator) so that the random baseline is reproducible.")
    actions = tf.cast(actions, tf.float32)
    kept = tf.reduce_sum(actions, -1, keepdims=True)
    # The ranks of uniform noise are a uniformly random permutation per row.
    noise = keras.random.uniform(tf.shape(actions), seed=seed)
    ranks = tf.argsort(tf.argsort(noise, axis=-1), axis=-1)
    return tf.cast(tf.cast(ranks, tf.float32) < kept, tf.float32)


def fixed_mask_like(actions):
    """One mask for every row of `actions` `(B, N)`: the patches the rows keep
    most often, as many as a row keeps on average (rounded); ties go to the
    lower patch index. The image-independent policy closest to `actions`."""
    actions = tf.cast(actions, tf.float32)
    k = tf.round(tf.reduce_mean(tf.reduce_sum(actions, -1)))
    ranks = tf.argsort(tf.argsort(-tf.reduce_mean(actions, 0), stable=True), stable=True)
    return tf.broadcast_to(tf.cast(tf.cast(ranks, tf.float32) < k, tf.float32), tf.shape(actions))


def _make_backbone(spec, num_classes, input_shape, synchronized_bn, cifar_widths, name,
                   weights=None, grid_size=4):
    if str(spec).startswith("vit_") and num_classes is not None and weights is None:
        # Sparse PatchDrop: a patch-token classifier that computes only the kept patches.
        net = SparsePatchViT(num_classes, input_shape, grid_size=grid_size,
                             size=str(spec)[len("vit_"):], name=name)
        net.build()
        return net
    match = _BACKBONE_RE.match(str(spec))
    if match is None:
        raise ValueError(
            f"Unknown backbone {spec!r}; use 'cifar_resnet<6n+2>' (e.g. cifar_resnet32, "
            "cifar_resnet8), 'resnet<10|18|34|50>' or, for the HR classifier only, "
            "'vit_<tiny|small|base>' (sparse: only the kept patches are computed).")
    family, depth = match.group(1), int(match.group(2))
    if family == "cifar_resnet":
        if weights is not None:
            raise ValueError(f"backbone weights files are supported for resnet50 only; "
                             f"received {weights!r} for {spec!r}.")
        net = CifarResNet(depth=depth, num_classes=num_classes, widths=tuple(cifar_widths),
                          synchronized_bn=synchronized_bn, name=name)
    else:
        net = ResNet(depth=depth, num_classes=num_classes, input_shape=input_shape,
                     weights=weights, synchronized_bn=synchronized_bn, name=name)
    net.build((None,) + tuple(input_shape))
    return net


@keras.saving.register_keras_serializable(package="keras_glimpse")
class PatchDrop(GlimpseModel):
    """PatchDrop: learn which high-resolution patches to acquire (CVPR 2020).

    A policy network sees only the low-resolution view `x[:, ::f, ::f]` and
    outputs an independent Bernoulli probability for each patch of a G x G
    grid. The acquired HR patches are kept, the others are zeroed (the
    dataset mean after normalisation), and an HR classifier classifies the
    result. The reward is `1 - (kept / G^2)^2` when the prediction is
    correct and `penalty` otherwise; the policy is trained by REINFORCE with
    a self-critical baseline, `A = R(sampled) - R(greedy)` (actions and
    advantages are stop-gradient). Exploration is bounded in training
    (`s' = alpha s + (1 - alpha)(1 - s)`, alpha = 0.8); evaluation uses the
    greedy action `1[s >= 0.5]`.

    Training runs in four stages, chosen by `stage`; each stage starts from
    the previous stage's networks through `keras_glimpse.stages.init_from`
    (`apps.train --init_from=<model_dir>`), which copies the parts
    `init_parts()` names (`stage_parts`: `hr_classifier`, `lr_classifier`,
    `policy`) from a PatchDrop with the same networks:

    1. `"classifier"`: supervised training of the HR classifier
       (`resolution="hr"`) or the LR classifier (`resolution="lr"`, on the
       strided LR view). Cross-entropy only.
    2. `"pretrain"`: the policy alone against the frozen HR classifier (run
       with `training=False`, no gradients computed for it); reward penalty
       `pretrain_penalty` (-0.5); the policy-gradient loss is averaged over
       all B x G^2 (image, patch) entries.
    3. `"finetune"`: policy and HR classifier in one optimizer; loss
       `mean_b(-A sum_i log p(a_i)) + CE(HR(mask(a)), y)` on the sampled mask;
       penalty `finetune_penalty` (-10 CIFAR, -20 ImageNet / fMoW).
    4. `"finetune2stream"`: as 3, with the frozen LR classifier's logits on
       the LR view added to the HR logits (reward and CE use the sum).

    With `curriculum=True` (spec A9, the AAAI-era code), during epochs
    e < G^2 only patches 0..e are decided by the policy; the others are
    forced to 1 in the sampled and greedy actions and masked out of the
    policy-gradient loss. The epoch is the model's `curriculum_epoch`
    variable, set at the start of every `fit` epoch by `begin_epoch` (or by
    `set_curriculum_epoch`).

    Networks (spec A4.1): the CVPR release's "R32" CIFAR model is really a
    4-stage ResNet-34-shaped net, and its "R50_ImgNet"/"R34_fMoW" models
    cannot run on 224 px inputs. keras_glimpse builds what the paper and
    README name instead: CIFAR: the genuine ResNet-32 (`CifarResNet`) as HR
    and LR classifier and a ResNet-8 policy on the 8x8 view; ImageNet: a
    ResNet-50 (`keras.applications`) HR/LR classifier; fMoW: a ResNet-34;
    both with a ResNet-18 policy on the 56x56 view.

    Metrics (train and test): `loss`, `accuracy` (greedy policy),
    `patches_kept` (mean S of the greedy policy) and `patches_kept_std`,
    `reward` (of the greedy action), `sample_reward` (training),
    `distinct_policies` (number of distinct greedy policies per batch,
    averaged over the batches of the epoch; per replica under a strategy),
    `kept_fraction` (`patches_kept` / N). Evaluation in the policy stages
    adds, on the same images, `accuracy_all_patches`,
    `accuracy_random_same_kept` and `accuracy_fixed_mask`
    (`EVALUATION_BASELINES`; the fixed mask is estimated per batch).

    Args:
        image_shape: `(H, W, C)` of the HR images; G must divide H and W.
        num_classes: number of classes.
        stage: one of `"classifier"`, `"pretrain"`, `"finetune"`,
            `"finetune2stream"`.
        resolution: `"hr"` or `"lr"`, which classifier the `"classifier"`
            stage trains (and predicts with).
        grid_size: G, patches per side (4 in the paper).
        lr_factor: f, the LR view is `x[:, ::f, ::f]` (4: 32->8, 224->56).
        hr_backbone: `"cifar_resnet32"`, `"resnet34"`, `"resnet50"`, ... or
            `"vit_tiny"` / `"vit_small"`: the sparse variant (`SparsePatchViT`),
            whose classifier embeds and attends to the kept patches only, so
            its cost falls with the patches kept (the ResNets see the
            zero-filled image at full cost).
        lr_backbone: backbone of the LR classifier (default: `hr_backbone`).
        policy_backbone: backbone of the policy (`"cifar_resnet8"`,
            `"resnet18"`, ...).
        cifar_widths: stage widths of `cifar_resnet*` backbones.
        hr_backbone_weights: optional local weights file for a `resnet50`
            HR classifier (keras.applications notop weights).
        alpha: exploration bound (0.8).
        pretrain_penalty: reward of a wrong prediction in stage 2.
        finetune_penalty: reward of a wrong prediction in stages 3 and 4.
        curriculum: enable the patch curriculum (see above).
        synchronized_bn: cross-replica BatchNorm in every network (exact
            equivalence under `MirroredStrategy`; costs an all-reduce per BN).
        seed: seed of the policy's sampler.
        **kwargs: base `keras.Model` arguments.

    Call arguments:
        images: `(B, H, W, C)` normalised HR images.

    Returns:
        `(B, num_classes)` logits of the greedy policy (`rollout` also
        returns `patch_mask` `(B, G, G)`, `actions` and `probs`).

    Example:
    >>> import numpy as np, keras_glimpse
    >>> model = keras_glimpse.build("patchdrop_r32_c10")
    >>> model(np.zeros((2, 32, 32, 3), "float32")).shape
    TensorShape([2, 10])

    Reference:
        Uzkent & Ermon, "Learning When and Where to Zoom With Deep
        Reinforcement Learning", CVPR 2020 (arXiv:2003.00425).
    """

    trajectory_keys = ("patch_mask",)

    def __init__(self, image_shape=(32, 32, 3), num_classes=10, stage="finetune",
                 resolution="hr", grid_size=4, lr_factor=4, hr_backbone="cifar_resnet32",
                 lr_backbone=None, policy_backbone="cifar_resnet8",
                 cifar_widths=(16, 32, 64), hr_backbone_weights=None, alpha=0.8,
                 pretrain_penalty=-0.5, finetune_penalty=-10.0, curriculum=False,
                 synchronized_bn=False, seed=None, **kwargs):
        prediction_type = kwargs.pop("prediction_type", "classification")
        if prediction_type != "classification":
            raise ValueError("PatchDrop is a classifier; received "
                             f"prediction_type={prediction_type!r}.")
        super().__init__(image_shape=image_shape, prediction_type="classification", **kwargs)
        if stage not in STAGES:
            raise ValueError(f"`stage` must be one of {STAGES}; received stage={stage!r}.")
        if resolution not in ("hr", "lr"):
            raise ValueError(f"`resolution` must be 'hr' or 'lr'; received resolution={resolution!r}.")
        for arg, value in (("num_classes", num_classes), ("grid_size", grid_size),
                           ("lr_factor", lr_factor)):
            positive_int(arg, value)
        h, w, _ = self.image_shape
        if h % grid_size or w % grid_size:
            raise ValueError(
                f"`grid_size` must divide the image height and width; received grid_size="
                f"{grid_size} for image_shape={self.image_shape}.")
        if grid_size * grid_size > 62:
            raise ValueError(f"`grid_size` must be <= 7 (at most 62 patches); received "
                             f"grid_size={grid_size}.")
        for arg, value in (("pretrain_penalty", pretrain_penalty),
                           ("finetune_penalty", finetune_penalty)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value > 0:
                raise ValueError(f"`{arg}` must be a number <= 0; received {arg}={value!r}.")
        self.num_classes = num_classes
        self.stage = stage
        # The stage's rollout and train step, bound once (`stage` stays a config key).
        self._stage_rollout = (self._classifier_rollout if stage == "classifier"
                               else self._policy_rollout)
        self._stage_train_step = {
            "classifier": self._classifier_train_step,
            "pretrain": functools.partial(self._policy_train_step, joint=False),
            "finetune": functools.partial(self._policy_train_step, joint=True),
            "finetune2stream": functools.partial(self._policy_train_step, joint=True)}[stage]
        self.resolution = resolution
        self.grid_size = grid_size
        self.lr_factor = lr_factor
        self.hr_backbone = hr_backbone
        self.lr_backbone = lr_backbone
        self.policy_backbone = policy_backbone
        self.cifar_widths = tuple(cifar_widths)
        self.hr_backbone_weights = hr_backbone_weights
        self.alpha = float(alpha)
        self.pretrain_penalty = float(pretrain_penalty)
        self.finetune_penalty = float(finetune_penalty)
        self.curriculum = bool(curriculum)
        self.synchronized_bn = bool(synchronized_bn)
        self.seed = seed
        self.num_patches = grid_size * grid_size

        lr_shape = (-(-h // lr_factor), -(-w // lr_factor), self.image_shape[2])
        self.lr_shape = lr_shape
        self.patch_mask = PatchMask(grid_size=grid_size, lr_factor=lr_factor, name="patch_mask")
        self.patch_mask.build((None,) + self.image_shape)
        self.hr_net = _make_backbone(hr_backbone, num_classes, self.image_shape,
                                     self.synchronized_bn, self.cifar_widths, "hr_classifier",
                                     weights=hr_backbone_weights, grid_size=grid_size)
        self.lr_net = _make_backbone(lr_backbone or hr_backbone, num_classes, lr_shape,
                                     self.synchronized_bn, self.cifar_widths, "lr_classifier")
        self.policy_net = _make_backbone(policy_backbone, None, lr_shape,
                                         self.synchronized_bn, self.cifar_widths,
                                         "policy_backbone")
        self.policy_head = BernoulliPatchHead(self.num_patches, alpha=self.alpha, seed=seed,
                                              name="policy_head")
        self.policy_head.build((None, self.policy_net.output_dim))
        self.curriculum_epoch = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            name="curriculum_epoch")

        # Which networks this stage trains; frozen ones also run BN in inference mode.
        trains = {
            "classifier": {"hr": resolution == "hr", "lr": resolution == "lr", "policy": False},
            "pretrain": {"hr": False, "lr": False, "policy": True},
            "finetune": {"hr": True, "lr": False, "policy": True},
            "finetune2stream": {"hr": True, "lr": False, "policy": True},
        }[stage]
        self.hr_net.trainable = trains["hr"]
        self.lr_net.trainable = trains["lr"]
        self.policy_net.trainable = trains["policy"]
        self.policy_head.trainable = trains["policy"]

        self._trackers = {k: keras.metrics.Mean(name=k) for k in (
            "loss", "accuracy", "patches_kept", "patches_kept_sq", "reward", "sample_reward",
            "distinct_policies") + EVALUATION_BASELINES}
        self.built = True

    # ------------------------------------------------------------- stages
    stage_parts = {"hr_classifier": ("hr_net",), "lr_classifier": ("lr_net",),
                   "policy": ("policy_net", "policy_head")}
    stage_names = STAGES
    legacy_init_args = {"hr_classifier": "hr_classifier", "lr_classifier": "lr_classifier",
                        "policy": "policy"}

    def init_parts(self):
        """classifier (HR): nothing; classifier (LR): the HR classifier (carried
        along); pretrain: both classifiers; finetune*: both and the policy."""
        if self.stage == "classifier":
            return ("hr_classifier",) if self.resolution == "lr" else ()
        if self.stage == "pretrain":
            return ("hr_classifier", "lr_classifier")
        return ("hr_classifier", "lr_classifier", "policy")

    # ------------------------------------------------------------- policy
    def low_resolution(self, images):
        """The low-resolution view the policy sees: `images[:, ::f, ::f]`, f = `lr_factor`."""
        return self.patch_mask.low_resolution(images)

    def set_curriculum_epoch(self, epoch):
        self.curriculum_epoch.assign(int(epoch))

    def begin_epoch(self, epoch, epochs):
        if self.curriculum:
            self.set_curriculum_epoch(epoch)

    def _curriculum_masks(self):
        """(decided (1, N) 0/1 patches the policy decides, or None)."""
        if not self.curriculum:
            return None
        epoch = tf.cast(self.curriculum_epoch, tf.int32)
        return tf.cast(tf.range(self.num_patches)[None, :] <= epoch, tf.float32)

    def _policy(self, lr, mode, training):
        feats = self.policy_net(lr, training=training)
        out = self.policy_head(feats, mode=mode)
        action, greedy = out["action"], out["greedy"]
        decided = self._curriculum_masks()
        if decided is not None:
            action = decided * action + (1.0 - decided)
            greedy = decided * greedy + (1.0 - decided)
            out = dict(out, log_prob_per_patch=out["log_prob_per_patch"] * decided)
        return dict(out, action=tf.stop_gradient(action), greedy=tf.stop_gradient(greedy))

    def _classify(self, images, lr, actions, training):
        if getattr(self.hr_net, "takes_actions", False):  # sparse: only kept patches computed
            logits = self.hr_net(images, actions, training=training)
        else:
            logits = self.hr_net(self.patch_mask(images, actions), training=training)
        if self.stage == "finetune2stream":
            logits = logits + tf.stop_gradient(self.lr_net(lr, training=False))
        return logits

    def classify_masked(self, images, actions):
        """Inference logits of the HR classifier (plus the LR stream in
        `finetune2stream`) on `images` with any 0/1 patch mask `actions`
        `(B, N)`: how a mask other than the policy's is scored."""
        return self._classify(images, self.low_resolution(images), actions, training=False)

    @property
    def penalty(self):
        return self.pretrain_penalty if self.stage in ("classifier", "pretrain") \
            else self.finetune_penalty

    def rollout(self, images, mode="greedy", training=False, policy=None):
        self.resolve_policy(policy)
        return self._stage_rollout(images, mode, training)

    def _classifier_rollout(self, images, mode, training):
        g = self.grid_size
        batch = tf.shape(images)[0]
        if self.resolution == "hr":
            logits = self.hr_net(images, training=training)
            actions = tf.ones([batch, self.num_patches], images.dtype)
        else:
            logits = self.lr_net(self.low_resolution(images), training=training)
            actions = tf.zeros([batch, self.num_patches], images.dtype)
        return {"predictions": logits, "patch_mask": tf.reshape(actions, [-1, g, g]),
                "actions": actions, "probs": actions}

    def _policy_rollout(self, images, mode, training):
        g = self.grid_size
        lr = self.low_resolution(images)
        out = self._policy(lr, mode, training)
        actions = out["action"]
        logits = self._classify(images, lr, actions, training)
        return {"predictions": logits, "patch_mask": tf.reshape(actions, [-1, g, g]),
                "actions": actions, "probs": out["probs"]}

    # ------------------------------------------------------------- training
    @property
    def metrics(self):
        return list(self._trackers.values())

    def _update_metrics(self, loss, logits, labels, actions, sample_reward=None):
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
        kept = tf.reduce_sum(tf.cast(actions, tf.float32), axis=-1)
        t = self._trackers
        t["loss"].update_state(loss)
        t["accuracy"].update_state(tf.cast(correct, tf.float32))
        t["patches_kept"].update_state(kept)
        t["patches_kept_sq"].update_state(tf.square(kept))
        t["reward"].update_state(patchdrop_reward(correct, actions, self.penalty))
        if sample_reward is not None:
            t["sample_reward"].update_state(sample_reward)
        t["distinct_policies"].update_state(distinct_policies(actions))
        return self._logs(training=sample_reward is not None)

    def _logs(self, training):
        t = self._trackers
        mean = t["patches_kept"].result()
        std = tf.sqrt(tf.maximum(t["patches_kept_sq"].result() - tf.square(mean), 0.0))
        logs = {k: t[k].result() for k in ("loss", "accuracy", "patches_kept")}
        logs["patches_kept_std"] = std
        logs["reward"] = t["reward"].result()
        if training and self.stage != "classifier":
            logs["sample_reward"] = t["sample_reward"].result()
        logs["distinct_policies"] = t["distinct_policies"].result()
        logs["kept_fraction"] = mean / float(self.num_patches)
        if not training and self.stage != "classifier":
            logs.update({k: t[k].result() for k in EVALUATION_BASELINES})
        return logs

    def _unpack(self, data):
        images, y = self.unpack(data)
        return images, tf.reshape(tf.cast(y, tf.int32), [-1])

    def _apply(self, tape, loss, variables):
        grads = optimizers.gradients(tape, loss, variables, self.optimizer)
        self.optimizer.apply(grads, variables)

    def train_step(self, data):
        images, labels = self._unpack(data)
        return self._stage_train_step(images, labels)

    def _classifier_train_step(self, images, labels):
        net = self.hr_net if self.resolution == "hr" else self.lr_net
        inputs = images if self.resolution == "hr" else self.low_resolution(images)
        with tf.GradientTape() as tape:
            logits = net(inputs, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
            loss = reduce_loss(per_example)
        self._apply(tape, loss, net.trainable_variables)
        actions = tf.fill([tf.shape(images)[0], self.num_patches],
                          1.0 if self.resolution == "hr" else 0.0)
        return self._update_metrics(tf.reduce_mean(per_example), logits, labels, actions)

    def _policy_train_step(self, images, labels, joint):
        """Stages `"pretrain"` (policy only) and `"finetune*"` (`joint`: policy + HR classifier)."""
        lr = self.low_resolution(images)
        with tf.GradientTape() as tape:
            out = self._policy(lr, "sample", training=True)
            sampled, greedy = out["action"], out["greedy"]
            if joint:
                logits_s = self._classify(images, lr, sampled, training=True)
                logits_g = tf.stop_gradient(self._classify(images, lr, greedy, training=True))
            else:
                with tape.stop_recording():
                    logits_s = self._classify(images, lr, sampled, training=False)
                    logits_g = self._classify(images, lr, greedy, training=False)
            correct_s = tf.equal(tf.argmax(logits_s, -1, output_type=tf.int32), labels)
            correct_g = tf.equal(tf.argmax(logits_g, -1, output_type=tf.int32), labels)
            reward_s = patchdrop_reward(correct_s, sampled, self.penalty)
            reward_g = patchdrop_reward(correct_g, greedy, self.penalty)
            per_example = patchdrop_loss(out["log_prob_per_patch"], reward_s, reward_g,
                                         *((logits_s, labels) if joint else ()))
            loss = reduce_loss(per_example)
        variables = self.policy_net.trainable_variables + self.policy_head.trainable_variables
        if joint:
            variables = variables + self.hr_net.trainable_variables
        self._apply(tape, loss, variables)
        return self._update_metrics(tf.reduce_mean(per_example), logits_g, labels, greedy,
                                    sample_reward=reward_s)

    def selection_metric(self):
        return "accuracy", "max"

    def test_step(self, data):
        images, labels = self._unpack(data)
        out = self.rollout(images, mode="greedy", training=False)
        logits = out["predictions"]
        ce = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        if self.stage != "classifier":
            actions, lr = out["actions"], self.low_resolution(images)
            for key, mask in zip(EVALUATION_BASELINES, (
                    tf.ones_like(actions),
                    random_mask_like(actions, seed=self.policy_head.seed_generator),
                    fixed_mask_like(actions))):
                other = self._classify(images, lr, mask, training=False)
                self._trackers[key].update_state(tf.cast(tf.equal(
                    tf.argmax(other, -1, output_type=tf.int32), labels), tf.float32))
        return self._update_metrics(tf.reduce_mean(ce), logits, labels, out["actions"])

    def compile_from_preset(self, training):
        """Compiles with the (stage-merged) `training` table.

        Keys: `optimizer` (`adam` | `sgd` | `adamw`), `learning_rate`,
        `momentum`, `weight_decay`, and an optional step schedule:
        `lr_decay_epochs` (e.g. [150, 250]), `lr_decay_factor` (0.1) with
        `train_examples` and `batch_size` to turn epochs into steps.
        """
        training = dict(training)
        training.setdefault("batch_size", 128)
        self.compile(optimizer=optimizers.make_optimizer(
            training, default_examples=50000, learning_rate=1e-4))

    # ------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, stage=self.stage, resolution=self.resolution,
            grid_size=self.grid_size, lr_factor=self.lr_factor,
            hr_backbone=self.hr_backbone, lr_backbone=self.lr_backbone,
            policy_backbone=self.policy_backbone, cifar_widths=list(self.cifar_widths),
            hr_backbone_weights=self.hr_backbone_weights, alpha=self.alpha,
            pretrain_penalty=self.pretrain_penalty, finetune_penalty=self.finetune_penalty,
            curriculum=self.curriculum, synchronized_bn=self.synchronized_bn, seed=self.seed)
        return config
