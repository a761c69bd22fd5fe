"""The base class every keras_glimpse method model derives from."""

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import optimizers

# The one policy vocabulary of `rollout(..., policy=...)` and `evaluate_policy`.
# Every method supports a subset (`GlimpseModel.supported_policies`):
# "learned" is the trained policy, "random" uniform random glimpses / actions,
# "center" always the image centre, "grid" a fixed lattice of glimpses.
POLICIES = ("learned", "random", "center", "grid")
# Older names, still accepted: AdaGlimpse called its learned policy "actor".
POLICY_ALIASES = {"actor": "learned"}


def resolve_policy(policy, supported, default="learned", owner="This model"):
    """Maps `policy` (`None` -> `default`, aliases -> canonical) and checks it.

    Raises:
        ValueError: naming the policies `owner` supports.
    """
    name = default if policy is None else POLICY_ALIASES.get(policy, policy)
    if name not in supported:
        raise ValueError(
            f"`policy` must be one of {tuple(supported)} for {owner} (the shared "
            f"vocabulary is {POLICIES}); received policy={policy!r}.")
    return name


def _correct(logits, labels):
    """`(B,)` int32, 1 where the arg-max class of `logits` is the label."""
    pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.cast(pred == tf.cast(labels, tf.int32), tf.int32)


def _accuracy_summary(scores):
    correct = int(np.sum(scores.get("score", np.zeros((0,), np.int32))))
    total = scores["count"]
    acc = correct / max(total, 1)
    return {"accuracy": acc, "error": 100.0 * (1.0 - acc), "count": total}


def _batch_size(batch):
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(tf.shape(x)[0])


