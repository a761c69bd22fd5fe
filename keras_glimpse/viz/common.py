"""Drawing helpers shared by every method: boxes on images, layouts, PNGs, GIFs.

Boxes, dots, masks and layouts are plain numpy. Text, GIFs and PNG images need
Pillow and PNG grids matplotlib; both are imported lazily and come with
`pip install 'keras_glimpse[viz]'`. Every helper returns a new `(H, W, 3)`
uint8 array (or the path it wrote); none changes its input.

Conventions (docs/architecture.md): locations are `(y, x)` in `[-1, 1]`;
boxes are `(y1, x1, y2, x2)` in pixels.
"""

import os

import numpy as np

PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
], dtype=np.uint8)


def _require(module):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"keras_glimpse.viz needs {module.split('.')[0]} for this; install the "
            "`viz` extra: pip install 'keras_glimpse[viz]' (matplotlib, Pillow)."
        ) from e


def to_rgb_uint8(image):
    """(H, W), (H, W, 1) or (H, W, 3) float in [0, 1] or uint8 -> (H, W, 3) uint8."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Expected an image (H, W[, C]) with C in 1, 3, 4; received shape {image.shape}.")
    image = image[..., :3]
    if image.dtype != np.uint8:
        lo, hi = float(np.min(image)), float(np.max(image))
        if lo < 0.0 or hi > 1.0:  # e.g. standardised inputs: rescale for display
            image = (image - lo) / max(hi - lo, 1e-8)
        image = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image


def locations_to_boxes(locations, image_shape, size):
    """Locations `(..., 2)` (y, x) in [-1, 1] -> boxes `(..., 4)` (y1, x1, y2, x2) px
    of a `size` (int or (h, w)) pixel square centred on each location."""
    locations = np.asarray(locations, dtype=np.float32)
    h, w = int(image_shape[0]), int(image_shape[1])
    sh, sw = (size, size) if np.isscalar(size) else size
    cy = (locations[..., 0] + 1.0) * 0.5 * h
    cx = (locations[..., 1] + 1.0) * 0.5 * w
    return np.stack([cy - sh / 2, cx - sw / 2, cy + sh / 2, cx + sw / 2], axis=-1)


def draw_boxes(image, boxes, colors=None, thickness=1, fill=False, clip=True):
    """Draws box outlines (or filled boxes) on an image.

    Args:
        image: (H, W[, C]) float in [0, 1] or uint8.
        boxes: (N, 4) `(y1, x1, y2, x2)` in pixels, end-exclusive: the pixels
            `floor(y1) .. ceil(y2) - 1` (the same for x); drawn in order.
        colors: (N, 3) uint8 or None (the palette, one colour per box).
        thickness: line width in pixels, drawn inside the box.
        fill: fill the boxes instead of outlining them.
        clip: clip each box to the image first, so that every box shows four
            sides; with `clip=False` the parts outside the image are cut off.

    Returns:
        (H, W, 3) uint8 copy with the boxes drawn.
    """
    out = to_rgb_uint8(image).copy()
    h, w = out.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if colors is None:
        colors = PALETTE[np.arange(len(boxes)) % len(PALETTE)]
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    t = max(int(thickness), 1)
    for (y1, x1, y2, x2), color in zip(boxes, colors):
        y1, y2 = int(np.floor(y1)), int(np.ceil(y2)) - 1
        x1, x2 = int(np.floor(x1)), int(np.ceil(x2)) - 1
        if clip:
            y1, y2 = min(max(y1, 0), h - 1), min(max(y2, 0), h - 1)
            x1, x2 = min(max(x1, 0), w - 1), min(max(x2, 0), w - 1)
        if y2 < y1 or x2 < x1:
            continue
        if fill:
            bands = [(y1, y2 + 1, x1, x2 + 1)]
        else:
            bands = [(y1, min(y1 + t, y2 + 1), x1, x2 + 1),
                     (max(y2 - t + 1, y1), y2 + 1, x1, x2 + 1),
                     (y1, y2 + 1, x1, min(x1 + t, x2 + 1)),
                     (y1, y2 + 1, max(x2 - t + 1, x1), x2 + 1)]
        for r0, r1, c0, c1 in bands:
            r0, r1, c0, c1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
            if r0 < r1 and c0 < c1:
                out[r0:r1, c0:c1] = color
    return out


def draw_dots(image, centers, radius=2, color=(120, 160, 255)):
    """Draws filled dots of `radius` pixels at `centers` (N, 2) `(y, x)` in pixels."""
    out = to_rgb_uint8(image).copy()
    yy, xx = np.mgrid[:out.shape[0], :out.shape[1]]
    for cy, cx in np.asarray(centers, np.float32).reshape(-1, 2):
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= (radius + 0.5) ** 2] = color
    return out


def draw_text(image, text, xy=(2, 2), color=(0, 0, 0)):
    """Writes `text` with Pillow's default font, its top-left corner at `xy` = (x, y) px."""
    image_mod = _require("PIL.Image")
    draw_mod = _require("PIL.ImageDraw")
    picture = image_mod.fromarray(to_rgb_uint8(image))
    draw_mod.Draw(picture).text(tuple(xy), str(text), fill=tuple(int(c) for c in color))
    return np.array(picture)


