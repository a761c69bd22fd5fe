"""Pictures of RECAP: the glimpse path over the grid and the policy heatmaps."""

import pathlib

import numpy as np
import tensorflow as tf

from keras_glimpse.viz.common import (draw_boxes, save_gif, save_grid, to_rgb_uint8,
                                      trajectory_frames, upscale)


def visualize(model, images, labels, out_dir, mode="greedy", max_images=10):
    """Writes, per image, a GIF of the glimpse path and a policy heatmap PNG.

    `glimpse_{i}.gif`: one frame per step, the image with the `P x P` cells
    read so far (the current one thickest). `heatmap_{i}.png` (agent stage):
    one panel per step, the policy's action probabilities over the `N x N`
    grid (visited cells at zero, normalised per panel), the cell chosen
    next outlined. Needs Pillow and matplotlib.

    Args:
        model: a `RECAP`.
        images: `(B, I, I, C)` images in [0, 1].
        labels: `(B,)` int labels (shown in the heatmap titles).
        out_dir: output folder (created).
        mode: `"greedy"` or `"sample"`.
        max_images: at most this many images are drawn.

    Returns:
        The list of written file paths.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = np.asarray(images, np.float32)[:max_images]
    labels = np.asarray(labels).reshape(-1)[:max_images]
    out = model.rollout(tf.convert_to_tensor(images), mode=mode)
    preds = np.argmax(np.asarray(out["predictions"]), axis=-1)
    probs = np.asarray(out["action_probs"])
    actions = np.asarray(out["actions"])
    n, p, s = model.grid_size, model.patch_size, model.stride
    if model.stage == "agent":  # cells read: the start cell, then a_0 .. a_{T-2}
        read = np.concatenate([np.full((len(images), 1), model.start_cell), actions[:, :-1]],
                              axis=1)
    else:
        read = actions
    scale = max(1, 256 // model.image_size)
    cell_px = max(4, 128 // n)
    written = []
    for i in range(len(images)):
        rows, cols = np.divmod(read[i], n)
        boxes = np.stack([rows * s, cols * s, rows * s + p, cols * s + p], axis=-1)
        frames = trajectory_frames(images[i], boxes, scale)
        written.append(save_gif(frames, str(out_dir / f"glimpse_{i}.gif"), duration_ms=600))
        if model.stage != "agent":
            continue
        panels, titles = [], []
        for t in range(probs.shape[1]):
            grid = probs[i, t].reshape(n, n)
            grid = grid / max(float(grid.max()), 1e-12)
            rgb = np.stack([grid, grid ** 2, 1.0 - grid], axis=-1)  # cold -> hot
            panel = upscale(to_rgb_uint8(rgb), cell_px)
            r, c = divmod(int(actions[i, t]), n)
            box = [[r * cell_px, c * cell_px, (r + 1) * cell_px, (c + 1) * cell_px]]
            panels.append(draw_boxes(panel, box, colors=[[0, 255, 0]], thickness=2))
            titles.append(f"t={t} max p={probs[i, t].max():.2f}")
        titles[0] = f"y={labels[i]} pred={preds[i]} | " + titles[0]
        written.append(save_grid(panels, str(out_dir / f"heatmap_{i}.png"), titles=titles,
                                 ncols=len(panels)))
    return written
