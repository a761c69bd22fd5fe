"""Name-keyed model registry: TOML presets in, compiled `keras.Model`s out.

A preset is one TOML table in a file under `registry/` (shipped inside the
package as `keras_glimpse/registry/*.toml`) or in any folder listed in the
`KERAS_GLIMPSE_REGISTRY` environment variable (`os.pathsep`-separated). Presets
are data only: the `builder` key names an entry of `BUILDERS` below, never an
import path, so reading a preset executes no code.

Schema of one preset (all sub-tables optional except `builder`):

```toml
[ram_cluttered60]
builder = "ram"                       # a key of BUILDERS
description = "one line"
paper = "which paper setting this reproduces"
paper_metric = "test_error"           # what `paper_value` measures
paper_value = 4.04                    # the number the paper reports
paper_setting = "ImageNet, ViT-B"     # only when paper_value comes from another setting
paper_target = 5.3                    # what apps.reproduce counts as reproduced
[ram_cluttered60.model]               # constructor arguments of the model
num_glimpses = 8
[ram_cluttered60.data]                # arguments of keras_glimpse.data.load
name = "cluttered_mnist"
[ram_cluttered60.training]            # defaults used by the apps
batch_size = 128
epochs = 10
learning_rate = 3e-4
[ram_cluttered60.training.stages.pretrain]   # per-stage overrides
epochs = 5
[ram_cluttered60.reproduce]           # what apps.reproduce runs beside the preset
baselines = [{label = "random glimpses", overrides = {policy = "random"}, paper_value = 14.4}]

[ram_cluttered60_small]
extends = "ram_cluttered60"           # that preset's tables, with these keys over them
description = "..."
[ram_cluttered60_small.model]
hidden_units = 128                    # every other model argument as in ram_cluttered60
```
"""

import copy
import difflib
import importlib
import os
import pathlib
import zipfile
import tomllib

# builder name -> "module:attribute". The attribute is a keras.Model subclass
# (or a function) called with the preset's `model` table plus overrides.
BUILDERS = {
    "ram": "keras_glimpse.models.ram:RAM",
    "uram": "keras_glimpse.models.uram:URAM",
    "recap": "keras_glimpse.models.recap:RECAP",
    "patchdrop": "keras_glimpse.models.patchdrop:PatchDrop",
    "ordinal": "keras_glimpse.models.ordinal:OrdinalLocalizer",
    "adaglimpse": "keras_glimpse.models.adaglimpse:AdaGlimpse",
}

_PRESET_KEYS = {
    "builder", "description", "paper", "paper_metric", "paper_value",
    "paper_table", "paper_setting", "paper_target", "model", "data", "training",
    "reproduce", "extends",
}


class PresetError(ValueError):
    """A preset file is malformed. The message names the file and the key."""


def _package_registry_dir():
    return pathlib.Path(__file__).resolve().parent / "registry"


def registry_dirs():
    """Folders searched for presets, in order (later folders override)."""
    dirs = []
    packaged = _package_registry_dir()
    source = pathlib.Path(__file__).resolve().parent.parent / "registry"
    # The installed wheel carries keras_glimpse/registry/; a source checkout
    # has the top-level registry/ folder. Prefer the source tree when both
    # exist so edits are picked up without reinstalling.
    if source.is_dir():
        dirs.append(source)
    elif packaged.is_dir():
        dirs.append(packaged)
    extra = os.environ.get("KERAS_GLIMPSE_REGISTRY", "")
    for part in extra.split(os.pathsep):
        if part.strip():
            path = pathlib.Path(part.strip()).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(
                    f"KERAS_GLIMPSE_REGISTRY names '{path}', which is not a "
                    "folder. Point it at folders of .toml preset files."
                )
            dirs.append(path)
    return dirs


def _validate(name, preset, path):
    where = f"{path} [{name}]"
    if not isinstance(preset, dict):
        raise PresetError(f"{where}: a preset must be a table, got {preset!r}.")
    if "builder" not in preset and "extends" not in preset:
        raise PresetError(f"{where}: missing key 'builder' (one of {sorted(BUILDERS)}).")
    if "extends" in preset and not isinstance(preset["extends"], str):
        raise PresetError(f"{where}: key 'extends' must name another preset.")
    if "builder" in preset and preset["builder"] not in BUILDERS:
        raise PresetError(
            f"{where}: key 'builder' = {preset['builder']!r} is unknown; "
            f"expected one of {sorted(BUILDERS)}."
        )
    unknown = set(preset) - _PRESET_KEYS
    if unknown:
        raise PresetError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed keys are "
            f"{sorted(_PRESET_KEYS)}."
        )
    for key in ("model", "data", "training", "reproduce"):
        if key in preset and not isinstance(preset[key], dict):
            raise PresetError(f"{where}: key '{key}' must be a table, got {preset[key]!r}.")
    if "description" in preset and not isinstance(preset["description"], str):
        raise PresetError(f"{where}: key 'description' must be a string.")


