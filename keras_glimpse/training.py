"""Shared logic of the apps: resolve a config, train, evaluate, restore.

The apps in `apps/` only parse flags and call these functions, so everything
here is usable (and tested) from Python:

```python
from keras_glimpse import training
config = training.resolve_config("ram_mnist", model_dir="/tmp/ram", epochs=1)
result = training.run_training(config)
```

Layout of a `model_dir` written by `run_training`:

```
config.json                 the resolved configuration (preset + overrides + flags)
checkpoints/last.keras      weights after the last finished epoch
checkpoints/best.keras      weights with the best validation metric (`selection_metric`)
checkpoints/best.keras.json which metric, its best value and epoch
schedule_state.json         plateau schedule / early stopping state (resumable)
backup/                     BackupAndRestore state (deleted when training ends)
history.csv                 one row per epoch (appended across restarts)
logs/                       TensorBoard
metrics.json                the test metrics of best.keras, read once at the end
provenance.jsonl            which commit each training command ran (`keras_glimpse.provenance`)
export/                     the SavedModel (`keras_glimpse.export`)
```
"""

import json
import logging
import os
import pathlib
import time
import tomllib

import keras
import numpy as np
import tensorflow as tf

from keras_glimpse import callbacks as callbacks_lib
from keras_glimpse import data as data_lib
from keras_glimpse import distribute
from keras_glimpse import export as export_lib
from keras_glimpse import optimizers
from keras_glimpse import precision
from keras_glimpse import provenance
from keras_glimpse import registry
from keras_glimpse import run_dir
from keras_glimpse import stages as stages_lib

logger = logging.getLogger("keras_glimpse")

CONFIG_FILE = "config.json"
SCHEDULE_STATE = "schedule_state.json"
CHECKPOINTS = ("best", "last")


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or Inf; the message names the last good checkpoint."""


def parse_value(text):
    """Parses an override value as a TOML value (`3`, `1e-3`, `true`, `[1, 2]`,
    `"s"`); anything else stays a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items):
    """`["a=1", "training.learning_rate=1e-3"]` -> `{"a": 1, "training.learning_rate": 0.001}`."""
    result = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--override expects key=value; received {item!r}.")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"--override expects key=value; received {item!r}.")
        result[key] = parse_value(value.strip())
    return result


def _accepts(builder, preset_model, key):
    return key in registry._valid_model_keys(builder, preset_model)


def _training_keys():
    """Every key any preset's `training` table (or stage) sets, plus the ones
    the protocol reads with a default: the keys a `training.*` override may name."""
    keys = {"batch_size", "epochs", "steps_per_epoch", "eval_steps", "validation_steps",
            "jit_compile", "steps_per_execution", "picture_every", "monte_carlo",
            "min_learning_rate", "clipnorm", "learning_rate", "optimizer", "schedule",
            "early_stopping_patience", "plateau_factor", "plateau_patience", "weight_decay",
            "momentum", "dtype_policy", "intra_op_threads"}
    for name in registry.list_models():
        table = dict(registry.get_preset(name).get("training", {}))
        for stage in (table.pop("stages", {}) or {}).values():
            keys.update(stage)
        keys.update(table)
    return keys


def _check_override_keys(model, preset, training_overrides, data):
    """A misspelled `training.*` or `data.*` override is an error, not ignored."""
    import difflib
    import inspect

    known = _training_keys()
    for key in training_overrides:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f" Did you mean {', '.join('training.' + c for c in close)}?" if close else ""
            raise ValueError(f"Unknown override training.{key} for '{model}'.{hint}")
    fn = data_lib.get_dataset_fn(data.get("name", "")) if data.get("name") else None
    if fn is None:
        return
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = set(params) - {"split", "batch_size", "seed", "data_dir"}
    for key in set(data) - {"name"} - accepted:
        close = difflib.get_close_matches(key, sorted(accepted), n=3)
        hint = f" Did you mean {', '.join('data.' + c for c in close)}?" if close else ""
        raise ValueError(f"Unknown data option data.{key} for '{model}' (dataset "
                         f"'{data['name']}' takes {', '.join(sorted(accepted)) or 'none'}).{hint}")