class EpochHook(keras.callbacks.Callback):
    """Calls `model.begin_epoch(epoch, epochs)` at the start of every epoch.

    `GlimpseModel.fit` adds it, so epoch-dependent schedules (entropy decay,
    curricula, alternating training phases) work the same from `fit`, from
    the apps and after `BackupAndRestore` resumes a run.
    """

    def __init__(self, epochs):
        super().__init__()
        self.epochs = int(epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.begin_epoch(int(epoch), self.epochs)


@keras.saving.register_keras_serializable(package="keras_glimpse")
class GlimpseModel(keras.Model):
    """Base class of active-vision models: a rollout API shared by all methods.

    A method model composes a sensor, an encoder, a core and heads, and owns
    its `train_step`. This base fixes the contract that the apps, the export
    path and the visualisations rely on, so that they work for every method:

    - `rollout(images, mode, training)` runs one episode on a batch and
      returns a dict of tensors. It always holds `"predictions"` (class logits
      for classifiers, images for reconstruction, per-pixel logits for
      segmentation) and the glimpse trajectory under the names listed in
      `trajectory_keys` (e.g. `"locations"` (B, T, 2), `"boxes"` (B, T, 4),
      `"patch_mask"` (B, G, G)). `mode` is `"greedy"` (deterministic: mean or
      arg-max action) or `"sample"` (stochastic policy). `policy` names who
      chooses the glimpses, from the one vocabulary `POLICIES` (`None`: the
      model's default, `"learned"` unless configured otherwise); a method
      accepts the names in its `supported_policies` and raises a `ValueError`
      naming them for any other.
    - `evaluate_policy(dataset, policy, mode, steps)` is the one dataset
      evaluation loop: it plays `rollout` on every batch, asks the method's
      `score_batch` hook for per-example scores (or per-batch `*_sum`
      totals) and its `summarize_scores` hook for the result dict.
    - `call(images)` returns the greedy predictions.
    - `export_outputs(images, mode, num_samples)` is what the SavedModel
      endpoints call. In `"sample"` mode it runs `num_samples` stochastic
      rollouts and averages them (`aggregate_samples`), returning the
      trajectories of every rollout with a leading sample axis.

    Subclasses set `self.image_shape` (H, W, C) in their constructor and
    override `rollout` (required), `aggregate_samples` and
    `compile_from_preset` (optional).

    Args:
        image_shape: (H, W, C) of the input images.
        prediction_type: `"classification"`, `"reconstruction"` or
            `"segmentation"`; decides how Monte Carlo samples are averaged.
    """

    trajectory_keys = ()
    supported_policies = ("learned",)
    # Policies the test evaluation (`training.evaluate_model`: apps.train,
    # apps.reproduce) scores beside the learned one with these same weights,
    # through `evaluate_policy`: `<metric>_<policy>_policy` in the metrics (the
    # same-budget baselines a reproduce check can bound the learned policy by).
    evaluation_baselines = ()
    # Stage hand-off (keras_glimpse.stages): `{part: (attribute, ...)}` a later
    # stage may copy from an earlier one, the stage names (`.weights.h5`
    # sources are tried in these), and constructor arguments older versions
    # loaded checkpoints with (`{old name: part}`; see `from_config`).
    stage_parts = {}
    stage_names = ()
    legacy_init_args = {}

    def __init__(self, image_shape, prediction_type="classification", **kwargs):
        legacy = sorted(set(kwargs) & set(self.legacy_init_args))
        if legacy:
            raise TypeError(
                f"{type(self).__name__} no longer loads earlier stages in its constructor "
                f"(received {', '.join(legacy)}=...). Build it, then call keras_glimpse.stages."
                f"init_from(model, PATH, parts={[self.legacy_init_args[k] for k in legacy]}), "
                "or train with apps.train --init_from=PATH.")
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) <= 0:
            raise ValueError(
                f"`image_shape` must be (height, width, channels) with positive "
                f"entries; received image_shape={image_shape}."
            )
        if prediction_type not in ("classification", "reconstruction", "segmentation"):
            raise ValueError(
                "`prediction_type` must be 'classification', 'reconstruction' or "
                f"'segmentation'; received prediction_type={prediction_type!r}."
            )
        self.image_shape = image_shape
        self.prediction_type = prediction_type

    def init_parts(self):
        """The parts (keys of `stage_parts`) this model's stage takes from the
        previous stage's model when training starts with `init_from`."""
        return ()

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Checkpoints saved before the stage hand-off moved to keras_glimpse.stages
        # name the earlier stages' files in their config; the archive's own
        # weights follow, so those paths are ignored (never re-read).
        config = dict(config)
        for key in cls.legacy_init_args:
            value = config.pop(key, None)
            if value is not None:
                import warnings

                warnings.warn(
                    f"{cls.__name__}: ignoring {key}={value!r} of a checkpoint saved by an older "
                    "keras_glimpse (earlier stages are now loaded once by "
                    "keras_glimpse.stages.init_from, never on restore).", stacklevel=2)
        return super().from_config(config, custom_objects=custom_objects)

    # ---------------------------------------------------------------- input
    NON_FINITE_MESSAGE = ("images contain NaN or Inf; feed finite float32 pixels as the "
                          "preset's data pipeline makes them")

    def check_finite(self, images):
        """`images` unchanged, or an error when any pixel is NaN or Inf:
        ValueError when eager, InvalidArgumentError with the same message in a
        graph (the SavedModel's `serve`/`sample`)."""
        if tf.executing_eagerly():
            if not bool(tf.reduce_all(tf.math.is_finite(images))):
                raise ValueError(f"{type(self).__name__}: {self.NON_FINITE_MESSAGE}.")
            return images
        return tf.debugging.assert_all_finite(images, self.NON_FINITE_MESSAGE)

    def check_images(self, images):
        """Validates a batch of images against `image_shape`; returns a float tensor."""
        if not hasattr(images, "shape"):
            images = tf.convert_to_tensor(images)
        shape = tf.TensorShape(images.shape)  # numpy arrays have tuple shapes
        if shape.rank is not None and shape.rank != 4:
            raise ValueError(
                f"{type(self).__name__} expects a batch of images of shape "
                f"(batch, {', '.join(map(str, self.image_shape))}); received an "
                f"input of rank {shape.rank} with shape {tuple(shape)}. Add a batch "
                "axis (images[None]) or a channel axis (images[..., None])."
            )
        if shape.rank == 4:
            got = tuple(shape[1:])
            for g, e, what in zip(got, self.image_shape, ("height", "width", "channels")):
                if g is not None and g != e:
                    raise ValueError(
                        f"{type(self).__name__} was built for images of shape "
                        f"{self.image_shape}; received {tuple(shape)} ({what} {g} != {e}). "
                        "Resize the images or build the model with a matching image_shape."
                    )
        return tf.cast(images, self.compute_dtype)

    def unpack(self, data):
        """`(images, targets)` of a `fit`/`evaluate` batch (`images` checked by
        `check_images`; `targets` None for an images-only batch)."""
        if isinstance(data, (tuple, list)):
            return self.check_images(data[0]), (data[1] if len(data) > 1 else None)
        return self.check_images(data), None

    def build_from_image_shape(self, batch_size=2):
        """Creates all variables by running one greedy rollout on zeros."""
        if not self.built:
            self(tf.zeros((batch_size,) + self.image_shape))
        return self

    # ---------------------------------------------------------------- API
    @property
    def default_policy(self):
        """The policy `rollout(policy=None)` uses."""
        return "learned"

    def resolve_policy(self, policy=None):
        """`policy` in canonical form (`None` -> `default_policy`, `"actor"` ->
        `"learned"`); a `ValueError` naming `supported_policies` otherwise."""
        return resolve_policy(policy, self.supported_policies, self.default_policy,
                              type(self).__name__)

    def rollout(self, images, mode="greedy", training=False, policy=None):
        raise NotImplementedError(
            f"{type(self).__name__} must implement rollout(images, mode, training, policy)."
        )

    def call(self, images, training=False):
        images = self.check_images(images)
        if not training:  # inference input is the user's: refuse NaN/Inf pixels
            images = self.check_finite(images)
        return self.rollout(images, mode="greedy", training=training)["predictions"]

    def aggregate_samples(self, predictions):
        """Averages predictions stacked on a leading Monte Carlo axis (M, B, ...)."""
        if self.prediction_type == "classification":
            return tf.reduce_mean(tf.nn.log_softmax(predictions, axis=-1), axis=0)
        if self.prediction_type == "segmentation":
            return tf.reduce_mean(tf.nn.log_softmax(predictions, axis=-1), axis=0)
        return tf.reduce_mean(predictions, axis=0)

    def export_outputs(self, images, mode="greedy", num_samples=1):
        """Tensors returned by the SavedModel endpoints (see `keras_glimpse.export`)."""
        images = self.check_finite(self.check_images(images))
        if mode == "greedy":
            out = self.rollout(images, mode="greedy", training=False)
            return {k: out[k] for k in ("predictions",) + tuple(self.trajectory_keys)}
        batch = tf.shape(images)[0]
        tiled = tf.tile(images, [num_samples, 1, 1, 1])
        out = self.rollout(tiled, mode="sample", training=False)

        def unstack(t):
            rest = tf.shape(t)[1:]
            return tf.reshape(t, tf.concat([[num_samples, batch], rest], axis=0))

        result = {"predictions": self.aggregate_samples(unstack(out["predictions"]))}
        for k in self.trajectory_keys:
            result[k] = unstack(out[k])
        return result

    # Models whose `rollout` takes `stop_threshold` (keras_glimpse.early_exit);
    # their export gains a `serve_early_exit(images, stop_threshold)` endpoint.
    supports_early_exit = False

    def export_early_exit(self, images, stop_threshold):
        """Tensors of the `serve_early_exit` endpoint: the greedy rollout that
        stops each image once its top class probability reaches
        `stop_threshold`, with `glimpses_used` per image."""
        images = self.check_finite(self.check_images(images))
        tf.debugging.assert_greater(stop_threshold, 0.0, "stop_threshold must be in (0, 1]")
        tf.debugging.assert_less_equal(stop_threshold, 1.0, "stop_threshold must be in (0, 1]")
        out = self.rollout(images, mode="greedy", training=False, stop_threshold=stop_threshold)
        return {k: out[k] for k in ("predictions", "glimpses_used") + tuple(self.trajectory_keys)}

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None,
               num_samples=10, **kwargs):
        """Keras' `model.export`, with the glimpse trajectory.

        For `format="tf_saved_model"` (the default) this writes the same
        SavedModel as `keras_glimpse.export.export_saved_model`: a `serve`
        (greedy, also `serving_default`) and a `sample` (`num_samples`
        Monte Carlo rollouts) endpoint, each returning `predictions` and the
        trajectory (`trajectory_keys`). Other formats go to Keras.
        """
        if format == "tf_saved_model":
            if input_signature is not None or kwargs:
                raise ValueError(
                    "GlimpseModel.export takes no input_signature or backend options for "
                    "format='tf_saved_model': its endpoints take (batch, "
                    f"{', '.join(map(str, self.image_shape))}) float32 images.")
            from keras_glimpse import export as export_lib

            return export_lib.export_saved_model(self, filepath, num_samples=num_samples,
                                                overwrite=True)
        return super().export(filepath, format=format, verbose=verbose,
                              input_signature=input_signature, **kwargs)

    # ---------------------------------------------------------------- evaluation
    def evaluation_loop(self, dataset, score_fn, steps=None):
        """The one dataset loop of every evaluation helper.

        Runs `score_fn(batch)` (compiled with `tf.function`) on the first
        `steps` batches of `dataset`. Entries of its dict whose key ends in
        `_sum` are per-batch totals, added up in float64; the others are
        per-example arrays (leading batch axis), concatenated in dataset order.

        Returns:
            dict of numpy arrays, plus `count`, the number of examples read.
        """
        fn = tf.function(score_fn)
        per_example, sums, count = {}, {}, 0
        for i, batch in enumerate(dataset):
            if steps is not None and i >= steps:
                break
            for k, v in fn(batch).items():
                if k.endswith("_sum"):
                    sums[k] = sums.get(k, 0.0) + np.asarray(v, np.float64)
                else:
                    per_example.setdefault(k, []).append(np.asarray(v))
            count += _batch_size(batch)
        result = {k: np.concatenate(v) for k, v in per_example.items()}
        result.update(sums)
        result["count"] = count
        return result

    def score_batch(self, batch, rollout):
        """Scorer hook of `evaluate_policy` (runs inside a `tf.function`).

        Args:
            batch: one element of the dataset, e.g. `(images, labels)`.
            rollout: `rollout(images, **kwargs)`, this model's `rollout` with
                the evaluated `mode` and `policy` bound.

        Returns:
            dict of per-example tensors (concatenated over the dataset) and of
            per-batch totals under keys ending in `_sum` (added up); the
            per-example entry `"score"` is what `per_example=True` returns.
            The default, for classifiers, scores 1 for a correct greedy class.
        """
        x, y = batch[0], batch[1]
        return {"score": _correct(rollout(self.check_images(x))["predictions"], y)}

    def summarize_scores(self, scores):
        """Summary hook of `evaluate_policy`: the `evaluation_loop` dict -> result.

        The default, for classifiers: `accuracy`, `error` (in %) and `count`.
        """
        return _accuracy_summary(scores)

    def evaluate_policy(self, dataset, policy=None, mode="greedy", steps=None,
                        per_example=False, **options):
        """Task metrics of these weights when glimpsing with `policy` on a dataset.

        Args:
            dataset: yields batches (e.g. `(images, labels)`).
            policy: a name of `POLICIES` this method supports (`None`: the
                model's default policy).
            mode: `"greedy"` or `"sample"`.
            steps: optional number of batches.
            per_example: also return `per_example`, the per-example `"score"`
                of `score_batch` as a numpy array in dataset order.
            **options: forwarded to the method's `summarize_scores` (e.g. the
                ordinal localiser's IoU `threshold`).

        Returns:
            dict from the method's `summarize_scores` (classifiers:
            `accuracy`, `error` in % and `count`).
        """
        if mode not in ("greedy", "sample"):
            raise ValueError(f"`mode` must be 'greedy' or 'sample'; received mode={mode!r}.")
        policy = self.resolve_policy(policy)

        def rollout(images, **kwargs):
            return self.rollout(images, mode=mode, training=False, policy=policy, **kwargs)

        scores = self.evaluation_loop(dataset, lambda b: self.score_batch(b, rollout), steps)
        result = self.summarize_scores(scores, **options)
        if per_example:
            result["per_example"] = scores.get("score", np.zeros((0,), np.float32))
        return result

    def evaluate_image_dependence(self, dataset, steps=None):
        """How much the learned policy's glimpses depend on the image (the test
        evaluation reports it beside the task metric): a method whose greedy
        policy can be replayed as one fixed sequence returns its spread across
        images and the task metric of that fixed sequence; `{}` here."""
        del dataset, steps
        return {}

    def evaluate_monte_carlo(self, dataset, num_samples=10, steps=None):
        """Accuracy of Monte Carlo averaged predictions (classifiers only).

        Args:
            dataset: yields `(images, labels)`.
            num_samples: M rollouts averaged per image (M=1 is one sampled rollout).
            steps: optional number of batches.

        Returns:
            dict with `accuracy` and `error` (in %), over the whole dataset.
        """
        if self.prediction_type != "classification":
            raise ValueError("evaluate_monte_carlo is for classification models.")

        def score(batch):
            logits = self.export_outputs(batch[0], "sample", num_samples)["predictions"]
            return {"score": _correct(logits, batch[1])}

        return _accuracy_summary(self.evaluation_loop(dataset, score, steps))

    def selection_metric(self):
        """`(name, mode)` of the `test_step` metric that model selection uses:
        `apps.train` monitors `val_<name>` (computed under the deterministic
        policy), keeps `best.keras` at its best value and drives the plateau
        schedule and early stopping with it. `mode` is `"max"` or `"min"`.
        Methods override this with their task metric (the default, the loss,
        is a last resort: for RL methods it mixes task and policy terms)."""
        return "loss", "min"

    def begin_epoch(self, epoch, epochs):
        """Hook called at the start of every `fit` epoch (0-based `epoch` of
        `epochs`). Override for epoch-dependent schedules; the default does
        nothing."""

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            *args, **kwargs):
        """`keras.Model.fit`, plus an `EpochHook` that calls `begin_epoch`."""
        callbacks = list(callbacks or [])
        if not any(isinstance(c, EpochHook) for c in callbacks):
            callbacks.insert(0, EpochHook(epochs))
        if not args and isinstance(x, tf.data.Dataset):
            # A dataset carries its own shuffling; Keras warns on its default shuffle=True.
            kwargs.setdefault("shuffle", False)
        return super().fit(x, y, batch_size, epochs, verbose, callbacks, *args, **kwargs)

    def compile_from_preset(self, training):
        """Compiles with the preset's `training` table. Subclasses with several
        optimizers override this (see `keras_glimpse.optimizers`)."""
        self.compile(optimizer=optimizers.make_optimizer(training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"image_shape": list(self.image_shape), "prediction_type": self.prediction_type}
        )
        return config
