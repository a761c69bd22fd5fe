import csv
import json
import os
import pathlib
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from apps import flags as app_flags
from apps import train
from keras_glimpse import training
from keras_glimpse.export import load_exported

from toy_registry import launcher_argv


def _rows(model_dir):
    with open(pathlib.Path(model_dir) / "history.csv") as f:
        return list(csv.DictReader(f))


def test_training_writes_config_checkpoints_history_export(toy, trained_dir):
    model_dir, result = trained_dir
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model"] == "toy_mnist" and config["training"]["steps_per_epoch"] == 3
    assert config["data"] == {"name": "mnist", "source": "embedded", "limit": 128}
    assert config["paper"]["paper_value"] == 50.0
    for name in ("checkpoints/last.keras", "checkpoints/best.keras", "metrics.json",
                 "export/saved_model.pb", "pictures/epoch_1.png"):
        assert (model_dir / name).exists(), name
    assert not (model_dir / "backup").exists()  # removed after a finished run
    assert [r["epoch"] for r in _rows(model_dir)] == ["0"]
    assert set(result["metrics"]) >= {"loss", "accuracy"}
    if training.has_tensorboard():
        assert any(model_dir.joinpath("logs").rglob("events.out.tfevents*"))
    served = load_exported(model_dir / "export").signatures["serve"](
        images=tf.zeros((2, 28, 28, 1)))
    assert served["predictions"].shape == (2, 10) and served["locations"].shape == (2, 2, 2)


def test_resolve_config_stage_overrides_and_errors(toy):
    cfg = training.resolve_config("toy_mnist", stage="finetune", batch_size=4, overrides={
        "units": 4, "training.learning_rate": 0.5, "data.limit": 8})
    assert cfg["training"]["epochs"] == 2  # from training.stages.finetune
    assert cfg["training"]["learning_rate"] == 0.5  # override beats the stage
    assert cfg["training"]["batch_size"] == 4 and "stages" not in cfg["training"]
    assert cfg["model_args"] == {"units": 4, "stage": "finetune"}  # the toy accepts `stage`
    assert cfg["data"]["limit"] == 8
    with pytest.raises(ValueError, match="'pretrain'.*finetune"):
        training.resolve_config("toy_mnist", stage="pretrain")
    with pytest.raises(TypeError, match="num_glimpses"):
        training.resolve_config("toy_mnist", overrides={"num_glimpse": 3})
    with pytest.raises(LookupError, match="toy_mnist"):
        training.resolve_config("toy_mnst")
    with pytest.raises(ValueError, match="strategy"):
        training.resolve_config("toy_mnist", strategy="tpu")
    assert training.parse_overrides(["a=1", "b=1e-3", "c=[1, 2]", "d=true", "e=relu"]) == {
        "a": 1, "b": 0.001, "c": [1, 2], "d": True, "e": "relu"}
    with pytest.raises(ValueError, match="key=value"):
        training.parse_overrides(["novalue"])


def test_missing_data_dir_is_a_clear_error(toy, tmp_path):
    cfg = training.resolve_config("toy_mnist", model_dir=tmp_path / "m",
                                  data_dir=tmp_path / "does_not_exist")
    with pytest.raises(FileNotFoundError, match="does_not_exist.*does not exist"):
        training.run_training(cfg)
    assert not (tmp_path / "m" / "checkpoints").exists()  # failed before training


def test_nan_loss_stops_and_keeps_last_good_checkpoint(toy, tmp_path):
    model_dir = tmp_path / "nan"
    cfg = training.resolve_config("toy_mnist", model_dir=model_dir, epochs=5,
                                  steps_per_epoch=2, overrides={"nan_at_step": 3}, verbose=0)
    with pytest.raises(training.TrainingDivergedError, match="diverged"):
        training.run_training(cfg)
    assert [r["epoch"] for r in _rows(model_dir)] == ["0"]  # epoch 1 diverged
    model, _ = training.restore_model(model_dir, checkpoint="last")
    weights = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)
    best, _ = training.restore_model(model_dir, checkpoint="best")
    for a, b in zip(weights, best.get_weights()):
        np.testing.assert_array_equal(a, b)
    meta = json.loads((model_dir / "backup" / "training_metadata.json").read_text())
    assert meta["epoch"] == 1  # a rerun resumes after the last good epoch
    assert not (model_dir / "export").exists()


def test_train_app_flags_in_process(toy, tmp_path, capsys):
    argv = ["train", "--model=toy_mnist", f"--model_dir={tmp_path / 'm'}", "--epochs=1",
            "--steps_per_epoch=2", "--eval_steps=1", "--batch_size=8", "--verbose=0",
            "--stage=finetune", "--override=units=4", "--override=training.learning_rate=0.05"]
    app_flags.FLAGS(argv)
    try:
        assert train.main([]) == 0
    finally:
        app_flags.FLAGS.unparse_flags()
    out = capsys.readouterr().out
    assert "accuracy" in out and "exported to" in out
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model_args"] == {"units": 4, "stage": "finetune"}
    assert cfg["training"]["learning_rate"] == 0.05 and cfg["training"]["batch_size"] == 8
    assert cfg["stage"] == "finetune"


