"""apps.reproduce / keras_glimpse.reproduce on the toy preset: the protocol
(validation selection, test read once), resumption, partial reports, the
README results table and shipped weights."""

import csv
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from keras_glimpse import provenance, registry, reproduce, training, weights
from toy_registry import TOY_PRESETS, install_toy

PRESETS = TOY_PRESETS + """
[toy_mnist.reproduce]
baselines = [{label = "small core", overrides = {units = 4}, paper_value = 60.0}]
"""
PRESETS = PRESETS.replace('paper_value = 50.0', 'paper_value = 50.0\npaper_target = 99.0', 1)
PRESETS = PRESETS.replace('epochs = 1\nlearning_rate = 0.01',
                          'epochs = 3\nlearning_rate = 0.01', 1)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    with pytest.MonkeyPatch.context() as mp:
        install_toy(mp, root, text=PRESETS)
        mp.setattr(weights, "WEIGHTS_DIR", root / "pretrained")
        result = reproduce.reproduce("toy_mnist", seeds=(0, 1), runs_dir=root / "runs",
                                     results_dir=root / "results", verbose=0,
                                     ship_weights=True)
        yield root, result, mp


def _history(model_dir):
    with open(pathlib.Path(model_dir) / "history.csv") as f:
        return list(csv.DictReader(f))


def test_results_hold_every_run_seed_and_the_paper(reproduced):
    root, result, _ = reproduced
    saved = json.loads((root / "results" / "toy_mnist.json").read_text())
    assert saved["model"] == "toy_mnist" and saved["paper"]["paper_value"] == 50.0
    assert set(saved["runs"]) == {"learned", "small core"}
    assert saved["runs"]["small core"]["paper_value"] == 60.0
    learned = saved["runs"]["learned"]
    errors = [r["metrics"]["test"]["error"] for r in learned["per_seed"]]
    assert learned["test_test_error"]["per_seed"] == pytest.approx(errors)
    assert learned["test_test_error"]["mean"] == pytest.approx(np.mean(errors))
    assert learned["test_test_error"]["std"] == pytest.approx(np.std(errors, ddof=1))
    assert saved["complete"] and saved["target"] == 99.0 and saved["commit"]
    assert saved["machine"]["cpu_count"] >= 1 and saved["data"]["source"] == "embedded"
    assert not saved["data"]["full_data"]
    assert learned["epochs"] == [3, 3] and all(w > 0 for w in learned["wall_seconds"])
    assert (root / "results" / "curves" / "toy_mnist.png").stat().st_size > 1000


def test_each_seed_names_the_commit_that_trained_it_not_the_reporting_one(reproduced):
    root, result, _ = reproduced
    commit, dirty = provenance.git_commit()
    trained = (commit or "unknown") + ("+dirty" if dirty else "")
    for run in result["runs"]["learned"]["per_seed"]:
        assert run["trained_commits"] == [trained]
    assert weights.index()["toy_mnist"]["trained_commits"] == [trained]
    # A run trained by other code keeps that code's commit in a later report.
    model_dir = pathlib.Path(result["runs"]["learned"]["per_seed"][0]["model_dir"])
    lines = (model_dir / provenance.FILE).read_text()
    try:
        (model_dir / provenance.FILE).write_text(
            lines.replace(f'"commit": "{commit}"', '"commit": "0000abc"'))
        again = reproduce.reproduce("toy_mnist", seeds=(0,), runs_dir=root / "runs",
                                    results_dir=root / "results_prov", verbose=0,
                                    report_only=True, baselines=False)
        seed0 = again["runs"]["learned"]["per_seed"][0]["trained_commits"]
        assert seed0 == (["0000abc" + ("+dirty" if dirty else "")] if commit else ["unknown"])
        (model_dir / provenance.FILE).unlink()  # a run from before provenance
        again = reproduce.reproduce("toy_mnist", seeds=(0,), runs_dir=root / "runs",
                                    results_dir=root / "results_prov", verbose=0,
                                    report_only=True, baselines=False)
        assert again["runs"]["learned"]["per_seed"][0]["trained_commits"] == ["unknown"]
    finally:
        (model_dir / provenance.FILE).write_text(lines)


