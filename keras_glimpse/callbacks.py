"""The callbacks of the training protocol: model selection on the validation
split, the plateau schedule and early stopping, all resumable.

Keras' own `ModelCheckpoint(save_best_only=True)`, `ReduceLROnPlateau` and
`EarlyStopping` keep their state (the best value so far, the epochs waited)
in memory only. After `BackupAndRestore` resumes a run they start afresh, so
the first epoch after a restart overwrites `best.keras` even when it is
worse, and the plateau and patience counters reset. The callbacks here keep
that state in a small JSON file beside the checkpoints, written atomically
after each epoch, and read it back when training starts.
"""

import json
import logging
import math
import os
import pathlib
import shutil

import keras
import numpy as np

logger = logging.getLogger("keras_glimpse")

MODES = ("max", "min")


def _check_mode(mode):
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}; received mode={mode!r}.")
    return mode


def improved(value, best, mode, min_delta=0.0):
    """Whether `value` beats `best` by more than `min_delta` in direction `mode`."""
    if best is None:
        return True
    if mode == "max":
        return value > best + min_delta
    return value < best - min_delta


def _write_json(path, payload):
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path):
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        logger.warning("Ignoring unreadable state file '%s' (starting its state afresh).", path)
        return None


def _monitored(logs, monitor):
    value = (logs or {}).get(monitor)
    if value is None:
        raise KeyError(
            f"The monitored metric '{monitor}' is not in this epoch's logs "
            f"({', '.join(sorted(logs or {})) or 'none'}). Pass validation data to fit, or "
            "monitor a training metric."
        )
    value = float(value)
    return value


