"""Pictures of the ordinal-embedding localizer: box trajectories and distance vs IoU."""

import os

import numpy as np
import tensorflow as tf

from keras_glimpse.objectives import box_dynamics, triplet
from keras_glimpse.viz.common import _require, draw_boxes, save_gif, trajectory_frames


def _to_yx(boxes):
    """The localizer's inclusive `(x1, y1, x2, y2)` boxes -> end-exclusive `(y1, x1, y2, x2)`."""
    return np.stack([boxes[..., 1], boxes[..., 0], boxes[..., 3] + 1, boxes[..., 2] + 1], -1)


def visualize(model, images, labels, out_dir, mode="sample", max_gifs=8, boxes_per_image=32):
    """Writes `trajectory_<i>.gif` (ground truth green, boxes per step) per
    image and `distance_vs_iou.png`, a scatter of the embedding distance to
    the ground-truth box against IoU (random squares and trajectory boxes).
    Needs Pillow and matplotlib.

    Args:
        model: an `OrdinalLocalizer`.
        images: `(N, 84, 84, 1)` normalised images.
        labels: `(N, 4)` ground-truth boxes.
        out_dir: output folder.
        mode: `"sample"` or `"greedy"` rollouts.
        max_gifs: at most this many trajectory GIFs.
        boxes_per_image: random squares per image in the scatter.

    Returns:
        list of written paths.
    """
    images = tf.convert_to_tensor(np.asarray(images), tf.float32)
    gt = tf.convert_to_tensor(np.asarray(labels), tf.float32)
    os.makedirs(out_dir, exist_ok=True)
    out = model.rollout(images, mode=mode, training=False)
    traj = out["boxes"].numpy()
    written = []
    scale = 3
    for i in range(min(len(traj), max_gifs)):
        frames = trajectory_frames(images[i].numpy(), _to_yx(traj[i]), scale=scale)
        frames = [draw_boxes(f, _to_yx(gt[i].numpy()[None]) * scale,
                             colors=np.array([[0, 200, 0]], np.uint8), thickness=1)
                  for f in frames]
        written.append(save_gif(frames, os.path.join(out_dir, f"trajectory_{i}.gif")))
    # distance vs IoU: the embedding of the ground-truth box against random
    # squares and the agent's boxes
    fmap = model.embedding.feature_map(images)
    e_gt = model.embedding.embed_boxes(fmap, gt[:, None, :], training=False)[:, 0]
    rand, rand_iou = triplet.sample_ordinal_boxes(
        gt, seed=0, num_boxes=boxes_per_image, image_size=model.image_shape[0],
        min_side=model.min_side)
    all_boxes = tf.concat([rand, out["boxes"]], axis=1)
    all_iou = tf.concat([rand_iou, box_dynamics.box_iou(out["boxes"], gt[:, None])], 1)
    emb = model.embedding.embed_boxes(fmap, all_boxes, training=False)
    dist = triplet.pairwise_distance(e_gt[:, None, :], emb).numpy()
    plt = _require("matplotlib.pyplot")
    fig, ax = plt.subplots(figsize=(5, 4))
    k = rand.shape[1]
    ax.scatter(all_iou.numpy()[:, :k].ravel(), dist[:, :k].ravel(), s=4, alpha=0.5,
               label="random squares")
    ax.scatter(all_iou.numpy()[:, k:].ravel(), dist[:, k:].ravel(), s=6, alpha=0.7,
               label="agent boxes")
    ax.set_xlabel("IoU with the ground truth")
    ax.set_ylabel("embedding distance to the ground truth")
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "distance_vs_iou.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written
