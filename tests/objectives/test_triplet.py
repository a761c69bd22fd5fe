"""Ordinal triplet loss, ordinal accuracies and the pretraining box sampler."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.objectives import triplet
from keras_glimpse.objectives.box_dynamics import box_iou

A = tf.constant([[0.0, 0.0], [0.0, 0.0]])
EI = tf.constant([[3.0, 4.0], [3.0, 4.0]])
EJ = tf.constant([[6.0, 8.0], [6.0, 8.0]])


def test_pairwise_distance_has_eps_inside():
    d = triplet.pairwise_distance(tf.zeros((1, 4)), tf.zeros((1, 4))).numpy()
    np.testing.assert_allclose(d, [2e-6], rtol=1e-5)  # sqrt(4 * 1e-12)
    d = triplet.pairwise_distance(EI, A).numpy()
    np.testing.assert_allclose(d, [np.hypot(3 + 1e-6, 4 + 1e-6)] * 2, rtol=1e-6)


def test_triplet_loss_hand_values():
    # d(a, e_i) = 5, d(a, e_j) = 10.
    got = triplet.ordinal_triplet_loss(A, EI, EJ, tf.constant([0.7, 0.2]),
                                       tf.constant([0.2, 0.7])).numpy()
    np.testing.assert_allclose(got, [5 - 10 + 60, 10 - 5 + 60], atol=1e-4)
    # a tie makes box i the positive.
    got = triplet.ordinal_triplet_loss(A, EI, EJ, tf.constant([0.3, 0.3]),
                                       tf.constant([0.3, 0.3]), margin=1.0).numpy()
    np.testing.assert_allclose(got, [0.0, 0.0], atol=1e-4)
    got = triplet.ordinal_triplet_loss(A, EJ, EI, tf.constant([0.3, 0.3]),
                                       tf.constant([0.3, 0.3]), margin=1.0).numpy()
    np.testing.assert_allclose(got, [6.0, 6.0], atol=1e-4)
    # identical boxes: constant margin, zero gradient.
    with tf.GradientTape() as tape:
        tape.watch(EI)
        loss = triplet.ordinal_triplet_loss(A, EI, EI, tf.constant([0.5, 0.5]),
                                            tf.constant([0.5, 0.5]))
    np.testing.assert_allclose(loss.numpy(), [60.0, 60.0], atol=1e-4)
    np.testing.assert_allclose(tape.gradient(loss, EI).numpy(), 0.0, atol=1e-6)


def test_ordinal_accuracy_instance_and_prototype():
    got = triplet.ordinal_accuracy(A, EI, EJ, tf.constant([0.7, 0.2]),
                                   tf.constant([0.2, 0.7])).numpy()
    np.testing.assert_array_equal(got, [1.0, 0.0])
    got = triplet.ordinal_accuracy(A, EI, EJ, tf.constant([0.3, 0.3]),
                                   tf.constant([0.3, 0.3])).numpy()
    np.testing.assert_array_equal(got, [0.0, 0.0])
    # prototype: anchors [0,0] and [12,8] -> mean [6,4]. e_i=[3,4], e_j=[6,8].
    # instance: row 1 d_i=5 < d_j=10; row 2 d_i=hypot(9,4)=9.85 > d_j=6.
    # prototype: d_i = 3 < d_j = 4 for both rows.
    anchors = tf.constant([[0.0, 0.0], [12.0, 8.0]])
    iou_i = tf.constant([0.7, 0.1])
    iou_j = tf.constant([0.2, 0.6])
    inst = triplet.ordinal_accuracy(anchors, EI, EJ, iou_i, iou_j).numpy()
    proto = triplet.ordinal_accuracy(anchors, EI, EJ, iou_i, iou_j, prototype=True).numpy()
    np.testing.assert_array_equal(inst, [1.0, 1.0])
    np.testing.assert_array_equal(proto, [1.0, 0.0])


def _brute_force_foreground(gt_side=28, size=84, thr=0.5):
    g = gt_side - 1
    rows = set()
    for side in range(28, size + 1):
        e = side - 1
        for dx in range(-side, gt_side + 1):
            for dy in range(-side, gt_side + 1):
                ix = max(0, min(g, dx + e) - max(0, dx))
                iy = max(0, min(g, dy + e) - max(0, dy))
                inter = ix * iy
                if inter / (g * g + e * e - inter) >= thr:
                    rows.add((side, dx, dy))
    return rows


def test_foreground_table_is_complete():
    table = triplet._foreground_offsets(28, 28, 84, 84, 0.5)
    got = {tuple(int(v) for v in r[:3]) for r in table}
    assert got == _brute_force_foreground()
    np.testing.assert_allclose(table[:, 3], 1.0 / (85 - table[:, 0]) ** 2)


@pytest.mark.parametrize("corner", [(0, 0), (56, 56), (20, 37)])
def test_sampler_boxes_satisfy_the_conditions(corner):
    x, y = corner
    gt = tf.constant([[x, y, x + 27, y + 27]] * 400, tf.float32)
    boxes, ious = triplet.sample_ordinal_boxes(gt, seed=keras.random.SeedGenerator(3))
    boxes, ious = boxes.numpy(), ious.numpy()
    assert boxes.shape == (400, 2, 4) and ious.shape == (400, 2)
    np.testing.assert_allclose(ious, box_iou(boxes, gt.numpy()[:, None]).numpy(), atol=1e-6)
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    np.testing.assert_array_equal(w, h)  # squares
    assert (w >= 27).all() and (w <= 83).all()
    assert (boxes >= 0).all() and (boxes <= 83).all()
    assert np.all(boxes == np.round(boxes))
    fg = ious >= 0.5
    assert ((ious >= 0.1) | fg).all(), ious.min()
    assert 0.4 < fg.mean() < 0.6, fg.mean()


def test_sampler_is_seeded_and_jit_compiles():
    gt = tf.constant([[5, 9, 32, 36], [40, 2, 67, 29]], tf.float32)
    a = triplet.sample_ordinal_boxes(gt, seed=7)
    b = triplet.sample_ordinal_boxes(gt, seed=7)
    helpers.assert_allclose_tree(a, b)
    # XLA picks another counter-based RNG, so only the validity is compared.
    boxes, ious = tf.function(lambda g: triplet.sample_ordinal_boxes(g, seed=7),
                              jit_compile=True)(gt)
    assert boxes.shape == (2, 2, 4)
    np.testing.assert_allclose(ious, box_iou(boxes, gt[:, None]), atol=1e-6)
    assert (ious.numpy() >= 0.1).all()
