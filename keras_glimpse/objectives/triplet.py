"""Ordinal triplet objective of the ordinal-embedding localiser (spec §1.5, §1.9).

Pure per-example functions:

- `pairwise_distance(x1, x2, eps)`: `||x1 - x2 + eps||_2` (PyTorch's
  `pairwise_distance`, eps inside the norm).
- `ordinal_triplet_loss(anchor, emb_i, emb_j, iou_i, iou_j, margin)`: anchor =
  the ground-truth box embedding, positive / negative = the embedding of the
  higher / lower IoU box of the pair (ties: box i is the positive);
  `max(0, d(a, p) - d(a, n) + margin)` per example.
- `ordinal_accuracy(...)`: 1 where the distance order matches the IoU order
  (`sign(d_i - d_j) == sign(iou_j - iou_i)`), else 0, per example ("Ord Acc
  Inst"; pass `prototype=True` for "Ord Acc Proto", whose anchor is the batch
  mean of the anchors).
- `sample_ordinal_boxes(gt_boxes, seed, ...)`: the pretraining pair sampler
  (squares of side 28..84 that fit in the image; each box is background-ish,
  IoU in [0.1, 0.5), or foreground, IoU >= 0.5, with probability 1/2):
  vectorised rejection sampling over a fixed number of candidates for the
  background-ish boxes and an exact draw from an enumerated table for the
  (rarely accepted) foreground boxes.

Boxes are `(x1, y1, x2, y2)` inclusive pixel corners; IoU uses the reference
convention of `box_dynamics.box_iou` (no +1).

Reference:
    Li, Han, Min, Metaxas. Localization by ordinal embedding (2021).
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse.objectives.box_dynamics import box_iou


def pairwise_distance(x1, x2, eps=1e-6):
    """`||x1 - x2 + eps||_2` over the last axis (PyTorch `pairwise_distance`)."""
    diff = tf.cast(x1, tf.float32) - tf.cast(x2, tf.float32) + eps
    return tf.sqrt(tf.reduce_sum(tf.square(diff), axis=-1))


def _order(emb_i, emb_j, iou_i, iou_j):
    first_positive = tf.cast(iou_i, tf.float32) >= tf.cast(iou_j, tf.float32)
    cond = first_positive[..., None]
    positive = tf.where(cond, emb_i, emb_j)
    negative = tf.where(cond, emb_j, emb_i)
    return positive, negative


def ordinal_triplet_loss(anchor, emb_i, emb_j, iou_i, iou_j, margin=60.0, eps=1e-6):
    """Per-example ordinal triplet margin loss.

    Args:
        anchor: `(B, D)` ground-truth box embeddings.
        emb_i, emb_j: `(B, D)` embeddings of the two sampled boxes.
        iou_i, iou_j: `(B,)` their IoUs with the ground-truth box.
        margin: triplet margin (60 in the paper setting).
        eps: added inside the L2 norm, as PyTorch's pairwise distance.

    Returns:
        `(B,)` float32 `max(0, d(a, p) - d(a, n) + margin)`.
    """
    positive, negative = _order(emb_i, emb_j, iou_i, iou_j)
    d_pos = pairwise_distance(anchor, positive, eps)
    d_neg = pairwise_distance(anchor, negative, eps)
    return tf.nn.relu(d_pos - d_neg + margin)


def ordinal_accuracy(anchor, emb_i, emb_j, iou_i, iou_j, prototype=False, eps=1e-6):
    """Per-example ordinal correctness (1.0 / 0.0).

    Args:
        anchor: `(B, D)` ground-truth box embeddings.
        emb_i, emb_j: `(B, D)` embeddings of the two boxes.
        iou_i, iou_j: `(B,)` their IoUs with the ground truth.
        prototype: use the mean of `anchor` over the batch (of this call, i.e.
            of one replica under a distribution strategy) as every example's
            anchor ("Ord Acc Proto").
        eps: as `pairwise_distance`.

    Returns:
        `(B,)` float32, 1 where `sign(d_i - d_j) == sign(iou_j - iou_i)`.
    """
    anchor = tf.cast(anchor, tf.float32)
    if prototype:
        anchor = tf.broadcast_to(tf.reduce_mean(anchor, axis=0, keepdims=True),
                                 tf.shape(anchor))
    d_i = pairwise_distance(anchor, emb_i, eps)
    d_j = pairwise_distance(anchor, emb_j, eps)
    lhs = tf.sign(d_i - d_j)
    rhs = tf.sign(tf.cast(iou_j, tf.float32) - tf.cast(iou_i, tf.float32))
    return tf.cast(tf.equal(lhs, rhs), tf.float32)


@functools.lru_cache(maxsize=8)
def _foreground_offsets(gt_side, min_side, max_side, image_size, foreground_iou):
    """Static table of every square `(side, dx, dy)` (offset of its top-left
    from the ground-truth top-left) whose IoU with a `gt_side` square reaches
    `foreground_iou`, with its proposal weight `1 / (image_size - side + 1)^2`."""
    g = float(gt_side - 1)
    rows = []
    for side in range(min_side, max_side + 1):
        e = float(side - 1)
        for dx in range(-side, gt_side + 1):
            ix = max(0.0, min(g, dx + e) - max(0.0, dx))
            if ix <= 0:
                continue
            for dy in range(-side, gt_side + 1):
                iy = max(0.0, min(g, dy + e) - max(0.0, dy))
                inter = ix * iy
                if inter > 0 and inter / (g * g + e * e - inter) >= foreground_iou:
                    rows.append((side, dx, dy, 1.0 / (image_size - side + 1) ** 2))
    return np.asarray(rows, np.float32).reshape(-1, 4)


def _gumbel_argmax(logits, seed):
    u = keras.random.uniform(tf.shape(logits), seed=seed)
    u = tf.clip_by_value(u, 1e-7, 1.0 - 1e-7)
    return tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)


def sample_ordinal_boxes(gt_boxes, seed=None, num_boxes=2, image_size=84, min_side=28,
                         max_side=None, num_candidates=64, foreground_iou=0.5,
                         background_iou=0.1, gt_side=28):
    """Draws the pretraining boxes (random squares) for each ground-truth box.

    Each box is independently, with probability 1/2, "background-ish"
    (`background_iou <= IoU < foreground_iou`) or "foreground"
    (`IoU >= foreground_iou`). The reference proposes a square with an integer
    side uniform in `[min_side, max_side]` and a top-left corner uniform among
    the positions where it fits (`x2 = x1 + side - 1`), and re-draws until the
    condition holds. Here:

    - background-ish boxes: vectorised rejection sampling, the first valid of
      `num_candidates` proposals (acceptance is 23-92 % per proposal, so 64
      candidates fail with probability < 1e-7; then the candidate nearest to
      the IoU interval is used);
    - foreground boxes: acceptance is only 0.2-1.5 % per proposal, so a fixed
      candidate budget would often fail. The same conditional distribution is
      sampled exactly instead: every square that can reach the threshold
      against a `gt_side` ground-truth square is enumerated once (a static
      table), weighted by its proposal probability `1 / (S - side + 1)^2`,
      masked to those that fit in the image and reach the threshold, and one
      is drawn by Gumbel-max. This assumes ground-truth squares of side
      `gt_side` (the fixed-size dataset); other boxes fall back to the nearest
      candidate of the table.

    All randomness is drawn with `keras.random.uniform(seed=seed)`.

    Args:
        gt_boxes: `(B, 4)` ground-truth boxes.
        seed: a `keras.random.SeedGenerator`, an int or None.
        num_boxes: boxes per image (2 for the triplet pair).
        image_size: side of the square image.
        min_side, max_side: side range (max defaults to `image_size`).
        num_candidates: background candidates per box.
        foreground_iou, background_iou: the IoU thresholds.
        gt_side: side of the ground-truth squares (inclusive pixels).

    Returns:
        `(boxes (B, num_boxes, 4) float32, ious (B, num_boxes) float32)`.
    """
    max_side = image_size if max_side is None else max_side
    gt = tf.cast(gt_boxes, tf.float32)
    batch = tf.shape(gt)[0]
    # Background-ish: rejection sampling.
    shape = tf.stack([batch, num_boxes, num_candidates])
    u = keras.random.uniform(tf.concat([shape, [3]], 0), seed=seed)
    n_sides = float(max_side - min_side + 1)
    side = min_side + tf.minimum(tf.floor(u[..., 0] * n_sides), n_sides - 1)
    room = image_size - side + 1.0
    x1 = tf.minimum(tf.floor(u[..., 1] * room), room - 1)
    y1 = tf.minimum(tf.floor(u[..., 2] * room), room - 1)
    cand = tf.stack([x1, y1, x1 + side - 1, y1 + side - 1], axis=-1)  # (B, K, N, 4)
    iou = box_iou(cand, gt[:, None, None, :])  # (B, K, N)
    gap = tf.nn.relu(background_iou - iou) + tf.where(
        iou >= foreground_iou, iou - foreground_iou + 1e-6, 0.0)
    # argmin returns the first minimum: the first valid candidate when one exists.
    index = tf.argmin(gap, axis=-1, output_type=tf.int32)
    bg_boxes = tf.gather(cand, index, axis=2, batch_dims=2)
    bg_ious = tf.gather(iou, index, axis=2, batch_dims=2)
    # Foreground: exact draw from the enumerated table.
    table = tf.constant(_foreground_offsets(gt_side, min_side, max_side, image_size,
                                            foreground_iou))
    t_side, t_dx, t_dy, t_w = tf.unstack(table, axis=-1)
    fx1 = gt[:, None, 0] + t_dx  # (B, M)
    fy1 = gt[:, None, 1] + t_dy
    fg_cand = tf.stack([fx1, fy1, fx1 + t_side - 1, fy1 + t_side - 1], axis=-1)
    fg_iou = box_iou(fg_cand, gt[:, None, :])
    fits = (fx1 >= 0) & (fy1 >= 0) & (fg_cand[..., 2] <= image_size - 1) & (
        fg_cand[..., 3] <= image_size - 1)
    ok = fits & (fg_iou >= foreground_iou)
    logits = tf.where(ok, tf.math.log(t_w), tf.math.log(t_w) - 1e4 * (
        1.0 + tf.nn.relu(foreground_iou - fg_iou)))
    logits = tf.tile(logits[:, None, :], [1, num_boxes, 1])
    fg_index = _gumbel_argmax(logits, seed)  # (B, K)
    fg_boxes = tf.gather(fg_cand, fg_index, axis=1, batch_dims=1)
    fg_ious = tf.gather(fg_iou, fg_index, axis=1, batch_dims=1)
    foreground = keras.random.uniform(tf.stack([batch, num_boxes]), seed=seed) < 0.5
    boxes = tf.where(foreground[..., None], fg_boxes, bg_boxes)
    ious = tf.where(foreground, fg_ious, bg_ious)
    return boxes, ious
