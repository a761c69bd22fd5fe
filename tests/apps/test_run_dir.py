"""A model_dir is never silently replaced or mixed (keras_glimpse.run_dir), and
unreadable run files fall back or fail with one line naming the file."""

import csv
import json
import logging
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_glimpse import callbacks as callbacks_lib
from keras_glimpse import provenance
from keras_glimpse import registry
from keras_glimpse import run_dir
from keras_glimpse import training


def _epochs(model_dir):
    with open(pathlib.Path(model_dir) / "history.csv") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def _config(model_dir, epochs=1, **overrides):
    return training.resolve_config("toy_mnist", model_dir=model_dir, epochs=epochs,
                                   steps_per_epoch=2, eval_steps=1, verbose=0,
                                   overrides=overrides or None)


def _interrupt_at(monkeypatch, epoch):
    """The next training raises KeyboardInterrupt at the end of `epoch` (0-based),
    before that epoch is backed up (as a kill would)."""
    real = callbacks_lib.EpochTimer.on_epoch_end
    fired = []

    def on_epoch_end(self, e, logs=None):
        if e == epoch and not fired:
            fired.append(e)
            raise KeyboardInterrupt
        return real(self, e, logs)

    monkeypatch.setattr(callbacks_lib.EpochTimer, "on_epoch_end", on_epoch_end)


def test_finished_run_is_refused_then_continued_or_overwritten(toy, tmp_path):
    model_dir = tmp_path / "run"
    training.run_training(_config(model_dir), export=False)
    saved = {n: (model_dir / n).read_bytes() for n in ("config.json", "metrics.json")}
    best = (model_dir / "checkpoints" / "best.keras").read_bytes()
    with pytest.raises(run_dir.RunDirError, match=r"holds a finished run \(1 epochs\).*"
                                                  "--continue_run.*--overwrite"):
        training.run_training(_config(model_dir), export=False)
    assert {n: (model_dir / n).read_bytes() for n in saved} == saved  # nothing touched
    assert (model_dir / "checkpoints" / "best.keras").read_bytes() == best
    with pytest.raises(run_dir.RunDirError, match="has run 1 epochs already"):
        training.run_training(_config(model_dir), export=False, continue_run=True)
    # Continue: from last.keras, epoch counter goes on, weights not re-initialised.
    result = training.run_training(_config(model_dir, epochs=3), export=False,
                                   continue_run=True)
    assert _epochs(model_dir) == [0, 1, 2] and len(result["history"]["loss"]) == 2
    assert int(np.asarray(result["model"].optimizer.iterations)) == 3 * 2
    # Each training command (not the refused ones) says which code ran it.
    assert [(x["mode"], x["initial_epoch"]) for x in provenance.read(model_dir)] == [
        ("fresh", 0), ("continue", 1)]
    # Overwrite: a fresh run, the old history (and provenance) gone.
    training.run_training(_config(model_dir), export=False, overwrite=True)
    assert _epochs(model_dir) == [0]
    assert [x["mode"] for x in provenance.read(model_dir)] == ["fresh"]
    with pytest.raises(run_dir.RunDirError, match="contradict"):
        training.run_training(_config(model_dir), overwrite=True, continue_run=True)


def test_different_run_is_refused_and_config_never_rewritten(toy, tmp_path):
    model_dir = tmp_path / "run"
    training.run_training(_config(model_dir), export=False)
    before = (model_dir / "config.json").read_text()
    with pytest.raises(run_dir.RunDirError, match=r"different run \(model_args.units: "
                                                  r"None -> 4\)"):
        training.run_training(_config(model_dir, units=4), export=False)
    assert (model_dir / "config.json").read_text() == before
    # config.json is written only once data and model exist.
    fresh = tmp_path / "fresh"
    cfg = _config(fresh)
    cfg["data_dir"] = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        training.run_training(cfg)
    assert not (fresh / "config.json").exists() and not (fresh / ".lock").exists()


