"""Pictures of PatchDrop: the low-resolution view, the kept patches, the keep frequency."""

import os

import numpy as np
import tensorflow as tf

from keras_glimpse.viz.common import _require, overlay_mask, to_rgb_uint8, upscale


def visualize(model, images, labels, out_dir, max_images=16):
    """Writes one figure per image and a patch-keep-frequency heatmap.

    Each `patchdrop_<i>.png` shows the LR view the policy saw, the kept
    HR patches (dropped ones dark) and the prediction; `patch_heatmap.png`
    shows how often each patch is kept over all given images. Needs matplotlib.

    Args:
        model: a `PatchDrop`.
        images: `(B, H, W, C)` normalised images.
        labels: `(B,)` int labels (or None).
        out_dir: output folder (created).
        max_images: at most this many per-image figures.

    Returns:
        list of written paths (heatmap last).
    """
    plt = _require("matplotlib.pyplot")
    os.makedirs(out_dir, exist_ok=True)
    images = np.asarray(images, np.float32)
    out = model.rollout(tf.convert_to_tensor(images), mode="greedy", training=False)
    masks = np.asarray(out["patch_mask"])
    preds = np.argmax(np.asarray(out["predictions"]), -1)
    lr = np.asarray(model.low_resolution(images))
    paths = []
    for i in range(min(len(images), int(max_images))):
        kept = overlay_mask(images[i], masks[i], alpha=0.85)
        lr_up = upscale(to_rgb_uint8(lr[i]), model.lr_factor)
        title = f"pred {preds[i]}"
        if labels is not None:
            title += f" / true {int(np.asarray(labels)[i])}"
        fig, axes = plt.subplots(1, 2, figsize=(4.4, 2.4))
        axes[0].imshow(lr_up, interpolation="nearest")
        axes[0].set_title("LR view", fontsize=8)
        axes[1].imshow(kept, interpolation="nearest")
        axes[1].set_title(f"kept {int(masks[i].sum())}/{model.num_patches}: {title}",
                          fontsize=8)
        g = model.grid_size
        ph, pw = model.image_shape[0] / g, model.image_shape[1] / g
        for k in range(1, g):
            axes[1].axhline(k * ph - 0.5, color="w", lw=0.5)
            axes[1].axvline(k * pw - 0.5, color="w", lw=0.5)
        for ax in axes:
            ax.axis("off")
        fig.tight_layout()
        path = os.path.join(out_dir, f"patchdrop_{i:03d}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    freq = masks.mean(axis=0)
    fig, ax = plt.subplots(figsize=(3.2, 2.8))
    im = ax.imshow(freq, vmin=0.0, vmax=1.0, cmap="viridis")
    for (r, c), v in np.ndenumerate(freq):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="w" if v < 0.6 else "k")
    ax.set_title(f"patch keep frequency (n={len(images)})", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = os.path.join(out_dir, "patch_heatmap.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
    return paths