class ClassificationError(keras.callbacks.Callback):
    """Adds `error` and `val_error` (100 x (1 - accuracy), in %) to the epoch
    logs, so history.csv and TensorBoard show the papers' unit. Put it before
    the loggers."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix in ("", "val_"):
            if f"{prefix}accuracy" in logs:
                logs[f"{prefix}error"] = 100.0 * (1.0 - float(logs[f"{prefix}accuracy"]))


class NonFiniteError(RuntimeError):
    """A reported loss or a weight became NaN or Inf."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training by raising `NonFiniteError` as soon as any reported loss
    (every log key ending in `loss`: RECAP's `policy_loss` and `value_loss`,
    ordinal's agent loss, SAC's `critic_loss`, ...) is NaN or Inf after a
    batch, or any weight is at the end of an epoch.

    Keras' `TerminateOnNaN` watches `loss` only, and a NaN policy beside a
    finite classification loss trained on. Put this callback first: raising at
    the end of an epoch, before the checkpoint callbacks run, means no
    checkpoint of a diverged model is ever written.
    """

    @staticmethod
    def _bad_logs(logs):
        return {k: v for k, v in (logs or {}).items()
                if k.endswith("loss") and np.ndim(v) == 0 and not math.isfinite(float(v))}

    def _check_logs(self, logs, where):
        bad = self._bad_logs(logs)
        if bad:
            raise NonFiniteError(
                "NaN or Inf loss " + ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
                + f" {where}")

    def on_train_batch_end(self, batch, logs=None):
        self._check_logs(logs, f"at batch {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self._check_logs(logs, f"at the end of epoch {epoch + 1}")
        for w in self.model.weights:
            if "float" in str(w.dtype) and not np.all(
                    np.isfinite(keras.ops.convert_to_numpy(w))):
                raise NonFiniteError(
                    f"NaN or Inf weight {w.path} at the end of epoch {epoch + 1}")


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to
    the epoch logs, so history.csv holds a run's time across restarts."""

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        import time

        if logs is not None and getattr(self, "_start", None) is not None:
            logs["epoch_seconds"] = time.time() - self._start


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current `learning_rate` to the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        opt = getattr(self.model, "optimizer", None)
        if logs is None or opt is None:
            return
        lr = opt.learning_rate
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            lr = lr(opt.iterations)
        logs["learning_rate"] = float(np.asarray(lr))


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` whenever `monitor` improves; resumable.

    The best value and its epoch are kept in `<path>.json` (e.g.
    `best.keras.json`), written after the checkpoint, so a restarted run
    compares against the true best so far instead of overwriting it.

    Args:
        path: the `.keras` file.
        monitor: log key, e.g. `"val_accuracy"`.
        mode: `"max"` or `"min"`.
    """

    def __init__(self, path, monitor, mode):
        super().__init__()
        self.path = pathlib.Path(path)
        self.state_path = self.path.with_name(self.path.name + ".json")
        self.monitor = monitor
        self.mode = _check_mode(mode)
        state = _read_json(self.state_path) or {}
        if state and (state.get("monitor") != monitor or state.get("mode") != mode):
            state = {}  # another metric: its best value says nothing here
        self.best = state.get("best")
        self.best_epoch = state.get("epoch")

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor)
        if not math.isfinite(value) or not improved(value, self.best, self.mode):
            return
        tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp.keras")
        self.model.save(str(tmp))
        os.replace(tmp, self.path)
        self.best, self.best_epoch = value, int(epoch)
        _write_json(self.state_path, {"monitor": self.monitor, "mode": self.mode,
                                      "best": value, "epoch": int(epoch)})


class PlateauSchedule(keras.callbacks.Callback):
    """Reduce-on-plateau and early stopping on one monitored metric; resumable.

    After `patience` epochs without improvement the learning rate is
    multiplied by `factor` (not below `min_learning_rate`) and the wait starts
    again; after `stop_patience` epochs without improvement training stops.
    The state (best value, both waits) is kept in `state_path`. The upstream
    RAM port uses patience 20 and stops after 50 epochs without improvement
    of the validation accuracy.

    Args:
        monitor: log key, e.g. `"val_accuracy"`.
        mode: `"max"` or `"min"`.
        factor: learning-rate multiplier in (0, 1), or None for no reduction.
        patience: epochs without improvement before a reduction.
        min_learning_rate: floor of the learning rate.
        stop_patience: epochs without improvement before stopping, or None.
        state_path: JSON file holding the state across restarts (or None).
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, monitor, mode, factor=None, patience=10, min_learning_rate=0.0,
                 stop_patience=None, state_path=None, min_delta=0.0):
        super().__init__()
        self.monitor = monitor
        self.mode = _check_mode(mode)
        if factor is not None and not 0.0 < float(factor) < 1.0:
            raise ValueError(f"The plateau factor must be in (0, 1); received {factor!r}.")
        self.factor = None if factor is None else float(factor)
        self.patience = int(patience)
        self.min_learning_rate = float(min_learning_rate)
        self.stop_patience = None if stop_patience is None else int(stop_patience)
        self.min_delta = float(min_delta)
        self.state_path = None if state_path is None else pathlib.Path(state_path)
        self.state = {"best": None, "best_epoch": None, "lr_wait": 0, "stop_wait": 0,
                      "stopped_epoch": None}
        saved = _read_json(self.state_path) if self.state_path else None
        if saved and saved.get("monitor") == monitor:
            self.state.update({k: saved[k] for k in self.state if k in saved})

    @staticmethod
    def reset_stop(state_path):
        """Clears the early-stopping wait in `state_path` (a run continued on
        purpose trains on; the plateau and best value are kept)."""
        state = _read_json(state_path)
        if state:
            _write_json(state_path, dict(state, stop_wait=0, stopped_epoch=None))

    def _set_lr(self, value):
        opt = self.model.optimizer
        if isinstance(opt.learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "The plateau schedule sets the learning rate itself; the optimizer already "
                "has a schedule. Use one of training.schedule = 'plateau' or a step/cosine one.")
        opt.learning_rate = value

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor)
        s = self.state
        if math.isfinite(value) and improved(value, s["best"], self.mode, self.min_delta):
            s.update(best=value, best_epoch=int(epoch), lr_wait=0, stop_wait=0)
        else:
            s["lr_wait"] += 1
            s["stop_wait"] += 1
            if self.factor is not None and s["lr_wait"] >= self.patience:
                lr = float(np.asarray(self.model.optimizer.learning_rate))
                new = max(lr * self.factor, self.min_learning_rate)
                if new < lr:
                    self._set_lr(new)
                    logger.info("Epoch %d: %s has not improved for %d epochs; learning rate "
                                "%.3g -> %.3g.", epoch + 1, self.monitor, s["lr_wait"], lr, new)
                s["lr_wait"] = 0
            if self.stop_patience is not None and s["stop_wait"] >= self.stop_patience:
                s["stopped_epoch"] = int(epoch)
                self.model.stop_training = True
                logger.info("Epoch %d: %s has not improved for %d epochs (best %.5g at epoch "
                            "%d); stopping.", epoch + 1, self.monitor, s["stop_wait"],
                            s["best"], (s["best_epoch"] or 0) + 1)
        if self.state_path is not None:
            _write_json(self.state_path, dict(s, monitor=self.monitor, mode=self.mode))


class PolicyPictures(keras.callbacks.Callback):
    """Where the current policy looks, on a fixed batch, every `every` epochs.

    Draws the greedy glimpse trajectory of each image (boxes over the image,
    `keras_glimpse.viz.trajectory_images`) into one mosaic, written as
    `<out_dir>/epoch_<k>.png` (k counted from 1) and as a TensorBoard image
    summary `policy` under `<log_dir>` (when given). Runs after the first
    epoch and every `every` epochs after it.

    Args:
        images: a fixed batch (e.g. the first validation images), `(B, H, W, C)`.
        out_dir: folder of the PNGs.
        log_dir: TensorBoard folder, or None.
        every: period in epochs.
    """

    def __init__(self, images, out_dir, log_dir=None, every=5):
        super().__init__()
        self.images = np.asarray(images)
        self.out_dir = pathlib.Path(out_dir)
        self.log_dir = None if log_dir is None else str(log_dir)
        self.every = max(int(every), 1)
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch != 0 and (epoch + 1) % self.every:
            return
        from keras_glimpse import viz

        frames, _ = viz.trajectory_images(self.model, self.images)
        picture = viz.mosaic([f[-1] for f in frames], ncols=min(len(frames), 8))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"epoch_{epoch + 1}.png"
        try:
            image_mod = viz._require("PIL.Image")
            tmp = path.with_name(f".{path.name}.tmp.png")
            image_mod.fromarray(picture).save(tmp)
            os.replace(tmp, path)
        except ImportError as e:
            logger.warning("No policy picture written: %s", e)
        if self.log_dir is not None:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default():
                tf.summary.image("policy", picture[None], step=int(epoch) + 1)
            self._writer.flush()


class BackupError(ValueError):
    """Neither the backup nor its previous copy can be read (one line)."""


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose files are never half-written and whose
    unreadable files fall back to the previous copy, with one line saying so.

    Keras writes `latest.weights.h5` and `training_metadata.json` in place, so
    a process killed mid-write leaves a truncated file; a truncated
    `training_metadata.json` raises a JSON error that Keras' `.bkp` fallback
    does not catch. Here each file is written to a temporary name and renamed
    (atomic on POSIX), and any unreadable file (weights or metadata) is
    replaced by its `.bkp` copy, naming the file.
    """

    def __init__(self, backup_dir, **kwargs):
        kwargs.setdefault("double_checkpoint", True)
        super().__init__(backup_dir, **kwargs)

    def on_train_begin(self, logs=None):
        try:
            self._load_model()
            return
        except Exception as e:  # noqa: BLE001 - any unreadable file: fall back below
            first = e
        metadata = isinstance(first, (json.JSONDecodeError, KeyError))
        bad = self._training_metadata_path if metadata else self._weights_path
        if not os.path.exists(self._prev_weights_path):
            raise BackupError(
                f"The backup in '{self.backup_dir}' is unreadable ({type(first).__name__}: "
                f"{first}) and has no previous copy (.bkp); pass --overwrite to start the run "
                "afresh.") from first
        logger.warning("Backup file '%s' is unreadable (%s: %s; truncated?); resuming from "
                       "the previous backup (.bkp) instead.", bad, type(first).__name__,
                       str(first).splitlines()[0] if str(first) else "")
        os.replace(self._prev_weights_path, self._weights_path)
        if os.path.exists(self._prev_training_metadata_path):
            os.replace(self._prev_training_metadata_path, self._training_metadata_path)
        else:
            pathlib.Path(self._training_metadata_path).unlink(missing_ok=True)
        try:
            self._load_model()
        except Exception as e:  # noqa: BLE001
            raise BackupError(
                f"The backup in '{self.backup_dir}' and its previous copy are unreadable "
                f"({type(e).__name__}: {e}); pass --overwrite to start the run afresh.") from e

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        for path in (self._weights_path, self._training_metadata_path):
            if self.double_checkpoint and os.path.exists(path):
                tmp = f"{path}.bkp.tmp"
                shutil.copyfile(path, tmp)
                os.replace(tmp, f"{path}.bkp")
        tmp_weights = os.path.join(self.backup_dir, f".tmp-{os.getpid()}.weights.h5")
        self.model.save_weights(filepath=tmp_weights, overwrite=True)
        os.replace(tmp_weights, self._weights_path)
        _write_json(self._training_metadata_path,
                    {"epoch": self._current_epoch, "batch": self._last_batch_seen})


class OnFirstEpochEnd(keras.callbacks.Callback):
    """Calls `fn()` once, when the first epoch of this `fit` ends."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def on_epoch_end(self, epoch, logs=None):
        if self._fn is not None:
            fn, self._fn = self._fn, None
            fn()


class SetLearningRate(keras.callbacks.Callback):
    """Sets the optimizer's learning rate when training starts, after the
    backup is restored (a resumed run's restored rate would otherwise win
    over a changed `training.learning_rate`). Place it after the backup."""

    def __init__(self, learning_rate):
        super().__init__()
        self.learning_rate = float(learning_rate)

    def on_train_begin(self, logs=None):
        opt = self.model.optimizer
        if isinstance(opt.learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return  # a schedule is rebuilt from the config: the change applies already
        old = float(np.asarray(opt.learning_rate))
        opt.learning_rate = self.learning_rate
        logger.warning("Learning rate %.3g (restored) -> %.3g (training.learning_rate).", old,
                       self.learning_rate)
