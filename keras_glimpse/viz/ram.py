"""Pictures of RAM and URAM: the retina's boxes, its contents and, per glimpse,
the class predicted from `h_t` (RAM) or the cumulative reconstruction (URAM).

Writes `<stem>.gif` (one frame per glimpse) and `<stem>.png` (all frames side
by side), with `<stem>` `ram_glimpses` or `uram_glimpses`.
"""

import os

import numpy as np
import tensorflow as tf

from keras_glimpse.viz.common import (draw_boxes, draw_dots, draw_text, save_gif, save_image,
                                      stack, to_rgb_uint8, upscale)

GREEN, RED, YELLOW = (40, 200, 60), (230, 40, 40), (250, 210, 40)
DOTS = (120, 160, 255)  # earlier glimpse locations


def visualize(model, images, labels=None, out_dir=".", num_images=6, mode="greedy",
              policy=None):
    """Draws a RAM or URAM rollout on the first `num_images` images.

    Every frame shows, per image, the glimpse boxes of all scales at the
    current step over the image (earlier locations as dots), the retina's
    contents at each scale, and for RAM the class predicted from `h_t`, in
    green when correct and red otherwise (`labels` needed), for URAM the
    cumulative reconstruction after the step.

    Args:
        model: a `RAM` or `URAM`.
        images: `(B, H, W, C)` images.
        labels: `(B,)` int labels (RAM); ignored for URAM.
        out_dir: output folder (created).
        num_images: at most this many images (rows of a frame).
        mode, policy: passed to `model.rollout`.

    Returns:
        `[gif_path, png_path]`.
    """
    images = model.check_images(tf.convert_to_tensor(images))[:num_images]
    out = model.rollout(images, mode=mode, policy=policy)
    if model.prediction_type == "classification":
        # The class each step would predict: the classifier applied to every h_t.
        preds = np.argmax(np.asarray(model.classifier(out["hidden_states"])), axis=-1)
        labels = np.asarray(labels)[:num_images].astype(int)
        recons, stem = None, "ram_glimpses"
    else:
        preds = labels = None
        recons, stem = np.asarray(out["reconstructions"]), "uram_glimpses"
    return _write(model, images, np.asarray(out["locations"]), preds, labels, recons, out_dir,
                  stem)


def _rgb(x):
    return to_rgb_uint8(np.clip(np.asarray(x, np.float32), 0.0, 1.0))


def _write(model, images, locations, preds, labels, recons, out_dir, stem):
    """One frame per glimpse (GIF) and all frames side by side (PNG)."""
    n, steps = locations.shape[:2]
    h, w = model.image_shape[:2]
    zoom = max(1, 160 // max(h, w))
    glimpses = np.stack([np.asarray(model.sensor(images, locations[:, t]))
                         for t in range(steps)], axis=1)  # (B, T, k, g, g, C)
    boxes = model.glimpse_boxes(locations) * zoom  # (B, T, k, 4)
    cell_h = h * zoom
    g_zoom = max(1, cell_h // (model.glimpse_size * model.num_scales))
    pictures = [upscale(_rgb(im), zoom) for im in np.asarray(images)]

    def panel(i, t):
        """Image with boxes + glimpse strip (+ reconstruction) of image i at step t."""
        colour = YELLOW if preds is None else GREEN if preds[i, t] == labels[i] else RED
        centres = (boxes[i, :t, 0, :2] + boxes[i, :t, 0, 2:]) / 2
        img = draw_dots(pictures[i], centres, radius=2, color=DOTS)
        for s in range(model.num_scales):
            img = draw_boxes(img, boxes[i, t, s], colors=[colour], thickness=2 if s == 0 else 1,
                             clip=False)
        text = f"t={t + 1}"
        if preds is not None:
            text += f" pred {preds[i, t]} (label {labels[i]})"
        cols = [draw_text(img, text, (2, 2), colour)]
        tiles = [upscale(_rgb(g), g_zoom) for g in glimpses[i, t]]
        rest = np.full((max(cell_h - sum(len(g) for g in tiles), 0),) + tiles[0].shape[1:], 30,
                       np.uint8)
        cols.append(stack(tiles + [rest], axis=0)[:cell_h])  # the retina, finest first
        if recons is not None:
            cols.append(upscale(_rgb(recons[i, t]), zoom))
        return stack(cols, axis=1, gap=4, fill=0)

    frames = [stack([panel(i, t) for i in range(n)], axis=0, gap=4, fill=0, end_gap=True)
              for t in range(steps)]
    os.makedirs(out_dir, exist_ok=True)
    gif = save_gif(frames, os.path.join(out_dir, f"{stem}.gif"), duration_ms=700)
    png = save_image(stack(frames, axis=1, gap=8, fill=255, end_gap=True),
                     os.path.join(out_dir, f"{stem}.png"))
    return [gif, png]