def test_second_trainer_is_refused_stale_lock_taken_over(toy, tmp_path, caplog):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    lock = model_dir / run_dir.LOCK_FILE
    import socket

    lock.write_text(f"{os.getpid()} {socket.gethostname()}")  # a live process holds it
    with pytest.raises(run_dir.RunDirError, match=rf"being trained by process {os.getpid()}"):
        training.run_training(_config(model_dir), export=False)
    assert not (model_dir / "config.json").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    lock.write_text(f"{dead} {socket.gethostname()}")
    with caplog.at_level(logging.WARNING, logger="keras_glimpse"):
        training.run_training(_config(model_dir), export=False)
    assert "stale lock" in caplog.text and not lock.exists()


def test_resume_applies_a_changed_learning_rate_and_says_so(toy, tmp_path, monkeypatch, caplog):
    model_dir = tmp_path / "run"
    _interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        training.run_training(_config(model_dir, epochs=3), export=False)
    assert _epochs(model_dir) == [0] and (model_dir / "backup").is_dir()
    assert not (model_dir / run_dir.LOCK_FILE).exists()  # released on the way out
    with caplog.at_level(logging.WARNING, logger="keras_glimpse"):
        result = training.run_training(
            _config(model_dir, epochs=3, **{"training.learning_rate": 0.5}), export=False)
    assert _epochs(model_dir) == [0, 1, 2] and len(result["history"]["loss"]) == 2
    with open(model_dir / "history.csv") as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    assert rates == pytest.approx([0.01, 0.5, 0.5])
    assert "training.learning_rate: 0.01 -> 0.5" in caplog.text
    assert "(restored) -> 0.5" in caplog.text
    # The same command again, once the change is recorded: nothing to apply.
    assert json.loads((model_dir / "config.json").read_text())["training"]["learning_rate"] == 0.5


def test_continue_keeps_the_runs_own_settings_that_the_command_does_not_set(toy, tmp_path,
                                                                             caplog):
    # A run trained with its own learning rate, continued with only
    # --continue_run --epochs: the preset's rate must not come back.
    model_dir = tmp_path / "run"
    training.run_training(_config(model_dir, epochs=1, **{"training.learning_rate": 0.003}),
                          export=False)
    with caplog.at_level(logging.WARNING, logger="keras_glimpse"):
        training.run_training(_config(model_dir, epochs=2), export=False, continue_run=True)
    with open(model_dir / "history.csv") as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    assert rates == pytest.approx([0.003, 0.003])
    assert "training.learning_rate=0.003 (not 0.01)" in caplog.text
    assert json.loads((model_dir / "config.json").read_text())["training"][
        "learning_rate"] == 0.003
    # What the command does set still applies (here the number of epochs).
    assert _epochs(model_dir) == [0, 1]


def test_resume_with_a_changed_architecture_is_refused(toy, tmp_path, monkeypatch):
    model_dir = tmp_path / "run"
    _interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        training.run_training(_config(model_dir, epochs=3), export=False)
    with pytest.raises(run_dir.RunDirError, match="model_args.units"):
        training.run_training(_config(model_dir, epochs=3, units=4), export=False)
    assert (model_dir / "backup").is_dir()  # the interrupted run is still resumable