def test_selection_is_on_validation_and_test_comes_from_the_selected_checkpoint(reproduced):
    root, result, _ = reproduced
    for run in result["runs"]["learned"]["per_seed"]:
        rows = _history(run["model_dir"])
        val = [float(r["val_loss"]) for r in rows]  # the toy selects on val_loss
        sel = run["metrics"]["selection"]
        assert sel["monitor"] == "val_loss" and sel["epoch"] == int(np.argmin(val))
        assert sel["best"] == pytest.approx(min(val))
        model, config = training.restore_model(run["model_dir"], checkpoint="best",
                                               compile=True)
        again = training.evaluate_model(model, config, monte_carlo=())
        assert again["loss"] == pytest.approx(run["metrics"]["test"]["loss"], rel=1e-5)


def test_a_second_call_reuses_finished_runs(reproduced):
    root, result, _ = reproduced
    model_dir = result["runs"]["learned"]["per_seed"][0]["model_dir"]
    before = (pathlib.Path(model_dir) / "history.csv").read_text()
    again = reproduce.reproduce("toy_mnist", seeds=(0, 1), runs_dir=root / "runs",
                                results_dir=root / "results2", verbose=0)
    assert (pathlib.Path(model_dir) / "history.csv").read_text() == before
    assert again["runs"]["learned"]["test_test_error"] == \
        result["runs"]["learned"]["test_test_error"]


def test_report_only_shows_runs_in_progress_without_reading_the_test_split(reproduced,
                                                                           tmp_path):
    root, result, _ = reproduced
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(root / "runs", runs)
    (runs / "toy_mnist" / "learned" / "seed1" / "metrics.json").unlink()  # "still training"
    partial = reproduce.reproduce("toy_mnist", seeds=(0, 1), runs_dir=runs,
                                  results_dir=tmp_path / "results", report_only=True)
    learned = partial["runs"]["learned"]
    assert not learned["complete"] and not partial["complete"]
    assert "test" not in learned["per_seed"][1]["metrics"]
    assert "test_test_error" not in learned  # no mean over some seeds only
    assert learned["selection"]["best_per_seed"][1] is not None
    with pytest.raises(FileNotFoundError, match="No run"):
        reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "empty",
                            results_dir=tmp_path / "r3", report_only=True)


def test_readme_results_table_is_generated_from_the_json(reproduced, monkeypatch):
    root, _, _ = reproduced
    path = pathlib.Path(__file__).resolve().parents[2] / "tools" / "update_readme.py"
    spec = importlib.util.spec_from_file_location("update_readme_results", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "ROOT", root)
    table = mod.results_table()
    row = next(line for line in table.splitlines() if "`toy_mnist`" in line)
    saved = json.loads((root / "results" / "toy_mnist.json").read_text())
    mean = saved["runs"]["learned"]["test_test_error"]["mean"]
    assert f"{mean:.2f} ±" in row and "(2 seeds)" in row and "≤ 99.0" in row
    assert "small core" in row and "(paper 60.0)" in row


