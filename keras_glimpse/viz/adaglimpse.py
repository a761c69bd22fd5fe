"""Pictures of AdaGlimpse: the glimpses taken so far and the prediction after each."""

import os

import numpy as np
import tensorflow as tf

from keras_glimpse.viz.common import (draw_boxes, draw_text, save_gif, stack, to_rgb_uint8,
                                      upscale)

NEWEST, EARLIER = (255, 0, 0), (255, 255, 0)  # glimpse boxes
HIT, OTHER = (0, 160, 0), (80, 80, 200)  # class bars: the label's, the others
HEADER = 14  # pixels of the caption above each frame


def visualize(model, images, labels=None, out_dir=".", mode="greedy", duration_ms=500):
    """Writes one animated GIF per image, `adaglimpse_<i:03d>.gif`.

    Each frame t (0..T) shows, left, the image with the glimpses taken so far
    (the newest in red) and, right, the prediction after t glimpses: the
    reconstruction, the class probabilities as bars (the top 10, the label's
    in green) or the segmentation argmax. Needs Pillow.

    Args:
        model: an `AdaGlimpse`.
        images: `(B, H, W, C)` normalised images.
        labels: `(B,)` int labels (classification; optional) or None.
        out_dir: output folder (created).
        mode: `"greedy"` or `"sample"` rollouts.
        duration_ms: frame duration of the GIFs.

    Returns:
        list of written file paths.
    """
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    out = model.rollout(images, mode=mode, return_steps=True)
    steps = out["step_predictions"].numpy()  # (T+1, B, ...)
    boxes = out["boxes"].numpy()
    os.makedirs(out_dir, exist_ok=True)
    mean = np.asarray(model.pixel_mean or [0.0])
    std = np.asarray(model.pixel_std or [1.0])
    h, w, _ = model.image_shape
    zoom = max(1, 192 // max(h, w))

    def to_rgb(x):  # un-normalised, upscaled
        return upscale(to_rgb_uint8(np.clip((x * std + mean) * 255.0, 0, 255).astype("uint8")),
                       zoom)

    rng = np.random.default_rng(0)
    palette = rng.integers(0, 255, size=(max(model.num_classes or 1, 1), 3)).astype("uint8")
    paths = []
    for i in range(images.shape[0]):
        base = to_rgb(images[i].numpy())
        frames = []
        for t in range(model.num_glimpses + 1):
            left = draw_boxes(base, boxes[i, :t] * zoom, colors=[EARLIER] * (t - 1) + [NEWEST],
                              thickness=2, clip=False) if t else base
            pred = steps[t, i]
            if model.task == "reconstruction":
                right = to_rgb(pred)
            elif model.task == "segmentation":
                right = upscale(palette[pred.argmax(-1)], zoom)
            else:
                label = None if labels is None else int(np.asarray(labels)[i])
                right = _class_bars(pred, label, h * zoom, w * zoom)
            frame = stack([left, right], axis=1, gap=4, fill=255)
            frame = stack([np.full((HEADER,) + frame.shape[1:], 255, np.uint8), frame], axis=0)
            frames.append(draw_text(frame, f"glimpses: {t}", (2, 1), (0, 0, 0)))
        paths.append(save_gif(frames, os.path.join(out_dir, f"adaglimpse_{i:03d}.gif"),
                              duration_ms=duration_ms))
    return paths


def _class_bars(logits, label, height, width):
    """The 10 most probable classes as horizontal bars, each labelled with its class id."""
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top = np.argsort(-probs)[:10]
    bar_h = height // 10
    bars = [[r * bar_h, 0, (r + 1) * bar_h - 1, int(probs[k] * (width - 30)) + 1]
            for r, k in enumerate(top)]
    colors = [HIT if label is not None and k == label else OTHER for k in top]
    out = draw_boxes(np.full((height, width, 3), 255, np.uint8), bars, colors=colors, fill=True)
    for r, k in enumerate(top):
        out = draw_text(out, str(int(k)), (width - 28, r * bar_h), (0, 0, 0))
    return out