def resolve_config(model, model_dir=None, data_dir=None, stage=None, strategy="default",
                   epochs=None, batch_size=None, steps_per_epoch=None, eval_steps=None,
                   overrides=None, seed=0, verbose=2, init_from=None):
    """Merges the preset `model`, the stage, `--override`s and flags into one dict.

    Overrides whose key starts with `training.` or `data.` go to those tables;
    the others are model constructor arguments (validated by the registry).
    `stage` selects `training.stages.<stage>` (merged over `training`) and is
    passed to the model when its constructor accepts `stage`.
    `init_from` (a path, `"PART,...=PATH"`, or a list of them; see
    `keras_glimpse.stages`) names the earlier stages whose parts the model
    starts from; removed constructor arguments that used to load them
    (PatchDrop's `hr_classifier=PATH`, RECAP's and ordinal's `pretrained=PATH`)
    become `init_from` entries.

    Returns:
        A JSON-serialisable dict (what `run_training` consumes and writes to
        `model_dir/config.json`).

    Raises:
        LookupError: unknown model name. TypeError: unknown override key.
        ValueError: unknown stage or strategy.
    """
    if not model:
        raise ValueError("--model is required; see keras_glimpse.list_models().")
    if strategy not in distribute.STRATEGIES:
        raise ValueError(f"--strategy must be one of {distribute.STRATEGIES}; received {strategy!r}.")
    preset = registry.get_preset(model)
    overrides = dict(overrides or {})
    training = dict(preset.get("training", {}))
    stages = training.pop("stages", {}) or {}
    data = dict(preset.get("data", {}))
    model_args, training_overrides = {}, {}
    new_name = overrides.get("data.name")
    if new_name is not None and new_name != data.get("name"):
        data = {}  # another data set: the preset's options were for its own one
    for key, value in overrides.items():
        if key.startswith("training."):
            training_overrides[key[len("training."):]] = value
        elif key.startswith("data."):
            data[key[len("data."):]] = value
        else:
            model_args[key] = value
    if stage:
        builder = registry.get_builder(preset["builder"])
        # A stage the model names (`stage_names`) needs no table of its own
        # (AdaGlimpse's "rl" uses the preset's training table).
        known = sorted(set(stages) | set(getattr(builder, "stage_names", ()) or ()))
        if stages and stage not in known:
            raise ValueError(
                f"Unknown stage {stage!r} for model '{model}'; its stages are {known}."
            )
        training.update(stages.get(stage, {}))
        if _accepts(builder, preset.get("model", {}), "stage"):
            model_args.setdefault("stage", stage)
        elif not stages:
            raise ValueError(
                f"Model '{model}' has no stages (neither training.stages nor a `stage` "
                f"argument); received --stage={stage!r}."
            )
    _check_override_keys(model, preset, training_overrides, data)
    if isinstance(init_from, (str, os.PathLike, dict)):
        init_from = [init_from]
    init_specs = [stages_lib.parse_spec(os.fspath(s) if isinstance(s, os.PathLike) else s)
                  for s in init_from or ()]
    init_specs += stages_lib.legacy_init_from(registry.get_builder(preset["builder"]),
                                              model_args)
    training.update(training_overrides)  # explicit overrides beat the stage
    precision.check_policy(training.get("dtype_policy", "float32"))
    # Validate model overrides now (raises TypeError naming the valid keys).
    registry.model_config(model, **model_args)
    for flag, value in (("epochs", epochs), ("batch_size", batch_size),
                        ("steps_per_epoch", steps_per_epoch), ("eval_steps", eval_steps)):
        if value is not None:
            training[flag] = count_flag(flag, value)
    training.setdefault("epochs", 1)
    training.setdefault("batch_size", 32)
    # What this command set itself (flags, overrides): a resumed or continued
    # run keeps its own value of everything else (keras_glimpse.run_dir.prepare).
    explicit = sorted({f"training.{k}" for k in training_overrides}
                      | {k for k in overrides if k.startswith("data.")}
                      | {f"training.{f}" for f, v in (("epochs", epochs),
                                                      ("batch_size", batch_size),
                                                      ("steps_per_epoch", steps_per_epoch),
                                                      ("eval_steps", eval_steps))
                         if v is not None}
                      | ({"data_dir"} if data_dir is not None else set()))
    return {
        "explicit": explicit,
        "model": model,
        "builder": preset["builder"],
        "stage": stage,
        "model_args": model_args,
        "init_from": init_specs,
        "training": training,
        "data": data,
        "data_dir": None if data_dir is None else str(data_dir),
        "model_dir": None if model_dir is None else str(model_dir),
        "strategy": strategy,
        "seed": int(seed),
        "verbose": int(verbose),
        "paper": {k: preset[k] for k in ("paper", "paper_metric", "paper_value") if k in preset},
    }


