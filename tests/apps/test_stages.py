"""Stage hand-off: every multi-stage method chained through `apps.train --init_from`
at toy size, plus the errors of `keras_glimpse.stages`."""

import json
import warnings

import keras
import numpy as np
import pytest

from apps import flags as app_flags
from apps import train
import keras_glimpse
from keras_glimpse import registry, reproduce, stages, training

FAST = ["--epochs=1", "--steps_per_epoch=1", "--eval_steps=1", "--batch_size=4", "--verbose=0",
        "--override=training.validation_steps=1", "--override=training.picture_every=0",
        "--override=training.monte_carlo=[1]"]

TINY = {
    "patchdrop_digits64": ["cifar_widths=[2, 4, 4]", "data.limit=16"],
    "recap_mnist28": ["embed_dim=8", "gate_units=8", "policy_units=8", "value_units=8",
                      "num_steps=2", "data.limit=16"],
    "ordinal_cluttered84": ["embedding_dim=8", "fc_units=8", "hidden_units=4", "num_steps=2",
                            "data.num_examples=16", "training.train_examples=16"],
    "adaglimpse_digits_classification": ["hidden_units=8", "rl_batch_size=8",
                                         "replay_capacity=64", "init_random_steps=0",
                                         "data.limit=16"],
}

# The chains are the presets' own `reproduce.stages` (what apps.reproduce runs);
# here each stage runs through apps.train, and the parts each stage took from
# the earlier ones are checked: {stage: {attribute: earlier stage}}.
CHECKS = {
    "patchdrop_digits64": {
        "lr": {"hr_net": "hr"},
        "pretrain": {"hr_net": "lr", "lr_net": "lr"},
        "finetune": {"hr_net": "pretrain", "lr_net": "pretrain", "policy_net": "pretrain",
                     "policy_head": "pretrain"},
        # the parallel layout: the LR classifier from its own run, by part
        "finetune2stream": {"hr_net": "finetune", "policy_head": "finetune", "lr_net": "lr"},
    },
    "recap_mnist28": {"agent": {"encoder": "pretrain", "summarizer": "pretrain",
                                "gate": "pretrain", "classifier": "pretrain"}},
    "ordinal_cluttered84": {"joint": {"embedding": "pretrain"}},
    "adaglimpse_digits_classification": {"rl": {"encoder": "pretrain",
                                                "task_head": "pretrain"}},
}


def _chain(name):
    """`[(model_dir name, stage, extra flags, init_from specs, checks)]` from the preset."""
    chain = []
    for st in reproduce.stage_plan(name):
        extra = [f"--override={k}={v}" for k, v in st["overrides"].items()]
        chain.append((st["name"], st["stage"], extra, st["init_from"],
                      CHECKS[name].get(st["name"], {})))
    return chain


def test_every_multi_stage_preset_declares_its_chain():
    for name in keras_glimpse.list_models():
        builder = registry.get_builder(registry.get_preset(name)["builder"])
        if getattr(builder, "stage_names", ()) and registry.get_preset(name).get(
                "training", {}).get("stages"):
            plan = reproduce.stage_plan(name)
            assert plan[0]["name"] is not None, f"{name}: no reproduce.stages"
            assert {s["stage"] for s in plan} <= set(builder.stage_names), name


def _run_app(argv):
    app_flags.FLAGS(["train"] + argv)
    try:
        return train.main([])
    finally:
        app_flags.FLAGS.unparse_flags()


def _best(model_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return keras.saving.load_model(str(training.checkpoint_path(model_dir)), compile=False)


def _same(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


# AdaGlimpse's chain spends ~7 minutes tracing its RL step on 2 cores: make test-slow.
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n.startswith("adaglimpse") else n
    for n in sorted(CHECKS)])
def test_chain_all_stages_through_apps_train(name, tmp_path, monkeypatch):
    built = []
    real_build = training.build_model

    def spy(config, compile=True, init=False):
        model = real_build(config, compile=compile, init=init)
        built.append((config, model, {layer.name: [w.copy() for w in layer.get_weights()]
                                      for layer in model.layers}))
        return model

    monkeypatch.setattr(training, "build_model", spy)
    for run, stage, extra, init_from, checks in _chain(name):
        argv = [f"--model={name}", f"--model_dir={tmp_path / run}", f"--stage={stage}", *FAST,
                *[f"--override={o}" for o in TINY[name]], *extra]
        for spec in init_from:
            part, sep, ref = spec.rpartition("=")
            argv.append(f"--init_from={part}{sep}{tmp_path / ref}")
        built.clear()
        assert _run_app(argv) == 0, run
        config, model, snapshot = built[0]  # the model right after build
        recorded = json.loads((tmp_path / run / "config.json").read_text())["init_from"]
        assert recorded == config["init_from"] and len(recorded) == len(init_from)
        if not checks:
            continue
        fresh = real_build(config, compile=False)  # same seed, no init_from
        sources = {ref: _best(tmp_path / ref) for ref in set(checks.values())}
        for attr, ref in checks.items():
            layer = getattr(model, attr)
            theirs = getattr(sources[ref], attr).get_weights()
            after_build = snapshot[layer.name]
            assert len(after_build) == len(theirs) > 0
            for a, b in zip(after_build, theirs):
                np.testing.assert_array_equal(a, b, err_msg=f"{run}: {attr} != {ref} best")
            assert not _same(getattr(fresh, attr), getattr(sources[ref], attr)), attr