def _load_all():
    presets = {}
    for folder in registry_dirs():
        for path in sorted(folder.glob("*.toml")):
            try:
                with open(path, "rb") as f:
                    tables = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise PresetError(f"{path}: not valid TOML: {e}") from e
            for name, preset in tables.items():
                _validate(name, preset, path)
                earlier = presets.get(name)
                if earlier is not None and pathlib.Path(earlier["source"]).parent == folder:
                    raise PresetError(
                        f"Preset '{name}' is defined twice: in {earlier['source']} and in "
                        f"{path}. Rename one of them (a folder later in "
                        "KERAS_GLIMPSE_REGISTRY may override a packaged preset on purpose).")
                preset = copy.deepcopy(preset)
                preset["name"] = name
                preset["source"] = str(path)
                presets[name] = preset
    return {name: _resolve_extends(name, presets) for name in presets}


def _merge(base, child):
    """`child` over `base`: tables merged key by key, any other value replaced."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve_extends(name, presets, seen=()):
    """Preset `name` with `extends = "other"` resolved: the other preset's
    tables with this one's keys over them (its own `name` and `source`)."""
    preset = presets[name]
    base = preset.get("extends")
    if base is None:
        return preset
    where = f"{preset['source']} [{name}]"
    if base not in presets:
        raise PresetError(f"{where}: extends unknown preset {base!r}.")
    if base in seen or base == name:
        raise PresetError(f"{where}: 'extends' forms a cycle ({' -> '.join(seen + (name, base))}).")
    merged = _merge(_resolve_extends(base, presets, seen + (name,)),
                    {k: v for k, v in preset.items() if k != "extends"})
    merged["extends"] = base
    return merged


def list_models():
    """Returns `{name: description}` for every registered preset, sorted."""
    return {n: p.get("description", "") for n, p in sorted(_load_all().items())}


def get_preset(name):
    """Returns a deep copy of the preset dict registered under `name`.

    Raises:
        LookupError: `name` is not registered; the message lists the closest names.
    """
    presets = _load_all()
    if name not in presets:
        close = difflib.get_close_matches(name, list(presets), n=5, cutoff=0.3)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise LookupError(
            f"Unknown model name '{name}'.{hint} "
            "Call keras_glimpse.list_models() for all names."
        )
    return copy.deepcopy(presets[name])


def get_builder(builder_name):
    """Resolves a builder name to the class or function it names."""
    module_name, attr = BUILDERS[builder_name].split(":")
    return getattr(importlib.import_module(module_name), attr)


def _valid_model_keys(builder, preset_model):
    import inspect

    keys = set(preset_model)
    try:
        sig = inspect.signature(builder)
    except (TypeError, ValueError):
        return keys
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
            keys.add(p.name)
    keys.discard("kwargs")
    return keys


def model_config(name, **overrides):
    """The preset's model arguments merged with `overrides` (validated)."""
    preset = get_preset(name)
    builder = get_builder(preset["builder"])
    config = dict(preset.get("model", {}))
    valid = _valid_model_keys(builder, config)
    bad = sorted(set(overrides) - valid)
    if bad:
        raise TypeError(
            f"Unknown override(s) {bad} for model '{name}'. "
            f"Valid keys: {', '.join(sorted(valid))}."
        )
    config.update(overrides)
    return preset, builder, config


def build(name, weights=None, compile=True, **overrides):
    """Builds the registered model `name`.

    Args:
        name: a registered preset name, e.g. `"ram_cluttered60"`.
        weights: `"pretrained"` (the weights shipped with the package for
            this preset, see `keras_glimpse.weights`), or a path to a
            `.keras` file or `.weights.h5` file whose weights are loaded
            into the built model.
        compile: whether to compile with the preset's training defaults.
        **overrides: model constructor arguments overriding the preset.

    Returns:
        A built (and by default compiled) `keras.Model`.

    Raises:
        LookupError: unknown `name`.
        TypeError: an override key that the model does not accept.
        FileNotFoundError: `weights` does not exist.
        LookupError: `weights="pretrained"` for a preset that ships none.
    """
    if weights == "pretrained":
        from keras_glimpse import weights as weights_lib

        weights = weights_lib.weights_path(name)  # raises before building
        # the model the weights were trained as (their stage), unless overridden
        overrides = {**weights_lib.model_args(name), **overrides}
    preset, builder, config = model_config(name, **overrides)
    model = builder(**config)
    if hasattr(model, "build_from_image_shape"):
        model.build_from_image_shape()
    if compile:
        from keras_glimpse import optimizers

        training = dict(preset.get("training", {}))
        training.pop("stages", None)  # the stage tables are for apps.train --stage
        optimizers.compile_model(model, training)
    if weights is not None:
        load_weights(model, weights)
    model.preset_name = name
    return model


def load_weights(model, path):
    """Loads weights from a `.keras` archive or a `.weights.h5` file (no
    deserialisation of the saved model: only the weights are read)."""

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"Weights file '{path}' does not exist. Pass the path of a .keras "
            "checkpoint written by apps.train (in --model_dir) or a .weights.h5 file."
        )
    import warnings

    with warnings.catch_warnings():
        # A .keras checkpoint also holds optimizer variables; a freshly
        # compiled model has none yet, which is expected here.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        try:
            model.load_weights(str(path))
        except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise CorruptFileError(
                f"'{path}' is unreadable ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else 'truncated?'}).") from e
    return model


class CorruptFileError(ValueError):
    """A checkpoint or weights file that cannot be read (truncated, not an archive)."""
