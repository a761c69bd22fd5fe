"""AdaGlimpse's three tasks: one object per task, chosen once by the model.

`AdaGlimpse(task=...)` keeps the task name as its config key and builds
`TASKS[task](...)` in its constructor; everything that differs between
reconstruction, classification and segmentation lives here, behind one small
interface:

- `prediction_type`: how `GlimpseModel` averages Monte Carlo samples (export).
- `make_head(patch_size, dim, depth, heads)`: the task head layer.
- `predict(head, tokens, mask, training)`: predictions from encoder tokens.
- `score(predictions, images, targets, training)`: the per-image task score
  `S_t` `(B,)` whose per-step change is the agent's reward.
- `loss(predictions, images, targets)`: the per-example supervised loss `(B,)`.
- `make_trackers()` / `update_metrics(...)`: the task's `fit`/`evaluate` metrics.
- `selection_metric`: `(name, mode)` for model selection.
- `early_stops`: whether the confidence early stop applies (classification).
- `batch_scores(out, targets)` / `summarize(scores)`: `evaluate_policy`'s
  per-image scores and their totals.

The objects hold only plain settings (no variables): the head they make is
owned, tracked and saved by the model.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import precision
from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder
from keras_glimpse.layers.segmentation_decoder import (
    IGNORE_LABEL, SegmentationDecoder, segmentation_cross_entropy)


def reconstruction_score(predictions, images, pixel_mean=0.0, pixel_std=1.0):
    """Per-image `-RMSE` on the 0..255 scale (both un-normalised and clipped), `(B,)`."""
    def to_255(x):
        return tf.clip_by_value((x * pixel_std + pixel_mean) * 255.0, 0.0, 255.0)

    err = tf.square(to_255(predictions) - to_255(images))
    return -tf.sqrt(tf.reduce_mean(err, axis=[1, 2, 3]))


class _RootMean(keras.metrics.Mean):
    """sqrt of a running mean (global RMSE over a split)."""

    def result(self):
        return keras.ops.sqrt(super().result())


def _labels(targets):
    return tf.cast(tf.reshape(targets, [-1]), tf.int32)


class ReconstructionTask:
    """Image reconstruction: MAE-style decoder, score `-RMSE` on 0..255, MSE loss.

    Args:
        image_shape: `(H, W, C)`.
        num_classes: unused (None).
        pixel_mean, pixel_std: per-channel normalisation of the images (None:
            images are in [0, 1]); the score un-normalises before the RMSE.
    """

    name = "reconstruction"
    prediction_type = "reconstruction"
    selection_metric = ("rmse", "min")
    early_stops = False

    def __init__(self, image_shape, num_classes=None, pixel_mean=None, pixel_std=None):
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.pixel_mean = 0.0 if pixel_mean is None else [float(v) for v in pixel_mean]
        self.pixel_std = 1.0 if pixel_std is None else [float(v) for v in pixel_std]

    def make_head(self, patch_size, dim, depth, heads):
        return ReconstructionDecoder(self.image_shape, patch_size, dim, depth, heads,
                                     name="decoder")

    def predict(self, head, tokens, mask, training=False):
        return head(tokens, mask)

    def score(self, predictions, images, targets, training=False):
        return reconstruction_score(predictions, images, tf.constant(self.pixel_mean),
                                    tf.constant(self.pixel_std))

    def loss(self, predictions, images, targets):
        """MSE over every pixel (the images are the targets)."""
        return tf.reduce_mean(tf.square(predictions - images), axis=[1, 2, 3])

    def make_trackers(self):
        return {"rmse": _RootMean(name="rmse")}

    def update_metrics(self, trackers, predictions, targets, out):
        trackers["rmse"].update_state(tf.square(out["scores"][:, -1]))

    def batch_scores(self, out, targets):
        return {"score": -out["scores"][:, -1]}  # the score is -RMSE per image

    def summarize(self, scores):
        per_image = scores.get("score", np.zeros((0,), np.float32))
        n = len(per_image)
        return {"rmse": math.sqrt(float(np.sum(np.square(per_image))) / max(n, 1))}


class _LabelledTask:
    """Shared validation of the class count."""

    def __init__(self, image_shape, num_classes=None, pixel_mean=None, pixel_std=None):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"task={self.name!r} needs an integer `num_classes` >= 2; received "
                f"num_classes={num_classes!r}.")
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes


class ClassificationTask(_LabelledTask):
    """Classification: linear classifier on the CLS token, score `p(label)` in
    training (max probability otherwise), cross-entropy loss, confidence early stop."""

    name = "classification"
    prediction_type = "classification"
    selection_metric = ("accuracy", "max")
    early_stops = True

    def make_head(self, patch_size, dim, depth, heads):
        return keras.layers.Dense(self.num_classes, name="classifier",
                                  dtype=precision.output_dtype())

    def predict(self, head, tokens, mask, training=False):
        return head(tokens[:, 0])

    def score(self, predictions, images, targets, training=False):
        probs = tf.nn.softmax(predictions, axis=-1)
        if training and targets is not None:
            return tf.gather(probs, _labels(targets), axis=1, batch_dims=1)
        return tf.reduce_max(probs, axis=-1)

    def loss(self, predictions, images, targets):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(_labels(targets), predictions)

    def make_trackers(self):
        return {"accuracy": keras.metrics.Mean(name="accuracy"),
                "avg_glimpses": keras.metrics.Mean(name="avg_glimpses")}

    def update_metrics(self, trackers, predictions, targets, out):
        pred = tf.argmax(predictions, -1, output_type=tf.int32)
        trackers["accuracy"].update_state(tf.cast(pred == _labels(targets), tf.float32))
        trackers["avg_glimpses"].update_state(out["num_glimpses"])

    def batch_scores(self, out, targets):
        pred = tf.argmax(out["predictions"], -1, output_type=tf.int32)
        score = tf.cast(pred == _labels(targets), tf.float32)
        return {"score": score, "glimpses_sum": tf.reduce_sum(out["num_glimpses"])}

    def summarize(self, scores):
        per_image = scores.get("score", np.zeros((0,), np.float32))
        n = max(len(per_image), 1)
        return {"accuracy": float(np.sum(per_image)) / n,
                "avg_glimpses": float(scores.get("glimpses_sum", 0.0)) / n}


class SegmentationTask(_LabelledTask):
    """Semantic segmentation: `SegmentationDecoder`, score `-pixel CE` (0 without
    labels), pixel CE loss ignoring `IGNORE_LABEL`, pixel accuracy and mIoU."""

    name = "segmentation"
    prediction_type = "segmentation"
    selection_metric = ("miou", "max")
    early_stops = False

    def make_head(self, patch_size, dim, depth, heads):
        return SegmentationDecoder(self.image_shape, self.num_classes, patch_size, dim, depth,
                                   heads, name="decoder")

    def predict(self, head, tokens, mask, training=False):
        return head(tokens, mask, training=training)

    def score(self, predictions, images, targets, training=False):
        if targets is None:
            return tf.zeros([tf.shape(images)[0]])
        return -segmentation_cross_entropy(targets, predictions)

    def loss(self, predictions, images, targets):
        return segmentation_cross_entropy(targets, predictions)

    def make_trackers(self):
        return {"pixel_accuracy": keras.metrics.Mean(name="pixel_accuracy"),
                "miou": keras.metrics.MeanIoU(self.num_classes, ignore_class=IGNORE_LABEL,
                                              sparse_y_true=True, sparse_y_pred=True,
                                              name="miou")}

    def _hits(self, predictions, targets):
        labels = tf.cast(targets, tf.int32)
        pred = tf.argmax(predictions, -1, output_type=tf.int32)
        valid = tf.cast(labels != IGNORE_LABEL, tf.float32)
        return labels, pred, tf.cast(pred == labels, tf.float32), valid

    def update_metrics(self, trackers, predictions, targets, out):
        labels, pred, correct, valid = self._hits(predictions, targets)
        trackers["pixel_accuracy"].update_state(correct, sample_weight=valid)
        trackers["miou"].update_state(labels, pred)

    def batch_scores(self, out, targets):
        _, _, correct, valid = self._hits(out["predictions"], targets)
        hits = correct * valid
        axes = list(range(1, hits.shape.rank))
        score = tf.reduce_sum(hits, axes) / tf.maximum(tf.reduce_sum(valid, axes), 1.0)
        return {"score": score, "hits_sum": tf.reduce_sum(hits),
                "valid_sum": tf.reduce_sum(valid)}

    def summarize(self, scores):
        # Pooled over all valid pixels, not the mean of the per-image scores.
        return {"pixel_accuracy": float(scores.get("hits_sum", 0.0))
                / max(float(scores.get("valid_sum", 0.0)), 1.0)}


TASKS = {t.name: t for t in (ReconstructionTask, ClassificationTask, SegmentationTask)}

__all__ = ["TASKS", "ReconstructionTask", "ClassificationTask", "SegmentationTask",
           "reconstruction_score"]
