"""Predicts one image file and draws where the model looked.

    python -m apps.predict --model_dir=DIR --image=FILE [--out=FILE] [--mode=greedy|sample] [--seed=N]
    python -m apps.predict --model=NAME --weights=pretrained|PATH --image=FILE ...

The image (PNG/JPEG) is converted to the model's input
(`keras_glimpse.data.image_file.load_image`: its size, channels and the
preset's pixel scaling). Prints the prediction (top-3 classes with their
probabilities for classifiers; the box, the reconstruction RMSE or the class
map otherwise), then one line per glimpse of the trajectory, and writes the
picture of where it looked (`keras_glimpse.viz`) to `--out` (default
`<image stem>_glimpses.png` in the current folder).
"""

import os
import pathlib
import shutil
import tempfile

from absl import app, flags

from apps import quiet
from apps.flags import FLAGS, overrides

flags.DEFINE_string("image", None, "apps.predict: the image file (PNG or JPEG) to predict.")
flags.DEFINE_string("out", None, "apps.predict: the picture of the glimpses "
                    "(default: <image stem>_glimpses.png in the current folder).")
flags.DEFINE_enum("mode", "greedy", ["greedy", "sample"],
                  "apps.predict: greedy (deterministic) or sampled rollout.")


def restore(model_dir=None, model=None, weights=None, checkpoint="best", model_overrides=None):
    """`(model, config)` from a model_dir of apps.train, or the preset `model`
    with `weights` ('pretrained' or a path)."""
    from keras_glimpse import registry, training

    if model_dir is None and model is not None and weights is None:
        raise ValueError(f"--model={model} needs --weights=pretrained or --weights=PATH "
                         "(a .keras or .weights.h5 file); an untrained model predicts nothing.")
    return training.restore_model(model_dir, model, checkpoint, model_overrides,
                                  weights=weights)


def _fmt(values):
    values = [float(v) for v in values]
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def summarize_prediction(model, prediction, image):
    """Lines describing one example's prediction (no batch axis)."""
    import numpy as np

    prediction = np.asarray(prediction, np.float32)
    kind = getattr(model, "prediction_type", "classification")
    if kind == "classification" and prediction.ndim == 1:
        probs = np.exp(prediction - prediction.max())
        probs /= probs.sum()
        top = np.argsort(-probs)[:3]
        lines = [f"prediction: class {int(top[0])} (probability {probs[top[0]]:.4f})"]
        lines += [f"  top-{k + 1}: class {int(c)}  p={probs[c]:.4f}" for k, c in enumerate(top)]
        return lines
    if kind == "segmentation" and prediction.ndim == 3:
        classes, counts = np.unique(prediction.argmax(-1), return_counts=True)
        share = ", ".join(f"{int(c)} ({n / counts.sum():.1%})" for c, n in zip(classes, counts))
        return [f"prediction: class map {prediction.shape[0]}x{prediction.shape[1]} over "
                f"{prediction.shape[-1]} classes; classes present: {share}"]
    if prediction.shape == tuple(image.shape):
        rmse = float(np.sqrt(np.mean((prediction - image) ** 2)))
        return [f"prediction: reconstruction {'x'.join(map(str, prediction.shape))}, "
                f"RMSE vs the input {rmse:.4f} (model input units)"]
    if prediction.shape == (4,):
        return [f"prediction: box (x1, y1, x2, y2) = {_fmt(prediction)} px"]
    return [f"prediction: {np.array2string(prediction.ravel()[:16], precision=3)} "
            f"(shape {prediction.shape})"]