def test_shipped_weights_are_the_best_validation_seed_and_load_by_name(reproduced):
    root, result, _ = reproduced
    record = weights.index()["toy_mnist"]
    best = result["runs"]["learned"]["selection"]["best_per_seed"]
    assert record["seed"] == int(np.argmin(best))  # val_loss: lower is better
    run_config = training.read_config(
        result["runs"]["learned"]["per_seed"][record["seed"]]["model_dir"])
    assert record["model_args"] == run_config["model_args"]  # what loading by name builds
    assert weights.available() == ["toy_mnist"]
    model = registry.build("toy_mnist", weights="pretrained")
    reference, _ = training.restore_model(
        result["runs"]["learned"]["per_seed"][record["seed"]]["model_dir"], checkpoint="best")
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(model(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_later_report_keeps_the_record_of_the_shipped_weights(reproduced, tmp_path):
    root, result, _ = reproduced
    (tmp_path / "results").mkdir()
    saved = (root / "results" / "toy_mnist.json").read_text()
    (tmp_path / "results" / "toy_mnist.json").write_text(saved)
    report = reproduce.reproduce("toy_mnist", seeds=(0, 1), runs_dir=root / "runs",
                                 results_dir=tmp_path / "results", verbose=0, report_only=True)
    assert report["weights"] == json.loads(saved)["weights"] == result["weights"]
    on_disk = json.loads((tmp_path / "results" / "toy_mnist.json").read_text())
    assert on_disk["weights"] == result["weights"]


def test_pretrained_weights_missing_is_one_clear_error(toy, monkeypatch, tmp_path):
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "none")
    with pytest.raises(LookupError, match="No pretrained weights.*toy_mnist.*apps.reproduce"):
        registry.build("toy_mnist", weights="pretrained")


def test_the_test_metrics_come_from_the_selected_epoch_not_the_last(toy, tmp_path, monkeypatch):
    """Selecting the *highest* validation loss (the toy's loss falls every
    epoch) picks epoch 0, so best.keras and last.keras differ: metrics.json must
    be best.keras's, and history/selection must agree."""
    from toy_model import ToyGlimpseModel

    monkeypatch.setattr(ToyGlimpseModel, "selection_metric", lambda self: ("loss", "max"),
                        raising=False)
    model_dir = tmp_path / "run"
    config = training.resolve_config("toy_mnist", model_dir=model_dir, epochs=3, verbose=0)
    result = training.run_training(config, export=False)
    val = [float(r["val_loss"]) for r in _history(model_dir)]
    assert result["selection"]["epoch"] == int(np.argmax(val)) == 0, val
    measured = json.loads((model_dir / "metrics.json").read_text())["test"]["loss"]
    scores = {}
    for which in ("best", "last"):
        model, cfg = training.restore_model(model_dir, checkpoint=which, compile=True)
        scores[which] = training.evaluate_model(model, cfg, monte_carlo=())["loss"]
    assert measured == pytest.approx(scores["best"], rel=1e-5)
    assert abs(scores["best"] - scores["last"]) > 1e-3


STAGED = TOY_PRESETS + """
[toy_mnist.reproduce]
stages = [{name = "main"},
          {name = "anneal", stage = "finetune", init_from = ["main"], overrides = {"training.epochs" = 1}}]
"""


def test_a_staged_protocol_chains_its_stages_and_reports_the_last(tmp_path, monkeypatch):
    install_toy(monkeypatch, tmp_path, text=STAGED)
    assert [s["name"] for s in reproduce.stage_plan("toy_mnist")] == ["main", "anneal"]
    seen = {}
    real = training.build_model

    def spy(config, compile=True, init=False):
        model = real(config, compile=compile, init=init)
        if init:
            seen[config["model_dir"]] = (model.get_weights(), config)
        return model

    monkeypatch.setattr(training, "build_model", spy)
    # --epochs shortens the first stage; the second fixes its own length.
    result = reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs", epochs=2,
                                 results_dir=tmp_path / "results", verbose=0)
    base = tmp_path / "runs" / "toy_mnist" / "learned" / "seed0"
    run = result["runs"]["learned"]["per_seed"][0]
    assert [s["name"] for s in run["stages"]] == ["main", "anneal"]
    assert [s["epochs"] for s in run["stages"]] == [2, 1]
    assert run["model_dir"] == str(base / "anneal") and run["epochs"] == 2 + 1
    assert run["metrics"] == json.loads((base / "anneal" / "metrics.json").read_text())
    # The second stage starts from the first stage's selected weights, with its
    # own stage table (learning rate) and overrides (epochs).
    start, config = seen[str(base / "anneal")]
    main, _ = training.restore_model(base / "main", checkpoint="best")
    for a, b in zip(start, main.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert config["training"]["learning_rate"] == 0.001 and config["training"]["epochs"] == 1
    assert result["complete"]
    # Monte Carlo test errors (M sampled episodes per image) for the last stage only.
    first = json.loads((base / "main" / "metrics.json").read_text())["test"]
    assert "accuracy" in first and not any(k.startswith("mc") for k in first)
    assert {"mc1_error", "mc10_error"} <= set(run["metrics"]["test"])
    # A stage starting from a later (or unknown) stage is a one-line error.
    (tmp_path / "bad").mkdir()
    install_toy(monkeypatch, tmp_path / "bad", text=TOY_PRESETS + """
[toy_mnist.reproduce]
stages = [{name = "a", init_from = ["b"]}, {name = "b"}]
""")
    with pytest.raises(ValueError, match="stage 'a' starts from 'b', which is not an earlier"):
        reproduce.stage_plan("toy_mnist")


def test_readme_best_epoch_of_a_staged_run_counts_the_earlier_stages(tmp_path, monkeypatch):
    path = pathlib.Path(__file__).resolve().parents[2] / "tools" / "update_readme.py"
    spec = importlib.util.spec_from_file_location("update_readme_stages", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "results").mkdir()
    learned = {"complete": True, "epochs": [260], "wall_seconds": [60.0],
               "selection": {"monitor": "val_accuracy", "best_per_seed": [0.9],
                             "epoch_per_seed": [28]},
               "per_seed": [{"stages": [{"name": "main", "epochs": 200},
                                        {"name": "anneal", "epochs": 60}]}]}
    (tmp_path / "results" / "staged.json").write_text(json.dumps(
        {"model": "staged", "paper": {}, "runs": {"learned": learned}}))
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    row = next(line for line in mod.results_table().splitlines() if "`staged`" in line)
    assert "| 260 (229) |" in row  # epoch 29 of the anneal stage is epoch 229 of the run


def _report_with(reproduced, tmp_path, extra):
    """The finished toy runs reported (nothing trained) under the preset table
    without a paper number, plus the TOML lines `extra`."""
    root, _, mp = reproduced
    text = PRESETS.replace("paper_value = 50.0\npaper_target = 99.0\n", "") + extra
    try:
        install_toy(mp, tmp_path, text=text)
        return reproduce.reproduce("toy_mnist", seeds=(0, 1), runs_dir=root / "runs",
                                   results_dir=tmp_path / "results", report_only=True)
    finally:
        install_toy(mp, root, text=PRESETS)


def test_without_a_paper_number_the_target_is_to_beat_the_named_baseline(reproduced, tmp_path):
    # URAM has no published number: reproduce.beats names the same-budget
    # baseline the learned policy must beat (lower is better here).
    saved = _report_with(reproduced, tmp_path, 'beats = "small core"\n')
    learned = saved["runs"]["learned"]["test_test_error"]["mean"]
    rival = saved["runs"]["small core"]["test_test_error"]["mean"]
    assert learned != rival and saved["target"] == "below small core"
    assert saved["met"] is (learned < rival)


def test_checks_bound_a_test_metric_by_a_number_or_another_metric():
    test = {"accuracy": 0.95, "accuracy_all_patches": 0.96, "kept_fraction": 0.55}
    out = reproduce.evaluate_checks(
        [{"metric": "accuracy", "at_least": "accuracy_all_patches", "offset": -0.02},
         {"metric": "kept_fraction", "at_most": 0.5}], test)
    assert [c["passed"] for c in out] == [True, False]
    assert out[0]["bound"] == pytest.approx(0.94) and out[1]["bound"] == 0.5
    assert out[0]["check"] == "accuracy >= accuracy_all_patches -0.02"
    out = reproduce.evaluate_checks(
        [{"metric": "accuracy", "at_least": "accuracy_all_patches", "offset": -0.005}], test)
    assert not out[0]["passed"]  # 0.95 < 0.955
    with pytest.raises(KeyError, match="did not report"):
        reproduce.evaluate_checks([{"metric": "accuracy", "at_least": "nope"}], test)
    # A baseline's metric not reported yet leaves the check pending.
    out = reproduce.evaluate_checks(
        [{"metric": "accuracy", "at_least": "random policy:accuracy", "offset": 0.1}], test)
    assert out[0]["passed"] is None and "random policy:accuracy" in out[0]["pending"]
    # `scale` multiplies the reference ("10 % below the random policy's RMSE").
    test = {"rmse": 40.0, "rmse_random_policy": 45.0}
    out = reproduce.evaluate_checks(
        [{"metric": "rmse", "at_most": "rmse_random_policy", "scale": 0.9}], test)
    assert out[0]["bound"] == pytest.approx(40.5) and out[0]["passed"]
    assert out[0]["check"] == "rmse <= 0.9 * rmse_random_policy"
    out = reproduce.evaluate_checks(
        [{"metric": "rmse", "at_most": "rmse_random_policy", "scale": 0.85}], test)
    assert not out[0]["passed"]  # 40 > 38.25


def test_checks_decide_met_from_the_learned_runs_mean_test_metrics(reproduced, tmp_path):
    saved = _report_with(reproduced, tmp_path, (
        'checks = [{metric = "accuracy", at_least = 0.0}, '
        '{metric = "accuracy", at_most = "accuracy", offset = -0.5}, '
        '{metric = "accuracy", at_least = "small core:accuracy", offset = -2.0}]\n'))
    mean = np.mean([r["metrics"]["test"]["accuracy"]
                    for r in saved["runs"]["learned"]["per_seed"]])
    rival = np.mean([r["metrics"]["test"]["accuracy"]
                     for r in saved["runs"]["small core"]["per_seed"]])
    assert [c["value"] for c in saved["checks"]] == pytest.approx([mean, mean, mean])
    assert saved["checks"][2]["bound"] == pytest.approx(rival - 2.0)  # the baseline's mean
    assert [c["passed"] for c in saved["checks"]] == [True, False, True]
    assert saved["met"] is False and "accuracy >= 0.0" in saved["target"]


def test_checks_may_name_an_earlier_stages_test_metric(tmp_path):
    stages = []
    for name, acc in (("hr", 0.97), ("finetune", 0.95)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"test": {"accuracy": acc}}))
        stages.append({"name": name, "model_dir": str(tmp_path / name)})
    tests = reproduce._stage_tests({"stages": stages})
    assert tests == {"hr:accuracy": 0.97, "finetune:accuracy": 0.95}
    out = reproduce.evaluate_checks(
        [{"metric": "accuracy", "at_least": "hr:accuracy", "offset": -0.02}],
        dict({"accuracy": 0.95}, **tests))
    assert out[0]["passed"] and out[0]["bound"] == pytest.approx(0.95)


