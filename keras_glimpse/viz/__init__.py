"""Pictures of what the models look at; the models themselves draw nothing.

- `keras_glimpse.viz.common`: the helpers every method shares (boxes, dots,
  text, masks, layouts, GIF/PNG writers) and the generic trajectory pictures of
  any `GlimpseModel` (`trajectory_images`, `visualize_trajectories`). They are
  re-exported here: `from keras_glimpse import viz; viz.draw_boxes(...)`.
- One module per method, each with `visualize(model, images, labels, out_dir,
  **options)` built on the model's public `rollout(...)` output:
  `viz.ram` (RAM and URAM), `viz.recap`, `viz.patchdrop`, `viz.ordinal`,
  `viz.adaglimpse`.
- `visualize(model, images, labels, out_dir, **options)` picks the module by
  the model's class (`VISUALIZERS`) and falls back to
  `visualize_trajectories` for other `GlimpseModel`s.

Method modules are imported on first use, so `import keras_glimpse.viz` stays
numpy-only; Pillow and matplotlib are imported lazily (the `viz` extra).
"""

import importlib

from keras_glimpse.viz.common import (  # noqa: F401
    PALETTE, _require, draw_boxes, draw_dots, draw_text, locations_to_boxes, mosaic,
    overlay_mask, save_gif, save_grid, save_image, stack, to_rgb_uint8, trajectory_frames,
    trajectory_images, upscale, visualize_trajectories)

# Model class name -> the module (its import path, or any object with a
# `visualize(model, images, labels, out_dir, **options)`) that draws it. Looked
# up along the class's MRO, so subclasses of a method model draw like it.
VISUALIZERS = {
    "RAM": "keras_glimpse.viz.ram",
    "URAM": "keras_glimpse.viz.ram",
    "RECAP": "keras_glimpse.viz.recap",
    "PatchDrop": "keras_glimpse.viz.patchdrop",
    "OrdinalLocalizer": "keras_glimpse.viz.ordinal",
    "AdaGlimpse": "keras_glimpse.viz.adaglimpse",
}


def visualizer(model):
    """The `visualize` function that draws `model`'s class (see `VISUALIZERS`),
    or `visualize_trajectories` for other `GlimpseModel`s.

    Raises:
        TypeError: `model` is neither a registered class nor a `GlimpseModel`.
    """
    for cls in type(model).__mro__:
        target = VISUALIZERS.get(cls.__name__)
        if target is not None:
            if isinstance(target, str):
                target = importlib.import_module(target)
            return target.visualize
    from keras_glimpse.models.glimpse_model import GlimpseModel

    if isinstance(model, GlimpseModel):
        return visualize_trajectories
    raise TypeError(f"keras_glimpse.viz cannot draw a {type(model).__name__}: it is not a "
                    f"GlimpseModel and no visualizer is registered for it in VISUALIZERS "
                    f"({', '.join(sorted(VISUALIZERS))}).")


def visualize(model, images, labels=None, out_dir=".", **options):
    """Draws what `model` looks at on `images` into `out_dir`.

    Args:
        model: a keras_glimpse model (any `GlimpseModel`).
        images: `(B, H, W, C)` batch, as the model takes it.
        labels: the batch's targets (class ids, boxes, ...) or None where the
            method's pictures do not need them.
        out_dir: output folder (created).
        **options: the method module's options (e.g. `num_images`, `mode`,
            `max_images`, `max_gifs`); see `viz.<method>.visualize`.

    Returns:
        list of the written file paths.
    """
    return visualizer(model)(model, images, labels, out_dir, **options)


__all__ = [
    "PALETTE", "VISUALIZERS", "draw_boxes", "draw_dots", "draw_text", "locations_to_boxes",
    "mosaic", "overlay_mask", "save_gif", "save_grid", "save_image", "stack", "to_rgb_uint8",
    "trajectory_frames", "trajectory_images", "upscale", "visualize", "visualize_trajectories",
    "visualizer",
]