def write_config(config, model_dir):
    path = pathlib.Path(model_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def read_config(model_dir):
    path = pathlib.Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No {CONFIG_FILE} in '{model_dir}'. Train first with "
            "python -m apps.train --model=NAME --model_dir=DIR, or pass --model."
        )
    return run_dir.read_previous_config(model_dir)


def has_validation(config):
    """Whether the preset's dataset holds out a validation split."""
    return config["data"].get("name") in data_lib.WITH_VALIDATION


def make_data(config, split, repeat=False):
    """The dataset of the preset's `data` table for `split` (global batch)."""
    data_dir = config.get("data_dir")
    if data_dir is not None and not pathlib.Path(data_dir).expanduser().is_dir():
        raise FileNotFoundError(
            f"--data_dir='{data_dir}' does not exist or is not a folder. Pass the folder "
            f"that holds the raw files of dataset '{config['data'].get('name')}'."
        )
    table = dict(config["data"])
    name = table.pop("name", None)
    if name is None:
        raise ValueError(f"Preset '{config['model']}' has no data.name; cannot load data.")
    ds = data_lib.load(name, split=split, batch_size=int(config["training"]["batch_size"]),
                       seed=int(config.get("seed", 0)), data_dir=data_dir, **table)
    if repeat:
        ds = ds.repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def build_model(config, compile=True, init=False):
    """Builds the configured model (call inside `strategy.scope()`).

    With `init=True`, copies the earlier stages' parts named by
    `config["init_from"]` into it (`keras_glimpse.stages.apply`); only a fresh
    training run does that, never a restore or a resume."""
    builder = registry.get_builder(registry.get_preset(config["model"])["builder"])
    legacy = getattr(builder, "legacy_init_args", None) or {}
    # config.json of a run from before keras_glimpse.stages may still name the
    # earlier stages' files as model arguments: the checkpoint holds the weights.
    args = {k: v for k, v in config["model_args"].items() if k not in legacy}
    # `training.dtype_policy` (float32, mixed_float16, mixed_bfloat16): the
    # policy the model's layers and optimizers are built under; Keras' global
    # policy is restored afterwards (keras_glimpse.precision).
    previous = precision.set_policy(config["training"].get("dtype_policy", "float32"))
    try:
        model = registry.build(config["model"], compile=False, **args)
        if init and config.get("init_from"):
            stages_lib.apply(model, config["init_from"])
        if compile:
            optimizers.compile_model(model, config["training"])
    finally:
        keras.config.set_dtype_policy(previous)
    return model


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True, 0
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return task_type == "chief", task_id
    return task_type == "worker" and task_id == 0, task_id


def checkpoint_path(model_dir, which="best"):
    """Path of `checkpoints/<which>.keras` in `model_dir`; falls back from best to last."""
    if which not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}; received {which!r}.")
    ckpt = pathlib.Path(model_dir) / "checkpoints"
    path = ckpt / f"{which}.keras"
    if not path.exists() and which == "best":
        path = ckpt / "last.keras"
    if not path.exists():
        raise FileNotFoundError(
            f"No checkpoint in '{ckpt}'. Train with python -m apps.train first."
        )
    return path


def selection(model, validation=True):
    """`(monitor, mode)`: the model's task metric, on the validation split
    when there is one (`val_accuracy`), else on the training batches."""
    name, mode = model.selection_metric()
    return ("val_" + name if validation else name), mode


