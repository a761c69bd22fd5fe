"""Box-moving dynamics of the ordinal-embedding localisation agent.

Pure, vectorised TensorFlow functions (no state, no Python loop over the
batch) for the 10-action box environment of Li et al. (2021), spec §1.7:

| index | action |
|---|---|
| 0 | shrink toward the top-left (x2 -= dW, y2 -= dH) |
| 1 | shrink toward the top-right (x1 += dW, y2 -= dH) |
| 2 | shrink toward the bottom-left (y1 += dH, x2 -= dW) |
| 3 | shrink toward the bottom-right (x1 += dW, y1 += dH) |
| 4 | shrink centred (every side by d/2) |
| 5 | stay |
| 6 / 7 | move left / right by 0.2 W |
| 8 / 9 | move up / down by 0.2 H |

Boxes are `(x1, y1, x2, y2)` integer pixel corners (inclusive) of an
`image_size` square image; width and height are `x2 - x1` and `y2 - y1`
(no +1, as the reference). Every float update is truncated toward zero
(the reference writes into an int64 array), computed in float64 so that
values such as `33 - 33 * (1 - 28 / 33)` land on 28 exactly as in NumPy.
After every action a clip-and-repair pass runs (negative corners, corners
past the border, then the minimum side), in that order.

The episode starts from the state `[0, 0, S, S]` (`initial_state`), whose
first embedded ROI is `[0, 0, S-1, S-1]` (`initial_roi`); "stay" on the
initial state gives `[0, 0, S-1, S-1]`.

Reference:
    Li, Han, Min, Metaxas. Localization by ordinal embedding (2021),
    `util/actions_tree.py` of litingfeng/Localization-by-OrdEmbed @ dad52be.
"""

import tensorflow as tf

NUM_ACTIONS = 10
ACTION_NAMES = (
    "shrink_top_left",
    "shrink_top_right",
    "shrink_bottom_left",
    "shrink_bottom_right",
    "shrink_center",
    "stay",
    "move_left",
    "move_right",
    "move_up",
    "move_down",
)


def _trunc(x):
    """Truncation toward zero of a float64 tensor, as an int array store does."""
    return tf.cast(tf.cast(x, tf.int64), tf.float64)


def initial_state(batch_size, image_size=84):
    """The agent's initial window `[0, 0, S, S]`, int32 `(B, 4)`."""
    row = tf.constant([0, 0, image_size, image_size], tf.int32)
    return tf.tile(row[None], [batch_size, 1])


def initial_roi(batch_size, image_size=84):
    """The first embedded ROI `[0, 0, S-1, S-1]`, int32 `(B, 4)`."""
    row = tf.constant([0, 0, image_size - 1, image_size - 1], tf.int32)
    return tf.tile(row[None], [batch_size, 1])


def shrink_fraction(width, height, min_side=28, step_factor=0.2):
    """The shrink fraction delta of the reference (float64 tensors in, out).

    0.2 when both sides stay >= `min_side`; else the fraction that brings the
    limiting side to exactly `min_side` (height first when only the height
    would fall below it; width otherwise, then height if still too small).
    """
    width = tf.cast(width, tf.float64)
    height = tf.cast(height, tf.float64)
    m = tf.constant(min_side, tf.float64)
    f = tf.constant(step_factor, tf.float64)
    safe_w = tf.maximum(width, 1.0)
    safe_h = tf.maximum(height, 1.0)
    width_ok = width - f * width >= m
    height_ok = height - f * height >= m
    delta_h = 1.0 - m / safe_h
    delta_w = 1.0 - m / safe_w
    delta_w = tf.where(height - delta_w * height < m, delta_h, delta_w)
    return tf.where(
        width_ok & height_ok,
        tf.fill(tf.shape(width), f),
        tf.where(width_ok, delta_h, delta_w),
    )


def repair_boxes(boxes, image_size=84, min_side=28):
    """Clip-and-repair pass of the reference, in its order (int32 `(B, 4)`).

    1. `x1 < 0` (or `y1`): shift the box right (down) by `-x1`; if that pushes
       `x2` past `S-1`, reset the axis to the full extent `[0, S-1]`.
    2. `x2 > S-1`: shift the box left by `x2 - (S-1)`; if `x1` becomes negative,
       reset the axis to `[0, S-1]`.
    3. `x2 - x1 < min_side`: set `x2 = x1 + min_side - 1`, or, when that leaves
       the image, `x1 = x2 - min_side + 1`. Same for y.
    """
    boxes = tf.cast(boxes, tf.int32)
    last = image_size - 1
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)

    def fix_axis(lo, hi):
        # 1. negative low corner.
        neg = lo < 0
        hi_shift = hi - lo
        reset1 = neg & (hi_shift > last)
        hi = tf.where(neg, tf.where(reset1, last, hi_shift), hi)
        lo = tf.where(neg, 0, lo)
        # 2. high corner past the border.
        over = hi > last
        lo_shift = lo - (hi - last)
        lo = tf.where(over, tf.maximum(lo_shift, 0), lo)
        hi = tf.where(over, last, hi)
        # 3. minimum side.
        small = hi - lo < min_side
        grown = lo + min_side - 1
        leaves = grown > last
        lo_new = tf.where(small & leaves, hi - min_side + 1, lo)
        hi_new = tf.where(small & ~leaves, grown, hi)
        return lo_new, hi_new

    x1, x2 = fix_axis(x1, x2)
    y1, y2 = fix_axis(y1, y2)
    return tf.stack([x1, y1, x2, y2], axis=-1)


