"""A training run's folder (`model_dir`): what is in it, and who may write to it.

`apps.train` never silently replaces or mixes runs. Before anything is read or
built, `prepare(config, work_dir, overwrite, continue_run)`

- takes `work_dir/.lock` (a second training into the same folder is refused
  while the first one's process lives; a lock left by a killed process is
  taken over with a warning),
- compares the folder's `config.json` with this command's: a different model,
  stage or model argument is refused (`RunDirError`, one line naming what
  differs), as is an unreadable `config.json`,
- refuses a finished run (`metrics.json`, or checkpoints without a backup to
  resume from) unless `continue_run` (train it further from `last.keras`) or
  `overwrite` (delete the run's files first),
- says what a resume restores and which changed training settings apply.

`config.json` itself is written by `training.run_training` only after the data
and the model are built, so a failed command never rewrites a finished run's
configuration.
"""

import csv
import json
import logging
import os
import pathlib
import shutil
import socket

logger = logging.getLogger("keras_glimpse")

LOCK_FILE = ".lock"
# What apps.train writes into a model_dir (and --overwrite deletes; nothing else).
RUN_FILES = ("config.json", "metrics.json", "history.csv", "schedule_state.json",
             "provenance.jsonl")
RUN_FOLDERS = ("backup", "checkpoints", "logs", "pictures", "export")
# Config entries that define the trained network: a resume must not change them.
IDENTITY_KEYS = ("model", "builder", "stage", "model_args")
FRESH, RESUME, CONTINUE, EVALUATE = "fresh", "resume", "continue", "evaluate"