def make_callbacks(model_dir, chief=True, verbose=2, monitor="loss", mode="min",
                   training=None, picture_images=None, learning_rate=None):
    """The protocol's callbacks, in order: StopOnNonFinite (any loss or weight
    NaN/Inf raises, so no checkpoint of a diverged model is written), the error in % and the
    learning rate added to the logs, the plateau schedule and early stopping
    (`training.schedule = "plateau"`, `early_stopping_patience`), CSV
    history, BackupAndRestore, `last.keras`, `best.keras` (best `monitor`) and
    TensorBoard (when the `tensorboard` package is installed), and the
    policy pictures (`PolicyPictures` on `picture_images` every
    `training.picture_every` epochs, default 5; 0 turns them off).
    `learning_rate` (a resumed run whose `training.learning_rate` changed)
    is set after the backup is restored."""
    model_dir = pathlib.Path(model_dir)
    training = dict(training or {})
    ckpt = model_dir / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    callbacks = [
        callbacks_lib.StopOnNonFinite(),
        callbacks_lib.EpochTimer(),
        callbacks_lib.ClassificationError(),
        callbacks_lib.LearningRateLogger(),
    ]
    schedule = training.get("schedule")
    stop = training.get("early_stopping_patience")
    if schedule not in (None, "plateau", "none"):
        schedule = None  # step / cosine schedules live in the optimizer (compile_from_preset)
    if schedule == "plateau" or stop is not None:
        callbacks.append(callbacks_lib.PlateauSchedule(
            monitor, mode,
            factor=float(training.get("plateau_factor", 0.1)) if schedule == "plateau" else None,
            patience=int(training.get("plateau_patience", 10)),
            min_learning_rate=float(training.get("min_learning_rate", 0.0)),
            stop_patience=None if stop is None else int(stop),
            state_path=model_dir / SCHEDULE_STATE))
    callbacks += [
        keras.callbacks.CSVLogger(str(model_dir / "history.csv"), append=True),
        callbacks_lib.SafeBackupAndRestore(str(model_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(ckpt / "last.keras"), verbose=0),
        callbacks_lib.BestCheckpoint(ckpt / "best.keras", monitor, mode),
    ]
    if learning_rate is not None:
        callbacks.append(callbacks_lib.SetLearningRate(learning_rate))
    every = int(training.get("picture_every", 5))
    if picture_images is not None and every > 0 and chief:
        callbacks.append(callbacks_lib.PolicyPictures(
            picture_images, model_dir / "pictures", log_dir=model_dir / "logs" / "pictures",
            every=every))
    if has_tensorboard():
        callbacks.append(keras.callbacks.TensorBoard(str(model_dir / "logs"), write_graph=False,
                                                     profile_batch=0))
    else:
        logger.warning("TensorBoard is not installed (TF 2.21 no longer depends on it): no "
                       "logs/ written. pip install 'keras_glimpse[viz]' to get it.")
    return callbacks


def has_tensorboard():
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def set_intra_op_threads(threads):
    """TensorFlow's threads per op for this process (`training.intra_op_threads`;
    None: TensorFlow's default, one per core). A step of many small ops (RAM
    on 28x28) runs faster on one thread per op, leaving the other core to the
    input pipeline. TensorFlow takes the setting only before its first op; a
    later, different request is logged and changes nothing."""
    if threads is None:
        return
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"training.intra_op_threads must be a positive int or unset; "
                         f"received {threads}.")
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        logger.warning("training.intra_op_threads=%d not applied: TensorFlow already runs "
                       "in this process with %s; start a new process to apply it.", threads,
                       f"{current} thread(s) per op" if current else "its default threads")


def run_training(config, export=True, overwrite=False, continue_run=False):
    """Trains, evaluates and exports as `config` says (see `resolve_config`).

    The model_dir is locked while training and never silently replaced or
    mixed (`keras_glimpse.run_dir`): an interrupted run resumes from its
    backup; a finished run is trained further only with `continue_run`
    (from `checkpoints/last.keras`, up to `training.epochs`) and replaced
    only with `overwrite`; a folder holding a different run is refused.

    Returns:
        dict with `history` (per-epoch logs of this run), `metrics` (test set),
        `export_path` (or None) and `model`.

    Raises:
        TrainingDivergedError: the loss became NaN/Inf. Checkpoints of the last
            good epoch are left untouched, and a rerun resumes from the backup.
        run_dir.RunDirError: the model_dir holds another or a finished run, or
            another process trains into it.
        FileNotFoundError: `data_dir` does not exist.
    """
    model_dir = config.get("model_dir")
    if not model_dir:
        raise ValueError("--model_dir is required: checkpoints, logs and the export go there.")
    set_intra_op_threads(config["training"].get("intra_op_threads"))
    keras.utils.set_random_seed(int(config.get("seed", 0)))
    strategy = distribute.get_strategy(config.get("strategy", "default"))
    chief, task_id = _is_chief(strategy)
    work_dir = pathlib.Path(model_dir) if chief else pathlib.Path(model_dir) / "workers" / str(task_id)
    with run_dir.RunLock(work_dir):
        return _train_locked(config, strategy, chief, work_dir, export, overwrite, continue_run)