def stack(images, axis=1, gap=0, fill=0, end_gap=False):
    """Lays images side by side (`axis=1`) or one under another (`axis=0`).

    Images of different sizes are aligned top-left; `gap` pixels separate
    them (and follow the last one with `end_gap`); the background is `fill`
    (a grey level or an RGB colour). Returns one (H, W, 3) uint8 array.
    """
    images = [to_rgb_uint8(im) for im in images]
    if not images:
        raise ValueError("stack needs at least one image.")
    if axis not in (0, 1):
        raise ValueError(f"`axis` must be 0 or 1; received axis={axis!r}.")
    gap = int(gap)
    along = sum(im.shape[axis] for im in images) + gap * (len(images) - 1 + bool(end_gap))
    across = max(im.shape[1 - axis] for im in images)
    out = np.empty((along, across, 3) if axis == 0 else (across, along, 3), np.uint8)
    out[...] = fill
    pos = 0
    for im in images:
        h, w = im.shape[:2]
        if axis == 0:
            out[pos:pos + h, :w] = im
        else:
            out[:h, pos:pos + w] = im
        pos += im.shape[axis] + gap
    return out


def overlay_mask(image, mask, alpha=0.6):
    """Darkens the parts of `image` where `mask` (G, G) is 0 (patch masks)."""
    out = to_rgb_uint8(image).astype(np.float32)
    h, w = out.shape[:2]
    mask = np.asarray(mask, dtype=np.float32)
    ry, rx = -(-h // mask.shape[0]), -(-w // mask.shape[1])
    full = np.kron(mask, np.ones((ry, rx), np.float32))[:h, :w]
    out = out * (1.0 - alpha * (1.0 - full[..., None]))
    return out.astype(np.uint8)


def upscale(image, factor):
    """Nearest-neighbour upscaling of (H, W, C) by an integer factor (small images)."""
    factor = max(int(factor), 1)
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)


def trajectory_frames(image, boxes, scale=1):
    """Frames of a glimpse trajectory: frame t shows boxes 0..t (latest thickest)."""
    frames = []
    base = upscale(to_rgb_uint8(image), scale)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale
    for t in range(len(boxes)):
        frame = draw_boxes(base, boxes[:t], colors=PALETTE[np.arange(t) % len(PALETTE)])
        frame = draw_boxes(frame, boxes[t:t + 1], colors=PALETTE[[t % len(PALETTE)]],
                           thickness=2)
        frames.append(frame)
    return frames or [base]