def test_evaluations_measure_the_selected_model_once_on_another_test_set(reproduced, tmp_path):
    root, result, mp = reproduced
    text = PRESETS + 'evaluations = [{label = "first 32", data = {limit = 32}}]\n'
    try:
        install_toy(mp, tmp_path, text=text)
        saved = reproduce.reproduce("toy_mnist", seeds=(0, 1), runs_dir=root / "runs",
                                    results_dir=tmp_path / "results", verbose=0)
        expected = []
        for run in saved["runs"]["learned"]["per_seed"]:
            model, config = training.restore_model(run["model_dir"], compile=True)
            config["data"]["limit"] = 32
            expected.append(training.evaluate_model(model, config)["accuracy"])
            assert (pathlib.Path(run["model_dir"]) / "metrics_first_32.json").is_file()
        # A second report reads the kept measurement (report_only trains and measures nothing).
        again = reproduce.reproduce("toy_mnist", seeds=(0, 1), runs_dir=root / "runs",
                                    results_dir=tmp_path / "results", report_only=True)
    finally:
        install_toy(mp, root, text=PRESETS)
    got = saved["evaluations"]["first 32"]["accuracy"]
    assert got["per_seed"] == pytest.approx(expected)
    assert again["evaluations"] == saved["evaluations"]
    full = [r["metrics"]["test"]["accuracy"] for r in saved["runs"]["learned"]["per_seed"]]
    assert got["per_seed"] != pytest.approx(full)  # another test set than the run's own


