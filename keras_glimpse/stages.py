"""The one hand-off between training stages: copy named parts of an earlier model.

A multi-stage method declares, on its class,

- `stage_parts`: `{part: (attribute, ...)}`, the sub-layers/networks one part
  is made of (PatchDrop: `hr_classifier`, `lr_classifier`, `policy`; RECAP:
  `classifier`; ordinal: `embedding`; AdaGlimpse: `backbone`), and
- `init_parts()`: the parts its current `stage` takes from the previous stage.

`init_from(model, source, parts=None)` copies those parts' weights from
`source` (a `.keras` file, a `.weights.h5` file, a `model_dir` written by
`apps.train`, whose `checkpoints/best.keras` or else `last.keras` is read, or an
in-memory model) into `model`. It runs once, when a stage's training starts
(`training.run_training` with `config["init_from"]`, i.e. `apps.train
--init_from=...`), never in a constructor and never when a model is restored
from its own checkpoint or config.

    from keras_glimpse import stages
    stages.init_from(model, "runs/pretrain")                  # the stage's parts
    stages.init_from(model, "lr.keras", parts=["lr_classifier"])
"""

import logging
import os
import pathlib
import warnings

import keras

logger = logging.getLogger("keras_glimpse")

CHECKPOINT_NAMES = ("best.keras", "last.keras")
# The part that names every weight of the model (same architecture): what a
# single-stage method (no `stage_parts`) takes by default, e.g. to continue
# an earlier run with a new optimizer and learning rate.
WHOLE_MODEL = "model"


class StageError(ValueError):
    """An earlier stage's checkpoint does not fit this model (names the file and part)."""


def parse_spec(text):
    """`"PATH"` -> `{"source": PATH, "parts": None}`; `"p1,p2=PATH"` -> parts `[p1, p2]`.

    The `PART=` prefix is recognised only when the text before the first `=` is
    a comma-separated list of identifiers (so paths containing `=` still work).
    """
    if isinstance(text, dict):
        parts = text.get("parts")
        return {"source": str(text["source"]),
                "parts": None if parts is None else [str(p) for p in parts]}
    text = str(text)
    head, sep, tail = text.partition("=")
    if sep and head and all(p.strip().isidentifier() for p in head.split(",")):
        return {"source": tail, "parts": [p.strip() for p in head.split(",")]}
    return {"source": text, "parts": None}


def resolve_source(source):
    """The checkpoint file `source` names: itself, or a model_dir's best/last.keras.

    Raises:
        FileNotFoundError: nothing there (one line, naming the path).
        StageError: a file that is neither `.keras` nor `.weights.h5`.
    """
    path = pathlib.Path(os.fspath(source)).expanduser()
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / "checkpoints" / name).is_file():
                return path / "checkpoints" / name
        raise FileNotFoundError(
            f"init_from: '{path}' holds no checkpoints/best.keras or checkpoints/last.keras; "
            "pass the model_dir of a finished earlier stage (apps.train --model_dir).")
    if not path.is_file():
        raise FileNotFoundError(
            f"init_from: '{path}' does not exist; pass a .keras file, a .weights.h5 file or "
            "the model_dir of an earlier stage.")
    if not (path.name.endswith(".keras") or path.name.endswith(".weights.h5")):
        raise StageError(f"init_from: '{path}' must be a .keras file, a .weights.h5 file "
                         "or a model_dir.")
    return path


def _load_source(model, path):
    """The earlier-stage model held by `path` (weights only for `.weights.h5`)."""
    if path.name.endswith(".keras"):
        try:
            source = keras.saving.load_model(str(path), compile=False)
        except Exception as e:  # noqa: BLE001 - re-raised with the path
            raise StageError(f"init_from: could not load '{path}': {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}") from e
        if not isinstance(source, type(model)):
            raise StageError(f"init_from: '{path}' holds a {type(source).__name__}, not a "
                             f"{type(model).__name__}.")
        return source
    # .weights.h5: rebuild this model's architecture in each of its stages
    # (the previous stage's variables may differ) and take the first that loads.
    errors = []
    stages = getattr(type(model), "stage_names", None) or (getattr(model, "stage", None),)
    for stage in stages:
        config = model.get_config()
        config.pop("name", None)
        if stage is not None:
            config["stage"] = stage
        clone = type(model).from_config(config)
        if hasattr(clone, "build_from_image_shape"):
            clone.build_from_image_shape()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a skipped layer must not pass silently
                clone.load_weights(str(path))
        except Exception as e:  # noqa: BLE001 - collected, reported below
            errors.append(f"stage={stage!r}: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}")
            continue
        return clone
    raise StageError(f"init_from: '{path}' does not hold the weights of a "
                     f"{type(model).__name__} with this configuration ({'; '.join(errors)[:400]}).")