def trajectory_lines(model, out):
    """One line per glimpse of example 0 of the rollout dict `out`."""
    import numpy as np

    keys = [k for k in getattr(model, "trajectory_keys", ()) if k in out]
    arrays = {k: np.asarray(out[k])[0] for k in keys}
    if "patch_mask" in arrays:  # one decision over a G x G grid: one line per kept patch
        mask = arrays.pop("patch_mask")
        kept = np.argwhere(mask > 0.5)
        lines = [f"glimpse {i + 1}: patch row {r}, col {c} of {mask.shape[0]}x{mask.shape[1]}"
                 for i, (r, c) in enumerate(kept)]
        return [f"trajectory: {len(kept)} of {mask.size} patches kept"] + lines
    steps = max((a.shape[0] for a in arrays.values() if a.ndim >= 1), default=0)
    size = getattr(model, "glimpse_size", None)
    scales = getattr(model, "num_scales", None)
    extra = ""
    if size is not None and "locations" in arrays:
        extra = f", size {size}px" + (f" x {scales} scale(s)" if scales else "")
    names = {"locations": "location (y, x)", "boxes": "box"}
    lines = [f"trajectory: {steps} step(s)"]
    for t in range(steps):
        parts = []
        for k, a in arrays.items():
            if a.ndim == 0 or a.shape[0] <= t:
                continue
            v = a[t]
            parts.append(f"{names.get(k, k)} {_fmt(np.ravel(v)) if v.ndim else v}")
        lines.append(f"glimpse {t + 1}: " + "; ".join(parts) + (extra if "locations" in arrays
                                                                 else ""))
    return lines


def draw(model, images, labels, out_path, mode="greedy"):
    """Writes the picture of where `model` looked to `out_path` (PNG) with
    `keras_glimpse.viz.visualize`; a GIF of the glimpses, when the method draws
    one, goes beside it as `<stem>.gif`. Returns the written paths."""
    import inspect

    import numpy as np

    from keras_glimpse import viz

    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fn = viz.visualizer(model)
    options = {"mode": mode} if "mode" in inspect.signature(fn).parameters else {}
    with tempfile.TemporaryDirectory() as tmp:
        written = [pathlib.Path(p) for p in fn(model, images, labels, tmp, **options) or ()]
        gifs = [p for p in written if p.suffix == ".gif"]
        pngs = [p for p in written if p.suffix == ".png"]
        if not gifs and not pngs:
            raise ValueError(f"keras_glimpse.viz drew nothing for {type(model).__name__}.")
        result = [str(out_path)]
        if gifs:  # every frame (glimpse) side by side
            from PIL import Image, ImageSequence

            with Image.open(gifs[0]) as gif:
                frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
            viz.save_image(viz.stack(frames, axis=1, gap=4, fill=255), str(out_path))
            gif_path = out_path.with_suffix(".gif")
            shutil.copyfile(gifs[0], gif_path)
            result.append(str(gif_path))
        else:
            shutil.copyfile(pngs[0], out_path)
    return result


def main(argv):
    del argv
    import numpy as np

    if not FLAGS.image:
        raise ValueError("Pass --image=FILE (a PNG or JPEG).")
    import keras

    from keras_glimpse.data import image_file

    keras.utils.set_random_seed(int(FLAGS.seed))
    model, config = restore(FLAGS.model_dir, FLAGS.model, FLAGS.weights, FLAGS.checkpoint,
                            overrides())
    image = image_file.load_image(FLAGS.image, model.image_shape, config.get("data"))
    images = image[None]
    out = model.rollout(model.check_finite(model.check_images(images)), mode=FLAGS.mode,
                        training=False)
    prediction = np.asarray(out["predictions"])[0]
    print(f"image: {FLAGS.image} -> {'x'.join(map(str, model.image_shape))}; model "
          f"{getattr(model, 'preset_name', None) or config.get('model')} ({FLAGS.mode})")
    for line in summarize_prediction(model, prediction, image):
        print(line)
    for line in trajectory_lines(model, out):
        print(line)
    # The methods' pictures mark a label; the true one is unknown here, so the
    # model's own answer stands in (classes: its top class; boxes: its final box).
    labels = None
    if getattr(model, "prediction_type", None) == "classification" and prediction.ndim == 1:
        labels = np.array([int(np.argmax(prediction))])
    elif prediction.shape == (4,):
        labels = prediction[None]
    stem = pathlib.Path(FLAGS.image).stem
    out_path = FLAGS.out or os.path.join(os.getcwd(), f"{stem}_glimpses.png")
    for path in draw(model, images, labels, out_path, FLAGS.mode):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