class RunDirError(ValueError):
    """The model_dir holds something this command must not touch (one line)."""


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """`work_dir/.lock` held while training; refuses a second live trainer.

    The file holds `pid host`. A lock of a process that no longer exists (on
    this host) is stale and taken over with a warning.
    """

    def __init__(self, work_dir):
        self.path = pathlib.Path(work_dir) / LOCK_FILE
        self.held = False

    def acquire(self):
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise RunDirError(f"--model_dir '{self.path.parent}' is a file, not a folder; "
                              "choose a folder for the run.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.path.read_text().split() if self.path.is_file() else []
                pid = int(owner[0]) if owner and owner[0].isdigit() else None
                host = owner[1] if len(owner) > 1 else None
                if pid is not None and (host != socket.gethostname() or _pid_alive(pid)):
                    raise RunDirError(
                        f"'{self.path.parent}' is being trained by process {pid} on "
                        f"{host or 'this host'} (lock {self.path}); wait for it or use another "
                        f"--model_dir (delete the lock file only if that process is gone).")
                logger.warning("Taking over the stale lock %s of process %s, which no longer "
                               "runs.", self.path, pid)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self.held = True
            return self
        raise RunDirError(f"Could not take the lock {self.path}; another process races for it.")

    def release(self):
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def read_previous_config(work_dir):
    """The folder's `config.json` as a dict, None when absent.

    Raises:
        RunDirError: the file exists but is not readable JSON (e.g. truncated).
    """
    path = pathlib.Path(work_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunDirError(
            f"'{path}' is unreadable ({type(e).__name__}: {e}; truncated?). Restore it, or "
            "pass apps.train --overwrite to start a fresh run in that folder.") from e


def _normalised(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def differences(previous, config, keys):
    """`["key: old -> new", ...]` over `keys` (nested dicts compared per entry)."""
    out = []
    for key in keys:
        old, new = _normalised(previous.get(key)), _normalised(config.get(key))
        if isinstance(old, dict) and isinstance(new, dict):
            for sub in sorted(set(old) | set(new)):
                if old.get(sub) != new.get(sub):
                    out.append(f"{key}.{sub}: {old.get(sub)!r} -> {new.get(sub)!r}")
        elif old != new:
            out.append(f"{key}: {old!r} -> {new!r}")
    return out


def inherit(previous, config):
    """Takes the earlier run's `training`/`data` entries and `data_dir` into
    `config` (in place) wherever this command did not set them itself
    (`config["explicit"]`), so resuming or continuing without repeating every
    flag never falls back to the preset's values. Returns what was kept."""
    explicit = set(config.get("explicit", ()))
    kept = []
    for section in ("training", "data"):
        old, new = previous.get(section) or {}, config.setdefault(section, {})
        for key in sorted(set(old) | set(new)):
            if f"{section}.{key}" in explicit or old.get(key) == new.get(key):
                continue
            kept.append(f"{section}.{key}={old.get(key)!r} (not {new.get(key)!r})")
            if key in old:
                new[key] = old[key]
            else:
                new.pop(key)
    if "data_dir" not in explicit and previous.get("data_dir") != config.get("data_dir"):
        kept.append(f"data_dir={previous.get('data_dir')!r}")
        config["data_dir"] = previous.get("data_dir")
    return kept


def is_finished(work_dir):
    """A run that ended: `metrics.json`, or checkpoints with no backup to resume."""
    work_dir = pathlib.Path(work_dir)
    return (work_dir / "metrics.json").is_file() or (
        (work_dir / "checkpoints" / "last.keras").is_file() and not (work_dir / "backup").exists())


def epochs_done(work_dir):
    """Epochs a run has completed, from `history.csv` (0 when none)."""
    path = pathlib.Path(work_dir) / "history.csv"
    if not path.is_file():
        return 0
    with path.open(newline="") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)
                  if str(row.get("epoch", "")).isdigit()]
    return max(epochs) + 1 if epochs else 0


def clear(work_dir):
    """Deletes what `apps.train` wrote into `work_dir` (only those files)."""
    work_dir = pathlib.Path(work_dir)
    for name in RUN_FOLDERS:
        shutil.rmtree(work_dir / name, ignore_errors=True)
    for name in RUN_FILES:
        (work_dir / name).unlink(missing_ok=True)


def prepare(config, work_dir, overwrite=False, continue_run=False):
    """Decides how this command uses `work_dir` (call with the lock held).

    Returns:
        `(mode, previous)`: mode `"fresh"` (nothing to keep), `"resume"` (an
        interrupted run: BackupAndRestore restores it), `"continue"` (a
        finished run trained further from `last.keras`) or `"evaluate"` (the
        training ended but the test evaluation did not), and the previous
        config (or None).

    Raises:
        RunDirError: a different run is there, or a finished one without
            `continue_run`/`overwrite`, or an unreadable config.json.
    """
    work_dir = pathlib.Path(work_dir)
    if overwrite and continue_run:
        raise RunDirError("--overwrite and --continue_run contradict each other; pass one.")
    if overwrite:
        if any((work_dir / n).exists() for n in RUN_FILES + RUN_FOLDERS):
            logger.warning("--overwrite: deleting the earlier run in '%s'.", work_dir)
        clear(work_dir)
        return FRESH, None
    previous = read_previous_config(work_dir)
    if previous is not None:
        changed = differences(previous, config, IDENTITY_KEYS)
        if changed:
            raise RunDirError(
                f"'{work_dir}' holds a different run ({'; '.join(changed)}). Use another "
                "--model_dir, or --overwrite to replace that run.")
    if (work_dir / "backup").exists():
        mode = RESUME
    elif is_finished(work_dir) and not (work_dir / "metrics.json").is_file() and not continue_run:
        logger.warning("Training in '%s' ended (%d epochs) but its test evaluation did not; "
                       "evaluating the selected checkpoint now.", work_dir, epochs_done(work_dir))
        return EVALUATE, previous
    elif is_finished(work_dir):
        if not continue_run:
            raise RunDirError(
                f"'{work_dir}' holds a finished run ({epochs_done(work_dir)} epochs). Pass "
                "--continue_run to train it further (up to --epochs), --overwrite to replace "
                "it, or another --model_dir.")
        mode = CONTINUE
    else:
        if continue_run:
            raise RunDirError(f"--continue_run: '{work_dir}' holds no finished run to continue.")
        if previous is not None or (work_dir / "checkpoints").exists():
            logger.warning("'%s' holds a run that never completed an epoch; starting it afresh.",
                           work_dir)
        clear(work_dir)
        return FRESH, previous
    if previous is not None:
        kept = inherit(previous, config)
        if kept:
            logger.warning("%s '%s' with its own settings where this command sets none: %s.",
                           "Resuming" if mode == RESUME else "Continuing", work_dir,
                           "; ".join(kept))
        changed = differences(previous, config, ("training", "data", "data_dir", "seed"))
        if changed:
            logger.warning("%s '%s' with changed settings, applied from now on: %s.",
                           "Resuming" if mode == RESUME else "Continuing", work_dir,
                           "; ".join(changed))
    logger.warning("%s '%s' after %d epochs: weights, optimizer state and the selection and "
                   "schedule state are restored%s.",
                   "Resuming" if mode == RESUME else "Continuing", work_dir,
                   epochs_done(work_dir),
                   "" if mode == RESUME else " from checkpoints/last.keras")
    return mode, previous
