"""One export path for every method: a SavedModel with `serve` and `sample`.

`export_saved_model(model, path)` writes a SavedModel whose two signatures
return the prediction **and the glimpse trajectory**:

- `serve(images)`: one deterministic rollout (greedy / mean action).
- `sample(images)`: `num_samples` stochastic rollouts; predictions averaged
  (log-probabilities for classifiers), trajectories stacked on a leading axis.
- `serve_early_exit(images, stop_threshold)` (models with
  `supports_early_exit`, e.g. RAM): the greedy rollout that stops each image
  once its top class probability reaches `stop_threshold`, with
  `glimpses_used` per image (`keras_glimpse.early_exit`).

The model must follow the `GlimpseModel` contract (`export_outputs`). Both
this function and Keras' own `model.export(path)` (overridden by
`GlimpseModel`) write the same `keras.export.ExportArchive` (`make_archive`).
The
folder is written atomically: into a temporary sibling that is renamed into
place, so a failed export never destroys an existing export at `path`; an
earlier export is replaced only when asked (`overwrite=True`), and a folder
that is not an export (above all a training `model_dir`) never is.
The result loads with plain `tf.saved_model.load`; neither keras nor
tensorflow_probability is needed to serve it.
"""

import os
import pathlib
import shutil
import tempfile

import tensorflow as tf


def _seed_generator_states(model):
    states, seen = [], set()
    layers = model._flatten_layers(include_self=True, recursive=True) if hasattr(
        model, "_flatten_layers") else [model]
    for layer in layers:
        for generator in getattr(layer, "_seed_generators", None) or ():
            var = getattr(generator.state, "value", generator.state)
            if id(var) not in seen:
                seen.add(id(var))
                states.append(var)
    return states


def make_archive(model, num_samples=10):
    """A `keras.export.ExportArchive` with the `serve` and `sample` endpoints.

    This is the one export path: `export_saved_model` writes it and
    `GlimpseModel.export(path)` (Keras' own `model.export`) goes through it.
    `serve` is also the archive's `serving_default`.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    # keras.random.SeedGenerator states are not part of the TF object graph
    # of a Keras model; track them so that the stochastic `sample` endpoint
    # (which advances them) can be saved.
    for state in _seed_generator_states(model):
        archive.track(state)
    spec = tf.TensorSpec((None,) + tuple(model.image_shape), tf.float32, name="images")
    archive.add_endpoint("serve", lambda images: model.export_outputs(images, mode="greedy"),
                         input_signature=[spec])
    archive.add_endpoint(
        "sample",
        lambda images: model.export_outputs(images, mode="sample", num_samples=int(num_samples)),
        input_signature=[spec])
    if getattr(model, "supports_early_exit", False):
        archive.add_endpoint(
            "serve_early_exit", model.export_early_exit,
            input_signature=[spec, tf.TensorSpec((), tf.float32, name="stop_threshold")])
    return archive


def _is_saved_model(path):
    return (path / "saved_model.pb").is_file()


def _model_dir_inside(path):
    """The first training `model_dir` (a folder with `config.json` and
    `checkpoints/`) at or under `path`, or None."""
    for config in [path / "config.json", *path.rglob("config.json")]:
        if config.is_file() and (config.parent / "checkpoints").is_dir():
            return config.parent
    return None


def check_destination(path, overwrite=False):
    """Raises unless `path` may receive an export: it must not exist, or be a
    previous export (a SavedModel) replaced only with `overwrite=True`. A file,
    a folder with other contents, and a training `model_dir` are never replaced."""
    path = pathlib.Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise FileExistsError(f"Export destination '{path}' is a file; choose a folder "
                              "that does not exist yet.")
    run = _model_dir_inside(path)
    if run is not None:
        raise FileExistsError(
            f"Export destination '{path}' holds the training run '{run}'; exporting there "
            "would delete it. Choose another folder (default: <model_dir>/export).")
    if not any(path.iterdir()):
        return
    if not _is_saved_model(path):
        raise FileExistsError(
            f"Export destination '{path}' is a non-empty folder that is not a SavedModel; "
            "choose a folder that does not exist yet.")
    if not overwrite:
        raise FileExistsError(f"'{path}' holds an earlier export; pass overwrite=True "
                              "(apps: --overwrite) to replace it.")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_into_place(tmp, path):
    """Renames `tmp` to `path`; an existing `path` is moved aside first and
    restored if the second rename fails."""
    if not path.exists():
        os.replace(tmp, path)
        return
    backup = path.parent / f".{path.name}.old-{os.getpid()}"
    os.replace(path, backup)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(backup, path)
        raise
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.remove(backup)


def export_saved_model(model, path, num_samples=10, overwrite=False):
    """Writes `model` as a SavedModel at `path` and returns the path.

    Args:
        model: a built `GlimpseModel`.
        path: destination folder. It must not exist, be empty, or hold an
            earlier export (replaced only with `overwrite=True`, and only after
            the new one was written successfully). A file, a folder with other
            contents and a training `model_dir` are refused.
        num_samples: M, the number of rollouts averaged by the `sample` endpoint.
        overwrite: replace an earlier export at `path`.

    Raises:
        FileExistsError: `path` may not be written (see above).
        TypeError: `model` does not implement `export_outputs`.
    """
    if not hasattr(model, "export_outputs"):
        raise TypeError(
            f"{type(model).__name__} has no export_outputs(); export needs a "
            "keras_glimpse GlimpseModel."
        )
    if int(num_samples) < 1:
        raise ValueError(f"`num_samples` must be >= 1; received num_samples={num_samples}.")
    path = pathlib.Path(path)
    check_destination(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not model.built:
        model.build_from_image_shape()
    archive = make_archive(model, num_samples)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        archive.write_out(str(tmp), verbose=False)
        # mkdtemp makes the folder 0700; a SavedModel is read by servers as other users.
        os.chmod(tmp, 0o777 & ~_umask())
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(path)


def load_exported(path):
    """Loads an export with plain TensorFlow; returns the `tf.saved_model.load` object."""
    path = pathlib.Path(path)
    if not (path / "saved_model.pb").exists():
        raise FileNotFoundError(
            f"No SavedModel at '{path}'. Write one with apps.export or "
            "keras_glimpse.export.export_saved_model."
        )
    return tf.saved_model.load(str(path))