def test_resume_does_not_reread_init_from(tmp_path, monkeypatch):
    name = "ordinal_cluttered84"
    base = [f"--model={name}", *FAST, *[f"--override={o}" for o in TINY[name]]]
    assert _run_app(base + [f"--model_dir={tmp_path / 'pre'}", "--stage=pretrain"]) == 0
    joint = tmp_path / "joint"
    (joint / "backup").mkdir(parents=True)  # as after a killed run

    def fail(*a, **k):
        raise AssertionError("init_from re-read on resume")

    monkeypatch.setattr(stages, "apply", fail)
    monkeypatch.setattr(stages, "resolve_source", fail)
    assert _run_app(base + [f"--model_dir={joint}", "--stage=joint",
                            f"--init_from={tmp_path / 'missing'}"]) == 0


def _patchdrop(stage="pretrain", **kw):
    return keras_glimpse_build("patchdrop_digits64", stage=stage, cifar_widths=[2, 4, 4], **kw)


def keras_glimpse_build(*args, **kwargs):
    import keras_glimpse

    return keras_glimpse.build(*args, compile=False, **kwargs)


def test_wrong_path_wrong_part_and_mismatch_errors(tmp_path):
    model = _patchdrop()
    with pytest.raises(FileNotFoundError, match=r"init_from: '.*nowhere' does not exist"):
        stages.init_from(model, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoints/best.keras"):
        stages.init_from(model, tmp_path / "empty")
    other = _patchdrop("classifier", hr_backbone="cifar_resnet14")
    path = tmp_path / "other.keras"
    other.save(str(path))
    with pytest.raises(stages.StageError, match=r"unknown part\(s\) \['policy_net'\]"):
        stages.init_from(model, path, parts=["policy_net"])
    with pytest.raises(stages.StageError,
                       match=r"part 'hr_classifier' of '.*other.keras' does not match"):
        stages.init_from(model, path, parts=["hr_classifier"])
    h5 = tmp_path / "other.weights.h5"
    other.save_weights(str(h5))
    with pytest.raises(stages.StageError, match="other.weights.h5' does not hold the weights"):
        stages.init_from(model, h5, parts=["hr_classifier"])
    # a .weights.h5 of the same networks works, and only the named part is copied
    same = _patchdrop("classifier", seed=3)
    same.save_weights(str(tmp_path / "same.weights.h5"))
    before = model.policy_head.get_weights()
    stages.init_from(model, tmp_path / "same.weights.h5", parts=["hr_classifier"])
    assert _same(model.hr_net, same.hr_net)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.policy_head.get_weights()))
    with pytest.raises(stages.StageError, match="takes no part .* by default"):
        stages.init_from(_patchdrop("classifier"), tmp_path / "same.weights.h5")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        training.run_training(training.resolve_config(
            "patchdrop_digits64", model_dir=tmp_path / "run", stage="pretrain",
            init_from=str(tmp_path / "nowhere")))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_legacy_constructor_args(tmp_path, caplog):
    # Old command lines / overrides become init_from entries.
    cfg = training.resolve_config("patchdrop_digits64", stage="finetune",
                                  overrides={"hr_classifier": "a.keras", "policy": "b.keras"})
    assert cfg["init_from"] == [{"source": "a.keras", "parts": ["hr_classifier"]},
                                {"source": "b.keras", "parts": ["policy"]}]
    assert "hr_classifier" not in cfg["model_args"]
    cfg = training.resolve_config("recap_mnist28", stage="agent",
                                  overrides={"pretrained": "runs/pre"})
    assert cfg["init_from"] == [{"source": "runs/pre", "parts": ["classifier"]}]
    # Passing one to a constructor is a clear error.
    from keras_glimpse.models.ordinal import OrdinalLocalizer

    with pytest.raises(TypeError, match=r"no longer loads earlier stages.*init_from"):
        OrdinalLocalizer(pretrained="x.keras")
    # A .keras saved before the change (its config names the earlier stage's
    # file) still loads: the path is ignored with a warning, never read.
    model = _patchdrop()
    config = model.get_config()
    config["hr_classifier"] = str(tmp_path / "gone.keras")
    with pytest.warns(UserWarning, match="ignoring hr_classifier="):
        clone = type(model).from_config(config)
    assert clone.stage == "pretrain"