def _truncate(path):
    path = pathlib.Path(path)
    path.write_bytes(path.read_bytes()[: max(len(path.read_bytes()) // 3, 1)])


@pytest.mark.parametrize("victim", ["training_metadata.json", "latest.weights.h5"])
def test_truncated_backup_file_falls_back_to_previous_copy(toy, tmp_path, monkeypatch, caplog,
                                                           victim):
    model_dir = tmp_path / "run"
    _interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        training.run_training(_config(model_dir, epochs=4), export=False)
    backup = model_dir / "backup"
    assert (backup / f"{victim}.bkp").is_file()
    _truncate(backup / victim)
    with caplog.at_level(logging.WARNING, logger="keras_glimpse"):
        training.run_training(_config(model_dir, epochs=4), export=False)
    assert f"'{backup / victim}' is unreadable" in caplog.text
    assert "previous backup (.bkp)" in caplog.text
    # Resumed from the previous backup (epoch 0 done): epoch 1 is redone, nothing skipped.
    assert _epochs(model_dir) == [0, 1, 1, 2, 3]


def test_backup_written_atomically(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((4, 2)), np.zeros((4, 1))
    cb = callbacks_lib.SafeBackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names == ["latest.weights.h5", "latest.weights.h5.bkp", "training_metadata.json",
                     "training_metadata.json.bkp"]  # no temporary file left
    assert json.loads((tmp_path / "b" / "training_metadata.json").read_text())["epoch"] == 2
    assert json.loads((tmp_path / "b" / "training_metadata.json.bkp").read_text())["epoch"] == 1


def test_unreadable_backup_without_copy_is_one_line(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "latest.weights.h5").write_bytes(b"\x89HDF\r\n")
    cb = callbacks_lib.SafeBackupAndRestore(str(tmp_path / "b"))
    with pytest.raises(callbacks_lib.BackupError, match="unreadable.*no previous copy.*"
                                                        "--overwrite"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), verbose=0, callbacks=[cb])


def test_truncated_best_falls_back_to_last_and_truncated_config_is_named(toy, tmp_path, caplog):
    model_dir = tmp_path / "run"
    training.run_training(_config(model_dir), export=False)
    best = model_dir / "checkpoints" / "best.keras"
    _truncate(best)
    with caplog.at_level(logging.WARNING, logger="keras_glimpse"):
        model, _ = training.restore_model(model_dir)
    assert f"'{best}' is unreadable (BadZipFile" in caplog.text and "last.keras" in caplog.text
    last, _ = training.restore_model(model_dir, checkpoint="last")
    for a, b in zip(model.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(a, b)
    _truncate(model_dir / "checkpoints" / "last.keras")
    with pytest.raises(registry.CorruptFileError, match="last.keras' is unreadable"):
        training.restore_model(model_dir, checkpoint="last")
    _truncate(model_dir / "config.json")
    with pytest.raises(run_dir.RunDirError, match=r"config.json' is unreadable .*truncated"):
        training.restore_model(model_dir)
    with pytest.raises(run_dir.RunDirError, match=r"config.json' is unreadable"):
        training.run_training(_config(model_dir), export=False)


def test_app_reports_refusal_as_one_line(toy, tmp_path, trained_dir):
    from toy_registry import launcher_argv

    model_dir, _ = trained_dir
    code = launcher_argv("train", "--model=toy_mnist", f"--model_dir={model_dir}",
                         "--steps_per_epoch=1", "--verbose=0")
    code[2] = code[2].replace("app.run(m.main)", "from apps import quiet; "
                              "app.run(quiet.wrap(m.main))")
    env = dict(os.environ, KERAS_GLIMPSE_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(code, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "finished run" in errors[0]
    assert "Traceback" not in proc.stderr


def test_continue_stopped_before_its_first_epoch_leaves_the_runs_config(toy, tmp_path,
                                                                        monkeypatch):
    # --continue_run with new settings, killed before an epoch ends: the
    # finished run's config.json still records what it was trained with, so
    # the next plain --continue_run does not pick up settings never used.
    model_dir = tmp_path / "run"
    training.run_training(_config(model_dir), export=False)
    before = (model_dir / "config.json").read_text()
    on_epoch_end = callbacks_lib.EpochTimer.on_epoch_end
    _interrupt_at(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        training.run_training(_config(model_dir, epochs=3, **{"training.learning_rate": 0.5}),
                              export=False, continue_run=True)
    assert (model_dir / "config.json").read_text() == before
    monkeypatch.setattr(callbacks_lib.EpochTimer, "on_epoch_end", on_epoch_end)
    training.run_training(_config(model_dir, epochs=2, **{"training.learning_rate": 0.5}),
                          export=False, continue_run=True)
    recorded = json.loads((model_dir / "config.json").read_text())["training"]
    assert recorded["learning_rate"] == 0.5 and recorded["epochs"] == 2


def test_model_dir_that_is_a_file_is_one_clear_error(toy, tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    with pytest.raises(run_dir.RunDirError, match="is a file, not a folder"):
        training.run_training(_config(afile), export=False)
    assert afile.read_text() == "keep me"