def _backed_up_epoch(path):
    """The epoch in a BackupAndRestore metadata file; None if missing or half-written."""
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def test_sigkill_then_restart_resumes_from_backup(toy, tmp_path):
    """A run killed with SIGKILL at any moment (even mid-write of a backup file)
    resumes from its backup: at most the epoch in progress is redone, nothing
    that was backed up is lost, and the run finishes."""
    model_dir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_GLIMPSE_OFFLINE="1")
    flags = [f"--model=toy_mnist", f"--model_dir={model_dir}", "--steps_per_epoch=2",
             "--eval_steps=1", "--verbose=0"]
    meta = model_dir / "backup" / "training_metadata.json"
    previous = meta.with_name(meta.name + ".bkp")
    proc = subprocess.Popen(launcher_argv("train", *flags, "--epochs=1000"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        # Kill only once a fully written backup of epoch >= 2 was observed (so a
        # previous copy exists too); the kill itself may land mid-write.
        while time.time() < deadline and proc.poll() is None:
            if (_backed_up_epoch(meta) or 0) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    backed_up, before_that = _backed_up_epoch(meta), _backed_up_epoch(previous)
    done_before = [int(r["epoch"]) for r in _rows(model_dir)]
    assert done_before and max(backed_up or 0, before_that or 0) >= 2, (backed_up, before_that)
    epochs = max(backed_up or 0, before_that or 0) + 2
    restart = subprocess.run(launcher_argv("train", *flags, f"--epochs={epochs}"),
                             env=env, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr[-3000:]
    # Killed mid-write, a backup file is unreadable: the run must say so and
    # resume from the previous copy (.bkp), never crash or start over.
    fell_back = "resuming from the previous backup (.bkp)" in restart.stderr
    if backed_up is None:
        assert fell_back, restart.stderr[-3000:]
    resumed_at = before_that if fell_back else backed_up
    after = [int(r["epoch"]) for r in _rows(model_dir)][len(done_before):]
    assert after[0] == resumed_at, (after, backed_up, before_that, fell_back)
    # Nothing lost: at most the epoch in progress (or the one whose backup the
    # kill interrupted) is redone, and every later epoch runs.
    assert after[0] in (done_before[-1], done_before[-1] + 1), (after, done_before)
    assert after == list(range(resumed_at, epochs))
    assert (model_dir / "export" / "saved_model.pb").exists()


@pytest.mark.parametrize("flag", ["epochs", "batch_size", "steps_per_epoch", "eval_steps"])
def test_flags_meaning_nothing_to_do_are_errors(toy, flag):
    with pytest.raises(ValueError, match=f"--{flag} must be at least 1"):
        training.resolve_config("toy_mnist", **{flag: 0})


def test_misspelled_training_and_data_overrides_are_errors(toy):
    with pytest.raises(ValueError, match="training.learning_rat .*Did you mean "
                                         "training.learning_rate"):
        training.resolve_config("toy_mnist", overrides={"training.learning_rat": 0.1})
    with pytest.raises(ValueError, match="data.sourse"):
        training.resolve_config("ram_mnist28", overrides={"data.sourse": "embedded"})
    cfg = training.resolve_config("ram_mnist28", overrides={"training.learning_rate": 0.1,
                                                            "data.source": "embedded"})
    assert cfg["training"]["learning_rate"] == 0.1 and cfg["data"]["source"] == "embedded"


def test_intra_op_threads_apply_in_a_fresh_process_and_are_refused_once_tf_runs(caplog):
    import sys

    code = ("import tensorflow as tf; from keras_glimpse import training; "
            "training.set_intra_op_threads(1); "
            "print(tf.config.threading.get_intra_op_parallelism_threads())")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=pathlib.Path(__file__).resolve().parents[2], check=True)
    assert out.stdout.strip().splitlines()[-1] == "1"
    # This process has run ops already: a different request is logged, nothing changes.
    tf.constant(1.0) + 1.0
    before = tf.config.threading.get_intra_op_parallelism_threads()
    wanted = before + 3
    training.set_intra_op_threads(wanted)
    assert tf.config.threading.get_intra_op_parallelism_threads() == before
    assert f"intra_op_threads={wanted} not applied" in caplog.text
    with pytest.raises(ValueError, match="positive int"):
        training.set_intra_op_threads(0)


def test_run_training_sets_the_presets_threads_first(toy, tmp_path, monkeypatch):
    assert training.resolve_config("ram_mnist28")["training"]["intra_op_threads"] == 1
    seen = []

    def spy(threads):
        seen.append(threads)
        raise KeyboardInterrupt  # stop before anything else runs

    monkeypatch.setattr(training, "set_intra_op_threads", spy)
    config = training.resolve_config("toy_mnist", model_dir=str(tmp_path / "run"),
                                     overrides={"training.intra_op_threads": 2})
    with pytest.raises(KeyboardInterrupt):
        training.run_training(config)
    assert seen == [2] and not (tmp_path / "run").exists()