def test_stage_epochs_sets_one_stage_and_is_recorded(tmp_path, monkeypatch):
    install_toy(monkeypatch, tmp_path, text=STAGED)
    with pytest.raises(ValueError, match="stages are \\['main', 'anneal'\\]"):
        reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs", stage_epochs={"agent": 2},
                            results_dir=tmp_path / "results", verbose=0)
    with pytest.raises(ValueError, match="stage_epochs"):
        reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs", stage_epochs={"main": 0},
                            results_dir=tmp_path / "results", verbose=0)
    # The named stage wins over its own length (1); the other keeps the preset's (1).
    result = reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs",
                                 stage_epochs={"anneal": 2},
                                 results_dir=tmp_path / "results", verbose=0)
    run = result["runs"]["learned"]["per_seed"][0]
    assert [s["epochs"] for s in run["stages"]] == [1, 2]
    assert result["stage_epochs_override"] == {"anneal": 2}
    assert "{'stage_epochs_override': {'anneal': 2}}" in reproduce.format_result(result)
    assert [s["planned_epochs"] for s in result["runs"]["learned"]["per_seed"][0]["stages"]] \
        == [1, 2]
    # A report written later, without the flag, still records what the run trained with.
    report = reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs", report_only=True,
                                 results_dir=tmp_path / "results", verbose=0)
    assert report["stage_epochs_override"] == {"anneal": 2} and report["epochs_override"] is None
    # So for a protocol without stages (--epochs).
    (tmp_path / "plain").mkdir()
    install_toy(monkeypatch, tmp_path / "plain")
    kw = dict(runs_dir=tmp_path / "plain" / "runs", results_dir=tmp_path / "plain" / "results",
              verbose=0)
    reproduce.reproduce("toy_mnist", epochs=2, **kw)
    report = reproduce.reproduce("toy_mnist", report_only=True, **kw)
    assert report["epochs_override"] == 2 and report["stage_epochs_override"] is None