def save_gif(frames, path, duration_ms=500, loop=0):
    """Saves frames ((H, W, 3) arrays) as an animated GIF with Pillow; returns `path`."""
    image_mod = _require("PIL.Image")
    frames = [image_mod.fromarray(to_rgb_uint8(f)) for f in frames]
    if not frames:
        raise ValueError("save_gif needs at least one frame.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(duration_ms),
                   loop=int(loop))
    return path


def save_image(image, path):
    """Saves one image as a PNG (or any format Pillow infers from `path`); returns `path`."""
    image_mod = _require("PIL.Image")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image_mod.fromarray(to_rgb_uint8(image)).save(path)
    return path


def save_grid(images, path, titles=None, ncols=None, cell_inches=1.6):
    """Saves images in a grid PNG with matplotlib (Agg backend); returns `path`."""
    matplotlib = _require("matplotlib")
    matplotlib.use("Agg", force=False)
    plt = _require("matplotlib.pyplot")
    images = list(images)
    if not images:
        raise ValueError("save_grid needs at least one image.")
    n = len(images)
    ncols = int(ncols or min(n, 8))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_inches * ncols, cell_inches * nrows),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(to_rgb_uint8(images[i]), interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def mosaic(images, ncols=None, pad=2):
    """Tiles equally sized `(H, W, 3)` uint8 images into one array (numpy only)."""
    images = [to_rgb_uint8(im) for im in images]
    if not images:
        raise ValueError("mosaic needs at least one image.")
    h, w = images[0].shape[:2]
    ncols = int(ncols or min(len(images), 8))
    nrows = -(-len(images) // ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = im
    return out


def trajectory_images(model, images, labels=None):
    """Frames of a `GlimpseModel`'s greedy rollout on a batch.

    Draws `locations` as boxes of `model.glimpse_size` pixels (or a quarter of
    the image), `boxes` as given, and `patch_mask` as darkened patches.

    Returns:
        `(frames, titles)`: per image, its list of frames (frame t shows glimpses
        0..t, the latest thickest) and a title (prediction / label for classifiers).
    """
    images = np.asarray(images)
    out = {k: np.asarray(v) for k, v in model.export_outputs(images, mode="greedy").items()}
    h, w = images.shape[1:3]
    scale = max(1, 128 // max(h, w))
    preds = out["predictions"]
    frames, titles = [], []
    for i in range(len(images)):
        if getattr(model, "prediction_type", "") == "classification" and preds.ndim == 2:
            title = f"pred {int(np.argmax(preds[i]))}"
            if labels is not None:
                title += f" / true {np.asarray(labels).reshape(len(images), -1)[i, 0]}"
            titles.append(title)
        else:
            titles.append(f"#{i}")
        if "locations" in out:
            size = getattr(model, "glimpse_size", None) or max(h, w) // 4
            boxes = locations_to_boxes(out["locations"][i], (h, w), size)
        elif "boxes" in out:
            boxes = out["boxes"][i].reshape(-1, 4)
        else:
            boxes = np.zeros((0, 4), np.float32)
        base = images[i]
        if "patch_mask" in out:
            mask = out["patch_mask"][i]
            if mask.ndim == 1:  # (G*G,) flattened grid
                g = int(round(np.sqrt(mask.size)))
                mask = mask.reshape(g, g)
            base = overlay_mask(base, mask)
        frames.append(trajectory_frames(base, boxes, scale))
    return frames, titles


def visualize_trajectories(model, images, labels, out_dir, max_gifs=4):
    """Generic visualisation of a `GlimpseModel`'s greedy rollout
    (`trajectory_images`): writes `trajectories.png` (final frames, titled
    prediction/label) and `trajectory_<i>.gif` for the first `max_gifs` images.

    Returns:
        list of written paths.
    """
    frames, titles = trajectory_images(model, images, labels)
    written = [save_gif(f, os.path.join(out_dir, f"trajectory_{i}.gif"))
               for i, f in enumerate(frames[:max_gifs])]
    written.insert(0, save_grid([f[-1] for f in frames],
                                os.path.join(out_dir, "trajectories.png"), titles=titles))
    return written
