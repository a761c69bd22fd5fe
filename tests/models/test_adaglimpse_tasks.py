"""AdaGlimpse's task objects (`keras_glimpse.models.adaglimpse_tasks`) on tiny
tensors with hand-computed values; no model is built."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder
from keras_glimpse.layers.segmentation_decoder import SegmentationDecoder
from keras_glimpse.models.adaglimpse_tasks import (
    TASKS, ClassificationTask, ReconstructionTask, SegmentationTask)

SHAPE = (1, 2, 1)  # a 1x2 one-channel image
LOG13 = np.log([[1.0, 3.0]]).astype("float32")  # softmax -> [0.25, 0.75]


def _trackers(task):
    return task.make_trackers()


def test_registry_of_tasks_and_their_fixed_facts():
    assert TASKS == {"reconstruction": ReconstructionTask,
                     "classification": ClassificationTask,
                     "segmentation": SegmentationTask}
    rec, cls, seg = (ReconstructionTask(SHAPE), ClassificationTask(SHAPE, 3),
                     SegmentationTask(SHAPE, 3))
    assert [t.prediction_type for t in (rec, cls, seg)] == [
        "reconstruction", "classification", "segmentation"]
    assert [t.selection_metric for t in (rec, cls, seg)] == [
        ("rmse", "min"), ("accuracy", "max"), ("miou", "max")]
    assert [t.early_stops for t in (rec, cls, seg)] == [False, True, False]
    assert set(_trackers(rec)) == {"rmse"}
    assert set(_trackers(cls)) == {"accuracy", "avg_glimpses"}
    assert set(_trackers(seg)) == {"pixel_accuracy", "miou"}
    for task_cls in (ClassificationTask, SegmentationTask):
        for bad in (None, 1, 2.0):
            with pytest.raises(ValueError, match=f"num_classes={bad!r}"):
                task_cls(SHAPE, bad)


def test_heads():
    rec = ReconstructionTask((16, 16, 1)).make_head(8, 16, 1, 2)
    assert isinstance(rec, ReconstructionDecoder) and rec.name == "decoder"
    cls = ClassificationTask((16, 16, 1), 3).make_head(8, 16, 1, 2)
    assert isinstance(cls, keras.layers.Dense) and cls.units == 3 and cls.name == "classifier"
    seg = SegmentationTask((16, 16, 1), 3).make_head(8, 16, 1, 2)
    assert isinstance(seg, SegmentationDecoder) and seg.name == "decoder"
    # The classifier reads the CLS token only.
    tokens = tf.constant([[[1.0, 2.0], [50.0, 60.0]]])
    seen = []
    ClassificationTask(SHAPE, 3).predict(lambda x: seen.append(x) or x, tokens, None)
    np.testing.assert_allclose(seen[0], [[1.0, 2.0]])


def test_reconstruction_loss_score_and_metrics_by_hand():
    task = ReconstructionTask(SHAPE)
    pred = tf.zeros((1,) + SHAPE)
    images = tf.constant([[[[0.5], [1.0]]]])
    np.testing.assert_allclose(task.loss(pred, images, None), [(0.25 + 1.0) / 2], rtol=1e-6)
    # 0..255 scale: errors 127.5 and 255.
    np.testing.assert_allclose(task.score(pred, images, None),
                               [-math.sqrt((127.5**2 + 255.0**2) / 2)], rtol=1e-6)
    # Normalised pixels are mapped back (x * std + mean) and clipped to 0..255.
    norm = ReconstructionTask(SHAPE, pixel_mean=[0.5], pixel_std=[0.25])
    wild = tf.constant([[[[0.0], [10.0]]]])  # -> 127.5 and 3 * 255 (clipped to 255)
    target = tf.constant([[[[0.5], [1.0]]]])  # -> 159.375 and 191.25
    np.testing.assert_allclose(norm.score(wild, target, None),
                               [-math.sqrt((31.875**2 + 63.75**2) / 2)], rtol=1e-6)
    # Metrics: global RMSE from the final scores; evaluate_policy per-image RMSE.
    out = {"scores": tf.constant([[0.0, -3.0], [0.0, -4.0]])}
    trackers = _trackers(task)
    task.update_metrics(trackers, None, None, out)
    np.testing.assert_allclose(trackers["rmse"].result(), math.sqrt(12.5), rtol=1e-6)
    scores = task.batch_scores(out, None)
    np.testing.assert_allclose(scores["score"], [3.0, 4.0])
    assert task.summarize({"score": np.array([3.0, 4.0])}) == pytest.approx(
        {"rmse": math.sqrt(12.5)})
    assert task.summarize({}) == {"rmse": 0.0}


def test_classification_loss_score_and_metrics_by_hand():
    task = ClassificationTask(SHAPE, 2)
    logits = tf.constant(LOG13)
    label0 = tf.constant([0])
    np.testing.assert_allclose(task.loss(logits, None, label0), [math.log(4.0)], rtol=1e-6)
    # Training with labels: p(label); otherwise the confidence max p.
    np.testing.assert_allclose(task.score(logits, None, label0, training=True), [0.25], rtol=1e-6)
    np.testing.assert_allclose(task.score(logits, None, label0, training=False), [0.75],
                               rtol=1e-6)
    np.testing.assert_allclose(task.score(logits, None, None, training=True), [0.75], rtol=1e-6)
    # Labels of shape (B, 1) are flattened.
    np.testing.assert_allclose(task.loss(logits, None, tf.constant([[1]])),
                               [-math.log(0.75)], rtol=1e-6)
    out = {"predictions": tf.constant([[0.0, 1.0], [1.0, 0.0]]),
           "num_glimpses": tf.constant([2.0, 1.0])}
    labels = tf.constant([1, 1])
    trackers = _trackers(task)
    task.update_metrics(trackers, out["predictions"], labels, out)
    assert float(trackers["accuracy"].result()) == 0.5
    assert float(trackers["avg_glimpses"].result()) == 1.5
    scores = task.batch_scores(out, labels)
    np.testing.assert_allclose(scores["score"], [1.0, 0.0])
    assert float(scores["glimpses_sum"]) == 3.0
    assert task.summarize({"score": np.array([1.0, 0.0]), "glimpses_sum": 3.0}) == {
        "accuracy": 0.5, "avg_glimpses": 1.5}


def test_segmentation_loss_score_and_metrics_by_hand():
    task = SegmentationTask(SHAPE, 2)
    # Pixel 0: logits log[1, 3], label 0 (CE log 4); pixel 1 is ignored (255).
    logits = tf.constant(np.stack([LOG13, [[5.0, -5.0]]], axis=1)[None].astype("float32"))  # (1, 1, 2, 2)
    labels = tf.constant([[[0, 255]]])
    np.testing.assert_allclose(task.loss(logits, None, labels), [math.log(4.0)], rtol=1e-6)
    np.testing.assert_allclose(task.score(logits, None, labels), [-math.log(4.0)], rtol=1e-6)
    np.testing.assert_allclose(task.score(logits, tf.zeros((3,) + SHAPE), None), [0.0] * 3)
    # Two images: [1 hit of 1 valid], [1 hit of 2 valid] (argmax: 1, 0 / 1, 0).
    pred = tf.constant([[[[0.0, 1.0], [1.0, 0.0]]], [[[0.0, 1.0], [1.0, 0.0]]]])
    labels = tf.constant([[[1, 255]], [[1, 1]]])
    out = {"predictions": pred}
    trackers = _trackers(task)
    task.update_metrics(trackers, pred, labels, out)
    np.testing.assert_allclose(trackers["pixel_accuracy"].result(), 2.0 / 3.0, rtol=1e-6)
    # Class 0: no true pixel, one predicted -> IoU 0; class 1: 2 / (3 + 2 - 2) -> 2/3.
    np.testing.assert_allclose(trackers["miou"].result(), (0.0 + 2.0 / 3.0) / 2, rtol=1e-6)
    scores = task.batch_scores(out, labels)
    np.testing.assert_allclose(scores["score"], [1.0, 0.5])
    assert (float(scores["hits_sum"]), float(scores["valid_sum"])) == (2.0, 3.0)
    # Pooled over pixels, not the mean of the per-image accuracies (0.75).
    assert task.summarize({"score": np.array([1.0, 0.5]), "hits_sum": 2.0,
                           "valid_sum": 3.0}) == pytest.approx({"pixel_accuracy": 2.0 / 3.0})
    assert task.summarize({}) == {"pixel_accuracy": 0.0}
