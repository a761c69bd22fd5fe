import json
import pytest

from apps import evaluate
from apps import flags as app_flags
from keras_glimpse import training


def _run(main, argv):
    app_flags.FLAGS(["app", *argv])
    try:
        return main([])
    finally:
        app_flags.FLAGS.unparse_flags()


def test_evaluate_prints_metrics_monte_carlo_and_paper_number(toy, trained_dir, capsys):
    model_dir, _ = trained_dir
    assert _run(evaluate.main, [f"--model_dir={model_dir}", "--eval_steps=2"]) == 0
    out = capsys.readouterr().out
    for key in ("loss", "accuracy", "mc1_error", "mc10_error"):
        assert key in out, (key, out)
    # the preset's paper number beside ours, in the same unit (error in %)
    line = next(ln for ln in out.splitlines() if ln.startswith("test error %:"))
    assert "greedy" in line and "M=1 " in line and "M=10 " in line and line.endswith("paper: 50.0")


def test_evaluate_model_returns_errors_in_percent(toy, trained_dir):
    model_dir, _ = trained_dir
    model, config = training.restore_model(model_dir, compile=True)
    result = training.evaluate_model(model, config, eval_steps=1, monte_carlo=(1, 3))
    assert 0.0 <= result["mc1_error"] <= 100.0 and 0.0 <= result["mc3_error"] <= 100.0
    assert result["paper_test_error"] == 50.0


def test_restore_errors(toy, tmp_path):
    with pytest.raises(ValueError, match="--model"):
        training.restore_model()
    # A mistyped --model_dir beside --model is an error, never untrained weights.
    with pytest.raises(FileNotFoundError, match="not a model_dir"):
        training.restore_model(tmp_path / "typo", model="toy_mnist")
    with pytest.raises(FileNotFoundError, match="not a model_dir"):
        training.restore_model(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(training.resolve_config("toy_mnist")))
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        training.restore_model(run)
    model, _ = training.restore_model(model="toy_mnist")  # the untrained preset, by request
    assert model.built or model is not None
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        training.checkpoint_path(tmp_path, "last")


def test_evaluate_shipped_weights_by_name(capsys, tmp_path):
    """--model=NAME --weights=pretrained: the shipped weights, not an untrained model."""
    argv = ["--model=ram_mnist28", "--eval_steps=2", "--batch_size=100",
            "--override=data.source=embedded"]
    assert _run(evaluate.main, argv + ["--weights=pretrained"]) == 0
    out = capsys.readouterr().out
    accuracy = float(next(ln for ln in out.splitlines() if ln.startswith("accuracy")).split()[1])
    assert accuracy > 0.9, out  # the embedded digits; an untrained model is near 0.1
    with pytest.raises(ValueError, match="either --model_dir or --model with --weights"):
        _run(evaluate.main, argv + ["--weights=pretrained", f"--model_dir={tmp_path}"])
    with pytest.raises(FileNotFoundError):
        _run(evaluate.main, argv + [f"--weights={tmp_path / 'missing.weights.h5'}"])


def test_evaluate_and_visualize_refuse_counts_meaning_nothing(toy, trained_dir):
    # apps.evaluate --eval_steps=0 reported a Monte Carlo error of 100 % and exit 0.
    from apps import visualize

    model_dir, _ = trained_dir
    for main, flag in [(evaluate.main, "--eval_steps=0"), (evaluate.main, "--batch_size=0"),
                       (visualize.main, "--num_images=0")]:
        with pytest.raises(ValueError, match=f"{flag.split('=')[0]} must be at least 1"):
            _run(main, [f"--model_dir={model_dir}", flag])


def test_a_fraction_metric_is_printed_in_percent_beside_the_papers_percentage():
    out = training.format_metrics({"loc_acc": 0.8512, "final_iou": 0.6},
                                  {"paper_metric": "loc_acc", "paper_value": 88.0})
    assert "loc_acc %: 85.12   |   paper: 88.0" in out.splitlines()
    out = training.format_metrics({"accuracy": 0.95}, {"paper_metric": "test_accuracy",
                                                       "paper_value": 97.0})
    assert "test_accuracy %: 95.00   |   paper: 97.0" in out.splitlines()


def test_evaluate_model_scores_baselines_and_image_dependence(toy, trained_dir):
    """Each policy of `evaluation_baselines` is scored with the same weights on
    the same test batches: `<metric>_<policy>_policy` (numbers only)."""
    model_dir, _ = trained_dir
    model, config = training.restore_model(model_dir, compile=True)
    calls = []

    def evaluate_policy(dataset, policy=None, steps=None):
        calls.append((policy, steps))
        return {"accuracy": 0.25 if policy == "random" else 0.5, "count": 10, "note": "x"}

    model.evaluation_baselines = ("random", "grid")
    model.evaluate_policy = evaluate_policy
    model.evaluate_image_dependence = lambda dataset, steps=None: {"action_spread": 0.3}
    result = training.evaluate_model(model, config, eval_steps=1, monte_carlo=())
    assert result["action_spread"] == 0.3
    assert calls == [("random", 1), ("grid", 1)]
    assert result["accuracy_random_policy"] == 0.25 and result["accuracy_grid_policy"] == 0.5
    assert not any(k.startswith(("count_", "note_")) for k in result)