def apply_box_action(boxes, actions, image_size=84, min_side=28, step_factor=0.2):
    """Applies one action per box and repairs the result.

    Args:
        boxes: int `(B, 4)` current windows `(x1, y1, x2, y2)`.
        actions: int `(B,)` action indices in `[0, 10)` (see the module table).
        image_size: side S of the square image.
        min_side: minimum box side m.
        step_factor: shrink / move fraction.

    Returns:
        int32 `(B, 4)` next windows.
    """
    actions = tf.cast(actions, tf.int32)
    b = tf.cast(boxes, tf.float64)
    x1, y1, x2, y2 = tf.unstack(b, axis=-1)
    w = x2 - x1
    h = y2 - y1
    f = tf.constant(step_factor, tf.float64)
    size = tf.constant(image_size, tf.float64)
    delta = shrink_fraction(w, h, min_side, step_factor)
    dw = delta * w
    dh = delta * h

    def box(a, b_, c, d):
        return tf.stack([a, b_, c, d], axis=-1)

    candidates = [
        box(x1, y1, _trunc(x2 - dw), _trunc(y2 - dh)),  # 0 top-left
        box(_trunc(x1 + dw), y1, x2, _trunc(y2 - dh)),  # 1 top-right
        box(x1, _trunc(y1 + dh), _trunc(x2 - dw), y2),  # 2 bottom-left
        box(_trunc(x1 + dw), _trunc(y1 + dh), x2, y2),  # 3 bottom-right
        box(_trunc(x1 + dw / 2), _trunc(y1 + dh / 2),
            _trunc(x2 - dw / 2), _trunc(y2 - dh / 2)),  # 4 centre
        b,  # 5 stay
    ]
    mw = f * w
    mh = f * h
    left_ok = x1 - mw >= 0
    candidates.append(box(  # 6 left
        tf.where(left_ok, _trunc(x1 - mw), 0.0), y1,
        tf.where(left_ok, _trunc(x2 - mw), w), y2))
    right_ok = x2 + mw < size
    candidates.append(box(  # 7 right
        tf.where(right_ok, _trunc(x1 + mw), size - w - 1.0), y1,
        tf.where(right_ok, _trunc(x2 + mw), size - 1.0), y2))
    up_ok = y1 - mh >= 0
    candidates.append(box(  # 8 up
        x1, tf.where(up_ok, _trunc(y1 - mh), 0.0),
        x2, tf.where(up_ok, _trunc(y2 - mh), h)))
    down_ok = y2 + mh < size
    candidates.append(box(  # 9 down
        x1, tf.where(down_ok, _trunc(y1 + mh), size - h - 1.0),
        x2, tf.where(down_ok, _trunc(y2 + mh), size - 1.0)))
    stacked = tf.stack(candidates, axis=1)  # (B, 10, 4)
    chosen = tf.gather(stacked, actions, axis=1, batch_dims=1)
    return repair_boxes(tf.cast(chosen, tf.int32), image_size, min_side)


def box_iou(boxes1, boxes2):
    """Element-wise IoU of `(..., 4)` `(x1, y1, x2, y2)` boxes, float32 `(...)`.

    Areas are `(x2 - x1) * (y2 - y1)` without +1 (spec §1.3), so a 28-pixel
    inclusive box has area 27 * 27 = 729. This equals the diagonal of
    `keras.utils.bounding_boxes.compute_iou(..., bounding_box_format="xyxy")`.
    """
    a = tf.cast(boxes1, tf.float32)
    b = tf.cast(boxes2, tf.float32)
    ix1 = tf.maximum(a[..., 0], b[..., 0])
    iy1 = tf.maximum(a[..., 1], b[..., 1])
    ix2 = tf.minimum(a[..., 2], b[..., 2])
    iy2 = tf.minimum(a[..., 3], b[..., 3])
    inter = tf.maximum(ix2 - ix1, 0.0) * tf.maximum(iy2 - iy1, 0.0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return tf.math.divide_no_nan(inter, union)
