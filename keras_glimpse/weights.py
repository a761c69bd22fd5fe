"""Trained weights shipped with the package: `build(name, weights="pretrained")`.

Each file `keras_glimpse/pretrained/<preset>.weights.h5` holds the weights of
the run that `apps.reproduce --ship_weights` selected on the validation
split; `keras_glimpse/pretrained/index.json` records, per preset, which run it
was (seed, validation metric) and what it scores on the test split.
"""

import json
import os
import pathlib

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "pretrained"
INDEX = "index.json"


def index():
    """`{preset: record}` of every preset that ships weights."""
    path = WEIGHTS_DIR / INDEX
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def available():
    """Names of the presets whose weights are shipped (file present)."""
    return sorted(n for n in index() if (WEIGHTS_DIR / f"{n}.weights.h5").is_file())


def model_args(name):
    """The model arguments that the shipped weights of `name` were trained
    with beyond the preset's `model` table (e.g. `{"stage": "finetune2stream"}`
    for PatchDrop, whose preset builds its `finetune` stage): loading the
    weights builds that model, so that it is the one the record scores."""
    return dict(index().get(name, {}).get("model_args") or {})


def weights_path(name, must_exist=True):
    """Path of preset `name`'s shipped weights.

    Raises:
        LookupError: `must_exist` and no weights are shipped for `name`; the
            message lists the presets that have some.
    """
    path = WEIGHTS_DIR / f"{name}.weights.h5"
    if must_exist and not path.is_file():
        have = ", ".join(available()) or "none yet"
        raise LookupError(
            f"No pretrained weights are shipped for preset '{name}' (presets with weights: "
            f"{have}). Train it with python -m apps.reproduce --model={name}, or pass "
            "weights=<path of a .keras or .weights.h5 file>.")
    return path


def write_record(name, record):
    """Adds or replaces `name`'s entry of the index (atomically)."""
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    data = index()
    data[name] = record
    path = WEIGHTS_DIR / INDEX
    tmp = path.with_name(f".{INDEX}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