def _train_locked(config, strategy, chief, work_dir, export, overwrite, continue_run):
    mode, previous = run_dir.prepare(config, work_dir, overwrite=overwrite,
                                     continue_run=continue_run)
    fresh = mode == run_dir.FRESH
    training = config["training"]
    initial_epoch = 0
    if mode == run_dir.CONTINUE:
        initial_epoch = run_dir.epochs_done(work_dir)
        if int(training["epochs"]) <= initial_epoch:
            raise run_dir.RunDirError(
                f"--continue_run: '{work_dir}' has run {initial_epoch} epochs already; pass "
                f"--epochs larger than {initial_epoch}.")
    if fresh:  # init_from is read only when a run starts (checked before any data)
        for spec in config.get("init_from") or ():
            stages_lib.resolve_source(stages_lib.parse_spec(spec)["source"])
    steps = training.get("steps_per_epoch")
    train_ds = make_data(config, "train", repeat=steps is not None)
    validation = has_validation(config) and training.get("validation", True)
    val_ds = make_data(config, "validation") if validation else None
    if not validation:
        logger.warning("Dataset '%s' has no validation split: best.keras is chosen on the "
                       "training batches' metric.", config["data"].get("name"))
    with strategy.scope():
        model = build_model(config, init=fresh)
        model.steps_per_execution = int(training.get("steps_per_execution", 1))
        model.jit_compile = bool(training.get("jit_compile", False))
        if mode == run_dir.CONTINUE:
            _load_with_optimizer(model, work_dir / "checkpoints" / "last.keras")
            callbacks_lib.PlateauSchedule.reset_stop(work_dir / SCHEDULE_STATE)
    # config.json only once data and model exist; a resumed or continued run's
    # only once its first epoch ends, so a command stopped before then leaves
    # the run's recorded settings as they were.
    if mode in (run_dir.FRESH, run_dir.EVALUATE):
        write_config(config, work_dir)
    monitor, mode_ = selection(model, validation)
    changed = run_dir.differences(previous, config, ("training",)) if (
        previous is not None and not fresh) else []
    # A changed rate is set over the restored optimizer's.
    learning_rate = training.get("learning_rate") if any(
        d.startswith("training.learning_rate:") for d in changed) else None
    pictures = next(iter(val_ds if val_ds is not None else train_ds))[0][:8]
    callbacks = make_callbacks(work_dir, chief=chief, verbose=config.get("verbose", 2),
                               monitor=monitor, mode=mode_, training=training,
                               picture_images=np.asarray(pictures), learning_rate=learning_rate)
    if mode in (run_dir.RESUME, run_dir.CONTINUE):
        callbacks.append(callbacks_lib.OnFirstEpochEnd(lambda: write_config(config, work_dir)))
    if chief:  # which code trains (or resumes, continues, evaluates) this run
        provenance.record(work_dir, mode, initial_epoch)
    start = time.time()
    try:
        history = _NoHistory() if mode == run_dir.EVALUATE else model.fit(train_ds, epochs=int(training["epochs"]), steps_per_epoch=steps,
                            validation_data=val_ds, initial_epoch=initial_epoch,
                            validation_steps=training.get("validation_steps"),
                            callbacks=callbacks, verbose=config.get("verbose", 2))
    except RuntimeError as e:  # NonFiniteError, or Keras' own NaN message
        if not isinstance(e, callbacks_lib.NonFiniteError) and "NaN or Inf loss" not in str(e):
            raise
        raise TrainingDivergedError(
            f"Training of '{config['model']}' diverged ({e}). The last good weights are in "
            f"{work_dir / 'checkpoints'}; rerunning the same command resumes from "
            f"{work_dir / 'backup'}. Lower the learning rate with "
            "--override training.learning_rate=..."
        ) from e
    train_seconds = time.time() - start
    # The selected model (best.keras, else last.keras); the test split is read here, once.
    load_checkpoint(model, work_dir, "best")
    metrics = evaluate_model(model, config, monte_carlo=training.get("monte_carlo", (1, 10)))
    best = work_dir / "checkpoints" / "best.keras"
    state = callbacks_lib._read_json(best.with_name(best.name + ".json")) or {}
    summary = {"test": metrics, "selection": {"monitor": monitor, "mode": mode_,
                                              "best": state.get("best"),
                                              "epoch": state.get("epoch")},
               "epochs_run": len(history.history.get("loss", [])),
               "train_seconds_this_run": round(train_seconds, 1)}
    (work_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    export_path = None
    if export and chief:
        export_path = export_lib.export_saved_model(model, work_dir / "export", overwrite=True)
    return {"history": history.history, "metrics": metrics, "export_path": export_path,
            "model": model, "selection": summary["selection"]}


class _NoHistory:
    history = {}


def _load_with_optimizer(model, path):
    """Weights and optimizer state of a `.keras` checkpoint (to continue a run)."""
    opt = getattr(model, "optimizer", None)
    if opt is not None and not opt.built:
        opt.build(model.trainable_variables)
    registry.load_weights(model, path)


def load_checkpoint(model, model_dir, which="best"):
    """Loads `checkpoints/<which>.keras` into `model`; an unreadable or missing
    `best.keras` falls back to `last.keras` with one warning line.

    Returns:
        The path loaded.
    """
    path = checkpoint_path(model_dir, which)
    try:
        registry.load_weights(model, path)
    except registry.CorruptFileError as e:
        last = pathlib.Path(model_dir) / "checkpoints" / "last.keras"
        if which != "best" or path == last or not last.is_file():
            raise
        logger.warning("%s Falling back to '%s'.", e, last)
        registry.load_weights(model, last)
        return last
    return path


def restore_model(model_dir=None, model=None, checkpoint="best", overrides=None,
                  compile=False, weights=None):
    """Rebuilds a trained model from `model_dir` (config.json + checkpoint), or
    the preset `model` with `weights` (`"pretrained"`: the weights shipped with
    the package; or the path of a `.keras` / `.weights.h5` file).

    With only `model` (a preset name), no `model_dir` and no `weights`, returns
    the freshly built (untrained) preset model. A `model_dir` without
    `config.json` or without checkpoints is an error, never silently untrained
    weights.
    """
    config = None
    if model_dir is not None:
        if weights is not None:
            raise ValueError("Pass either --model_dir or --model with --weights, not both.")
        if not (pathlib.Path(model_dir) / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"'{model_dir}' is not a model_dir written by apps.train (no {CONFIG_FILE}); "
                "check the path, or pass only --model for the untrained preset.")
        config = read_config(model_dir)
    if config is None:
        if model is None:
            raise ValueError("Pass --model (a preset name) or a --model_dir written by apps.train.")
        if weights == "pretrained":  # the model the weights were trained as, unless overridden
            from keras_glimpse import weights as weights_lib

            overrides = {**weights_lib.model_args(model), **(overrides or {})}
        config = resolve_config(model, overrides=overrides)
    elif overrides:
        config["model_args"].update(
            {k: v for k, v in overrides.items() if not k.startswith(("training.", "data."))})
    if weights == "pretrained":
        from keras_glimpse import weights as weights_lib

        weights_lib.weights_path(config["model"])  # LookupError before building
    built = build_model(config, compile=compile)
    if weights is not None:
        registry.load_weights(built, weights_lib.weights_path(config["model"])
                              if weights == "pretrained" else weights)
    if model_dir is not None:
        if not (pathlib.Path(model_dir) / "checkpoints").is_dir():
            raise FileNotFoundError(
                f"'{model_dir}' has no checkpoints/ yet (training never finished an epoch); "
                "train it with apps.train first.")
        load_checkpoint(built, model_dir, checkpoint)
    return built, config


def count_flag(flag, value):
    """`int(value)` for a count flag (`--epochs`, `--eval_steps`, ...), or a
    one-line ValueError naming the flag when it is below 1."""
    if int(value) < 1:
        raise ValueError(f"--{flag} must be at least 1 (there is nothing to do with "
                         f"{value}); omit it for the default.")
    return int(value)


def evaluate_model(model, config, eval_steps=None, monte_carlo=(1, 10)):
    """Keras metrics on the test split plus Monte Carlo accuracy for classifiers.

    Returns:
        dict: the `evaluate` metrics, `mc<M>_error` (in %) for each M, each
        of the model's `evaluation_baselines` policies' metrics with these
        weights (`<metric>_<policy>_policy`), the model's
        `evaluate_image_dependence` (how much its glimpses depend on the
        image), and the preset's paper number
        under `paper_<metric>` when it has one.
    """
    test_ds = make_data(config, "test")
    steps = (count_flag("eval_steps", eval_steps) if eval_steps is not None
             else config["training"].get("eval_steps"))
    result = {}
    if model.compiled:
        result.update({k: float(v) for k, v in
                       model.evaluate(test_ds, steps=steps, return_dict=True, verbose=0).items()})
        if "accuracy" in result and getattr(model, "prediction_type", None) == "classification":
            result["error"] = 100.0 * (1.0 - result["accuracy"])  # greedy policy, in %
    if getattr(model, "prediction_type", None) == "classification" and hasattr(
            model, "evaluate_monte_carlo"):
        for m in monte_carlo:
            mc = model.evaluate_monte_carlo(test_ds, num_samples=int(m), steps=steps)
            result[f"mc{m}_error"] = float(mc["error"])
    if hasattr(model, "evaluate_image_dependence"):
        result.update(model.evaluate_image_dependence(test_ds, steps=steps))
    for policy in getattr(model, "evaluation_baselines", ()):
        scores = model.evaluate_policy(test_ds, policy=policy, steps=steps)
        result.update({f"{k}_{policy}_policy": float(v) for k, v in scores.items()
                       if k != "count" and isinstance(v, (int, float, np.floating))})
    paper = config.get("paper", {})
    if "paper_value" in paper:
        result[f"paper_{paper.get('paper_metric', 'value')}"] = paper["paper_value"]
    return result


# paper_metric -> the measured key that is its fraction (the paper gives a percentage).
PERCENT_METRICS = {"loc_acc": "loc_acc", "test_accuracy": "accuracy"}


def format_metrics(result, paper=None):
    """A two-column text table of `result`; then the paper's number beside the
    measured one in the same units (test error in % for the classifiers:
    greedy, M=1 and M=10 sampled rollouts)."""
    lines = [f"{'metric':<24} {'value':>12}"]
    for k, v in result.items():
        if k.startswith("paper_"):
            continue
        value = f"{v:12.4f}" if isinstance(v, (float, int, np.floating)) else f"{v!s:>12}"
        lines.append(f"{k:<24} {value}")
    paper = paper or {}
    if paper.get("paper_metric") in ("test_error_percent", "test_error") and "error" in result:
        measured = [f"greedy {result['error']:.2f}"] + [
            f"M={k[2:-6]} {result[k]:.2f}" for k in result
            if k.startswith("mc") and k.endswith("_error")]
        lines.append(f"test error %: {', '.join(measured)}   |   paper: "
                     f"{paper.get('paper_value')}")
    elif paper.get("paper_metric") in PERCENT_METRICS and "paper_value" in paper and \
            PERCENT_METRICS[paper["paper_metric"]] in result:
        key = PERCENT_METRICS[paper["paper_metric"]]  # a fraction here, a percentage in papers
        lines.append(f"{paper['paper_metric']} %: {100.0 * float(result[key]):.2f}   |   "
                     f"paper: {paper['paper_value']}")
    elif "paper_value" in paper:
        lines.append(f"paper {paper.get('paper_metric', 'value')}: {paper['paper_value']}")
    if paper.get("paper"):
        lines.append(f"paper setting: {paper['paper']}")
    return "\n".join(lines)
