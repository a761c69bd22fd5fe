"""Box dynamics of the ordinal localiser: the worked examples of spec §1.7."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.objectives import box_dynamics as bd


def step(box, action):
    out = bd.apply_box_action(tf.constant([box]), tf.constant([action]))
    return out.numpy()[0].tolist()


def chain(box, action, n):
    out = []
    for _ in range(n):
        box = step(box, action)
        out.append(box)
    return out


def test_initial_state_and_roi():
    np.testing.assert_array_equal(bd.initial_state(2), [[0, 0, 84, 84]] * 2)
    np.testing.assert_array_equal(bd.initial_roi(2), [[0, 0, 83, 83]] * 2)


def test_stay_at_first_step_repairs_to_image():
    assert step([0, 0, 84, 84], 5) == [0, 0, 83, 83]


def test_top_left_shrink_chain():
    got = chain([0, 0, 84, 84], 0, 6)
    assert got == [[0, 0, 67, 67], [0, 0, 53, 53], [0, 0, 42, 42], [0, 0, 33, 33],
                   [0, 0, 28, 28], [0, 0, 28, 28]]


def test_centered_shrink_chain():
    got = chain([0, 0, 84, 84], 4, 5)
    assert got == [[8, 8, 75, 75], [14, 14, 68, 68], [19, 19, 62, 62], [23, 23, 57, 57],
                   [26, 26, 54, 54]]


def test_other_shrinks_from_full_image():
    # top-right: x1 += 16.8 -> 16, y2 -= 16.8 -> 67 (then x2 = 84 is pulled back to 83,
    # shifting x1 by one).
    assert step([0, 0, 84, 84], 1) == [15, 0, 83, 67]
    assert step([0, 0, 84, 84], 2) == [0, 15, 67, 83]
    assert step([0, 0, 84, 84], 3) == [15, 15, 83, 83]
    assert step([0, 0, 83, 83], 3) == [16, 16, 83, 83]


def test_moves_inside_and_at_borders():
    # inside: shift by int truncation of 0.2 * 40 = 8.
    assert step([20, 20, 60, 60], 6) == [12, 20, 52, 60]
    assert step([20, 20, 60, 60], 7) == [28, 20, 68, 60]
    assert step([20, 20, 60, 60], 8) == [20, 12, 60, 52]
    assert step([20, 20, 60, 60], 9) == [20, 28, 60, 68]
    # left border: x1 - 8 < 0 -> x1 = 0, x2 = W.
    assert step([5, 10, 45, 50], 6) == [0, 10, 40, 50]
    # right border: x2 + 8 >= 84 -> x1 = 84 - W - 1, x2 = 83.
    assert step([40, 10, 80, 50], 7) == [43, 10, 83, 50]
    assert step([10, 5, 50, 45], 8) == [10, 0, 50, 40]
    assert step([10, 40, 50, 80], 9) == [10, 43, 50, 83]
    # the whole initial window cannot move.
    for a in (6, 7, 8, 9):
        assert step([0, 0, 84, 84], a) == [0, 0, 83, 83]
    # a minimum-size box keeps its size (truncation of both corners).
    assert step([0, 0, 28, 28], 7) == [5, 0, 33, 28]


def test_shrink_fraction_branches():
    w = tf.constant([84.0, 84.0, 33.0, 33.0, 28.0], tf.float64)
    h = tf.constant([84.0, 33.0, 84.0, 33.0, 28.0], tf.float64)
    got = bd.shrink_fraction(w, h).numpy()
    np.testing.assert_allclose(got, [0.2, 1 - 28 / 33, 1 - 28 / 33, 1 - 28 / 33, 0.0])
    # width too small and height still too small after the width delta.
    got = bd.shrink_fraction(tf.constant([33.0], tf.float64), tf.constant([30.0], tf.float64))
    np.testing.assert_allclose(got.numpy(), [1 - 28 / 30])


def test_repair_order():
    boxes = tf.constant([[-3, 0, 40, 40], [-3, 0, 83, 83], [50, 0, 90, 40],
                         [-1, 0, 95, 40], [70, 0, 80, 40], [10, 0, 20, 40]])
    got = bd.repair_boxes(boxes).numpy().tolist()
    assert got == [[0, 0, 43, 40], [0, 0, 83, 83], [43, 0, 83, 40], [0, 0, 83, 40],
                   [53, 0, 80, 40],
                   [10, 0, 37, 40]]


def test_vectorised_over_batch_matches_single():
    rng = np.random.default_rng(0)
    boxes = np.array([[0, 0, 84, 84]] * 64)
    for _ in range(10):
        acts = rng.integers(0, 10, size=64)
        batched = bd.apply_box_action(tf.constant(boxes), tf.constant(acts)).numpy()
        single = np.array([step(b.tolist(), int(a)) for b, a in zip(boxes[:4], acts[:4])])
        np.testing.assert_array_equal(batched[:4], single)
        boxes = batched
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 83).all()
        assert (boxes[:, 2:] - boxes[:, :2] >= 27).all()


def test_jit_compiles():
    boxes = tf.constant([[0, 0, 84, 84], [20, 20, 60, 60], [0, 0, 28, 28]])
    acts = tf.constant([4, 7, 0])
    helpers.assert_jit_compiles(bd.apply_box_action, boxes, acts)


def test_iou_convention_and_keras_agreement():
    a = tf.constant([[0.0, 0, 27, 27], [0, 0, 83, 83], [10, 10, 40, 40], [0, 0, 10, 10]])
    b = tf.constant([[10.0, 10, 37, 37], [0, 0, 83, 83], [20, 5, 60, 30], [20, 20, 40, 40]])
    got = bd.box_iou(a, b).numpy()
    np.testing.assert_allclose(got[0], 17 * 17 / (2 * 729 - 17 * 17), rtol=1e-6)
    assert got[1] == pytest.approx(1.0)
    # [10,10,40,40] vs [20,5,60,30]: inter 20*20, areas 900 and 1000.
    np.testing.assert_allclose(got[2], 400 / (900 + 1000 - 400), rtol=1e-6)
    assert got[3] == 0.0
    keras_iou = keras.utils.bounding_boxes.compute_iou(a, b, bounding_box_format="xyxy")
    np.testing.assert_allclose(got, np.diag(np.asarray(keras_iou)), rtol=1e-6)
    # Best reachable IoU: a 28-side agent box around the 27-side GT box.
    gt = tf.constant([[10.0, 10, 37, 37]])
    best = tf.constant([[10.0, 10, 38, 38]])
    np.testing.assert_allclose(bd.box_iou(gt, best).numpy(), [729 / 784], rtol=1e-6)