def test_report_only_finds_the_data_a_staged_run_used(tmp_path, monkeypatch):
    """Without --data_dir, the report reads it from the run's first stage."""
    install_toy(monkeypatch, tmp_path, text=STAGED)
    data_dir = str(tmp_path / "data")
    (tmp_path / "data").mkdir()
    reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs", data_dir=data_dir,
                        results_dir=tmp_path / "results", verbose=0)
    seen = []
    real = training.resolve_config

    def spy(name, *args, **kwargs):
        seen.append(kwargs.get("data_dir"))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(training, "resolve_config", spy)
    reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs", report_only=True,
                        results_dir=tmp_path / "results", verbose=0)
    assert seen and seen[0] == data_dir


def test_a_baseline_shares_the_learned_runs_leading_stages(tmp_path, monkeypatch):
    """`shared_stages`: the baseline starts its later stage from the learned
    run's first stage (same weights) instead of training that stage again."""
    install_toy(monkeypatch, tmp_path, text=STAGED + """
baselines = [{label = "small lr", overrides = {"training.learning_rate" = 0.002}, shared_stages = ["main"]}]
""")
    assert reproduce.shared_stages("toy_mnist") == {"small lr": ["main"]}
    trained, starts = [], {}
    real_run, real_build = training.run_training, training.build_model

    def run_spy(config, *args, **kwargs):
        trained.append(config["model_dir"])
        return real_run(config, *args, **kwargs)

    def build_spy(config, compile=True, init=False):
        model = real_build(config, compile=compile, init=init)
        if init:
            starts[config["model_dir"]] = model.get_weights()
        return model

    monkeypatch.setattr(training, "run_training", run_spy)
    monkeypatch.setattr(training, "build_model", build_spy)
    result = reproduce.reproduce("toy_mnist", runs_dir=tmp_path / "runs",
                                 results_dir=tmp_path / "results", verbose=0)
    runs = tmp_path / "runs" / "toy_mnist"
    learned, baseline = runs / "learned" / "seed0", runs / "small_lr" / "seed0"
    # The first stage trains once; the baseline's anneal starts from it.
    assert trained == [str(learned / "main"), str(learned / "anneal"), str(baseline / "anneal")]
    main, _ = training.restore_model(learned / "main", checkpoint="best")
    for a, b in zip(starts[str(baseline / "anneal")], main.get_weights()):
        np.testing.assert_array_equal(a, b)
    stages = result["runs"]["small lr"]["per_seed"][0]["stages"]
    assert stages[0]["model_dir"] == str(learned / "main")
    assert stages[0]["shared_with"] == "learned" and "shared_with" not in stages[1]
    assert result["complete"]
    # Sharing a stage after one the baseline trains itself is a one-line error.
    (tmp_path / "bad").mkdir()
    install_toy(monkeypatch, tmp_path / "bad", text=STAGED + """
baselines = [{label = "b", shared_stages = ["anneal"]}]
""")
    with pytest.raises(ValueError, match="can share only a leading run of the stages"):
        reproduce.shared_stages("toy_mnist")


def test_the_curves_y_axis_names_what_is_plotted(reproduced, monkeypatch, tmp_path):
    """Error curves are labelled as errors whatever the selection metric."""
    import copy

    import matplotlib.axes

    root, result, _ = reproduced
    result = copy.deepcopy(result)
    result["paper"]["paper_metric"] = "accuracy"  # not the paper-error branch
    labels, real = [], matplotlib.axes.Axes.set_ylabel

    def spy(self, text, *args, **kwargs):
        labels.append(text)
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_ylabel", spy)
    for r in result["runs"]["learned"]["per_seed"]:
        r["metrics"]["selection"]["monitor"] = "val_accuracy"
    assert "val_error" in reproduce.read_history(result["runs"]["learned"]["per_seed"][0]
                                                 ["model_dir"])
    reproduce.plot_curves("toy_mnist", result, tmp_path / "curve.png")
    assert labels == ["error %"]