def _shapes(layer):
    return [tuple(w.shape) for w in layer.weights]


def default_parts(model):
    """The parts `model`'s stage takes from the previous stage (`init_parts()`)."""
    fn = getattr(model, "init_parts", None)
    return tuple(fn()) if fn is not None else ()


def init_from(model, source, parts=None):
    """Copies the weights of `parts` from the earlier-stage `source` into `model`.

    Args:
        model: the (built) model of this stage.
        source: a `.keras` file, a `.weights.h5` file, a `model_dir` of
            `apps.train` (its `checkpoints/best.keras`, else `last.keras`), or
            a model instance of the same class.
        parts: names of `type(model).stage_parts`, or `"model"` (every
            weight); `None`: `model.init_parts()`, or `"model"` for a method
            without stages.

    Returns:
        The list of parts copied.

    Raises:
        FileNotFoundError: `source` does not exist.
        StageError: the file cannot be read as this model, an unknown part, or
            a part whose weights do not match (one line naming file and part).
    """
    table = dict(getattr(type(model), "stage_parts", {}) or {})
    if parts is None and not table:
        parts = (WHOLE_MODEL,)  # a single-stage method continues from all its weights
    if isinstance(source, keras.Model):
        path, src = getattr(source, "name", "model"), source
    else:
        path = resolve_source(source)
        src = None
    parts = default_parts(model) if parts is None else tuple(parts)
    if not parts:
        raise StageError(
            f"init_from: {type(model).__name__}(stage={getattr(model, 'stage', None)!r}) takes "
            f"no part from an earlier stage by default; name them: parts from "
            f"{sorted(table) or 'none'} (apps.train: --init_from=PART=PATH).")
    unknown = [p for p in parts if p not in table and p != WHOLE_MODEL]
    if unknown:
        raise StageError(f"init_from: unknown part(s) {unknown} for {type(model).__name__}; "
                         f"its parts are {sorted(table)} ('{path}').")
    if not model.built and hasattr(model, "build_from_image_shape"):
        model.build_from_image_shape()
    if src is None:
        src = _load_source(model, path)
    if WHOLE_MODEL in parts:
        if _shapes(model) != _shapes(src):
            raise StageError(f"init_from: '{path}' is not this architecture: "
                             f"{len(src.weights)} arrays against this model's "
                             f"{len(model.weights)} (different model arguments?).")
        model.set_weights(src.get_weights())
        logger.info("init_from: every weight <- '%s'", path)
        return [WHOLE_MODEL]
    for part in parts:
        for attr in table[part]:
            dst, theirs = getattr(model, attr, None), getattr(src, attr, None)
            if theirs is None or dst is None:
                raise StageError(f"init_from: '{path}' has no {attr!r} for part '{part}'.")
            if _shapes(dst) != _shapes(theirs):
                raise StageError(
                    f"init_from: part '{part}' of '{path}' does not match this model: its "
                    f"{attr} has {len(theirs.weights)} arrays of shapes {_shapes(theirs)[:3]}..., "
                    f"this model's {len(dst.weights)} of shapes {_shapes(dst)[:3]}... "
                    "(different architecture arguments than the earlier stage?).")
        for attr in table[part]:
            getattr(model, attr).set_weights(getattr(src, attr).get_weights())
        logger.info("init_from: %s <- '%s'", part, path)
    return list(parts)


def apply(model, specs):
    """Runs `init_from` for each spec of `config["init_from"]` (see `parse_spec`).

    A spec without `parts` takes the stage's default parts except those other
    specs name explicitly. Returns `{part: source}`.
    """
    specs = [parse_spec(s) for s in specs or ()]
    named = {p for s in specs if s["parts"] is not None for p in s["parts"]}
    done = {}
    for spec in specs:
        parts = spec["parts"]
        if parts is None:
            parts = [p for p in default_parts(model) if p not in named]
            if not parts and named:
                continue
            parts = parts or None  # init_from's default (the whole model without stages)
        for part in init_from(model, spec["source"], parts):
            done[part] = spec["source"]
    return done


def legacy_init_from(cls, model_args):
    """Moves removed constructor arguments (`cls.legacy_init_args`: old name ->
    part, e.g. PatchDrop's `hr_classifier=PATH`) out of `model_args` into
    init_from specs, with a deprecation warning. Returns the specs."""
    specs = []
    for key, part in (getattr(cls, "legacy_init_args", {}) or {}).items():
        if key in model_args:
            value = model_args.pop(key)
            if value is None:
                continue
            logger.warning("%s=%s is deprecated: it now means --init_from=%s=%s (loaded once "
                           "when training starts).", key, value, part, value)
            specs.append({"source": str(value), "parts": [part]})
    return specs
