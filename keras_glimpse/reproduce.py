"""One command per preset for its paper protocol: every stage, every seed, the
same-budget baselines, resumable, ending in `results/<preset>.json`.

    from keras_glimpse import reproduce
    summary = reproduce.reproduce("ram_mnist28", data_dir="../shared/data",
                                  seeds=(0,), runs_dir="runs", results_dir="results")

A preset's optional `reproduce` table says what its protocol runs:

```toml
[ram_cluttered60.reproduce]
baselines = [{label = "random glimpses", overrides = {policy = "random"},
              paper_value = 14.4}]
```

A multi-stage protocol lists its stages in order; each names the stage (the
`--stage` of apps.train), the earlier stages it starts from (`init_from`,
`"PART=stage"` for one part) and its own overrides:

```toml
[recap_mnist28.reproduce]
stages = [{name = "pretrain", stage = "pretrain"},
          {name = "agent", stage = "agent", init_from = ["pretrain"]}]
```

A baseline may take the leading stages of the learned run of the same seed
instead of training its own (`shared_stages`): RECAP's random-policy agent
starts from the very classifier the learned agent starts from.

```toml
baselines = [{label = "random policy", overrides = {policy = "random"},
              shared_stages = ["pretrain"]}]
```

A method whose own test metrics carry its comparisons (PatchDrop reports the
classifier on all patches and on a same-count random mask beside its policy)
states its target as `checks` on the learned run's test metrics (the mean
over seeds); each bound is a number or another metric plus `offset`
(`STAGE:metric` names an earlier stage's test metric):

```toml
[patchdrop_digits64.reproduce]
checks = [{metric = "accuracy", at_least = "hr:accuracy", offset = -0.02},
          {metric = "kept_fraction", at_most = 0.5}]
```

`evaluations` measure the selected learned model once more on other test
sets (the run's data table with `data` over it), into `results["evaluations"]`:

```toml
evaluations = [{label = "other digits", data = {other_digits = true}}]
```

Each (run, seed) trains in its own `model_dir`,
`<runs_dir>/<preset>/<run>/seed<k>/` (one folder per stage below it when the
protocol has stages), through `training.run_training`, so a
crashed or stopped command continues where it stopped when run again
(`BackupAndRestore` inside a stage; a finished stage, one with
`metrics.json`, is not trained again). Model selection uses the validation
split only; `metrics.json` holds the test metrics of the selected checkpoint.

Provenance: `results["commit"]` is the checkout that wrote the report; each
seed's (and stage's) `trained_commits` lists the commits that trained it,
from the runs' `provenance.jsonl` (`keras_glimpse.provenance`; `"unknown"` for
runs trained before it was recorded), and the shipped weights' record carries
them too.
"""

import datetime
import json
import logging
import os
import pathlib
import platform
import shutil

import numpy as np

from keras_glimpse import provenance
from keras_glimpse import registry
from keras_glimpse import training as training_lib
from keras_glimpse import validation

logger = logging.getLogger("keras_glimpse")

# paper_metric -> (the key of `training.evaluate_model`'s result that measures
# it, whether lower is better).
METRIC_KEYS = {"test_error_percent": ("error", True), "test_error": ("error", True),
               "test_accuracy": ("accuracy", False), "accuracy": ("accuracy", False),
               "rmse": ("rmse", True), "loc_acc": ("loc_acc", False), "reconstruction_mse": ("reconstruction_mse", True)}


def _machine():
    try:
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
        tf_version = tf.__version__
    except Exception:  # noqa: BLE001 - machine description only
        gpus, tf_version = [], None
    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "gpus": gpus, "tensorflow": tf_version}


def data_source(config):
    """Which MNIST source the preset's data came from (`local` = a full file)."""
    from keras_glimpse.data import mnist

    if config["data"].get("source") == "embedded":
        return "embedded"
    try:
        return mnist.load_mnist(data_dir=config.get("data_dir")).source
    except (FileNotFoundError, ImportError):
        return None


def read_history(model_dir):
    """history.csv as a dict of lists (floats; missing values as NaN)."""
    import csv

    path = pathlib.Path(model_dir) / "history.csv"
    if not path.is_file():
        return {}
    with path.open() as f:
        rows = list(csv.DictReader(f))
    columns = {}
    for row in rows:
        for k, v in row.items():
            try:
                columns.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):
                columns.setdefault(k, []).append(float("nan"))
    return columns


def plan(name):
    """The runs of a preset's protocol: `[(label, overrides, paper_value)]`,
    the preset itself first, then its same-budget baselines."""
    preset = registry.get_preset(name)
    table = preset.get("reproduce", {}) or {}
    runs = [("learned", {}, preset.get("paper_value"))]
    for b in table.get("baselines", []) or []:
        runs.append((str(b["label"]), dict(b.get("overrides", {})), b.get("paper_value")))
    return runs


def shared_stages(name):
    """`{baseline label: [stage names]}`: the stages a baseline takes from the
    learned run of the same seed instead of training its own (its
    `shared_stages`), e.g. RECAP's random-policy agent starts from the very
    classifier the learned agent starts from: the pair differs in the policy
    only, and the pretraining runs once.

    Raises:
        ValueError: a shared stage is not one of the preset's stages, or comes
            after a stage the baseline trains itself.
    """
    table = registry.get_preset(name).get("reproduce", {}) or {}
    names = [st["name"] for st in stage_plan(name)]
    out = {}
    for b in table.get("baselines", []) or []:
        shared = [str(s) for s in b.get("shared_stages", []) or []]
        if not shared:
            continue
        if shared != names[:len(shared)]:
            raise ValueError(
                f"Preset '{name}': baseline '{b['label']}' shares stages {shared}; it can share "
                f"only a leading run of the stages {names} (those before any it trains itself).")
        out[str(b["label"])] = shared
    return out


def stage_plan(name):
    """The preset's stages in order: `[{"name", "stage", "init_from", "overrides"}]`;
    one unnamed stage (`name` None) when the protocol has none.

    Raises:
        ValueError: a stage starts from a stage that does not come before it.
    """
    table = (registry.get_preset(name).get("reproduce", {}) or {}).get("stages")
    if not table:
        return [{"name": None, "stage": None, "init_from": [], "overrides": {}}]
    out, seen = [], set()
    for entry in table:
        run = str(entry.get("name") or entry.get("stage"))
        inits = [str(x) for x in entry.get("init_from", []) or []]
        for spec in inits:
            if spec.rpartition("=")[2] not in seen:
                raise ValueError(f"Preset '{name}': stage '{run}' starts from {spec!r}, which is "
                                 f"not an earlier stage ({sorted(seen) or 'none'}).")
        out.append({"name": run, "stage": entry.get("stage"), "init_from": inits,
                    "overrides": dict(entry.get("overrides", {}) or {})})
        seen.add(run)
    return out


def stage_dirs(base, stages):
    """`{stage name: model_dir}` under one run's folder `base` (`base` itself
    for a protocol without stages)."""
    base = pathlib.Path(base)
    return {s["name"]: base if s["name"] is None else base / _slug(s["name"]) for s in stages}


def run_dirs(runs_dir, name, label, seed, stages, shared=()):
    """`{stage name: model_dir}` of one (run, seed): under
    `<runs_dir>/<name>/<label>/seed<k>/`, except the `shared` stages, which are
    the learned run's of the same seed."""
    def dirs(run):
        return stage_dirs(pathlib.Path(runs_dir) / name / _slug(run) / f"seed{int(seed)}",
                          stages)

    out = dirs(label)
    if shared:
        out.update({s: d for s, d in dirs("learned").items() if s in shared})
    return out


def _init_specs(spec_list, dirs):
    """`["pretrain", "lr_classifier=lr"]` -> the same with the stages' model_dirs."""
    specs = []
    for spec in spec_list:
        part, _, run = spec.rpartition("=")
        specs.append(f"{part}={dirs[run]}" if part else str(dirs[run]))
    return specs


def _slug(label):
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")


def run_one(name, overrides, seed, model_dir, data_dir=None, epochs=None, verbose=2,
            stage=None, init_from=None):
    """Trains (or resumes, or skips when finished) one run of one stage; returns
    its metrics.json."""
    metrics_path = pathlib.Path(model_dir) / "metrics.json"
    if metrics_path.is_file():
        logger.info("%s: finished earlier, reusing %s", model_dir, metrics_path)
        return json.loads(metrics_path.read_text())
    config = training_lib.resolve_config(name, model_dir=str(model_dir), data_dir=data_dir,
                                         overrides=overrides, seed=seed, epochs=epochs,
                                         verbose=verbose, stage=stage, init_from=init_from)
    training_lib.run_training(config, export=False)
    return json.loads(metrics_path.read_text())


def _partial_metrics(model_dir):
    """metrics.json of a finished run; for one in progress, its selection so far
    (best validation value and epoch) without reading the test split."""
    model_dir = pathlib.Path(model_dir)
    if (model_dir / "metrics.json").is_file():
        return json.loads((model_dir / "metrics.json").read_text())
    state = model_dir / "checkpoints" / "best.keras.json"
    if not state.is_file():
        return None
    s = json.loads(state.read_text())
    return {"selection": {"monitor": s["monitor"], "mode": s["mode"], "best": s["best"],
                          "epoch": s["epoch"]}}


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    arr = np.asarray(values, np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "per_seed": [float(v) for v in arr]}


def extra_evaluation(model_dir, evaluation, report_only=False):
    """The selected checkpoint of a finished run on another test set: the
    run's data table with `evaluation["data"]` over it (e.g. the ordinal
    localiser on the digits it never saw), measured once and kept in
    `<model_dir>/metrics_<label>.json` (None when `report_only` and not
    measured yet)."""
    path = pathlib.Path(model_dir) / f"metrics_{_slug(evaluation['label'])}.json"
    if path.is_file():
        return json.loads(path.read_text())
    if report_only:
        return None
    model, config = training_lib.restore_model(model_dir, compile=True)
    config["data"].update(evaluation.get("data", {}))
    metrics = training_lib.evaluate_model(model, config)
    path.write_text(json.dumps(metrics, indent=2))
    return metrics


def _stats_dict(per_seed):
    """`{metric: _stats}` over the seeds' metric dicts (None: not measured)."""
    done = [m for m in per_seed if m is not None]
    if len(done) < len(per_seed) or not done:
        return None
    return {k: _stats([m[k] for m in done]) for k in done[0]
            if all(isinstance(m.get(k), (int, float)) for m in done)}


def _mean_metrics(tests):
    """The mean over seeds of each numeric metric every seed reported."""
    return {k: s["mean"] for k, s in (_stats_dict(tests) or {}).items()}


def _stage_tests(run):
    """`{"STAGE:metric": value}`: the test metrics of each stage of a staged
    run (a check may bound the last stage by an earlier one, e.g. PatchDrop's
    policy by `hr:accuracy`, the HR classifier on every patch)."""
    out = {}
    for st in run.get("stages", []):
        path = pathlib.Path(st["model_dir"]) / "metrics.json"
        if path.is_file():
            for k, v in json.loads(path.read_text()).get("test", {}).items():
                out[f"{st['name']}:{k}"] = v
    return out


def evaluate_checks(checks, test):
    """A preset's `reproduce.checks` against `test`, the learned run's test
    metrics (mean over seeds): one dict per check with its `value`, `bound`
    and `passed`. A check names `metric` and `at_least` or `at_most`, a number
    or the name of another test metric, plus an optional `scale` and `offset`
    (bound = scale * reference + offset; e.g. `scale = 0.9` for "10 % below"). A name
    `RUN:metric` is an earlier stage's metric or a same-budget baseline's
    (its label); one not reported yet (a baseline still training) leaves the
    check pending (`passed` None). Any other unknown name is a KeyError."""
    out = []
    for check in checks:
        (side, ref), = [(k, check[k]) for k in ("at_least", "at_most") if k in check]
        scale = float(check.get("scale", 1.0))
        text = ref if not isinstance(ref, str) else (
            (f"{scale:g} * " if scale != 1.0 else "") + ref
            + (f" {float(check['offset']):+g}" if check.get("offset") else ""))
        entry = {"check": f"{check['metric']} {'>=' if side == 'at_least' else '<='} {text}"}
        names = [check["metric"]] + ([ref] if isinstance(ref, str) else [])
        missing = [n for n in names if n not in test]
        if any(":" not in n for n in missing):
            raise KeyError(f"reproduce check {check} names a metric the test run did not "
                           f"report; it reported {sorted(test)}.")
        if missing:
            out.append(dict(entry, value=None, bound=None, passed=None,
                            pending=f"not reported yet: {', '.join(missing)}"))
            continue
        value = float(test[check["metric"]])
        bound = scale * (float(test[ref]) if isinstance(ref, str) else float(ref)) + float(
            check.get("offset", 0.0))
        out.append(dict(entry, value=value, bound=bound, passed=bool(
            value >= bound if side == "at_least" else value <= bound)))
    return out


def reproduce(name, data_dir=None, seeds=(0,), runs_dir="runs", results_dir="results",
              epochs=None, baselines=True, ship_weights=False, verbose=2, report_only=False,
              stage_epochs=None):
    """Runs the protocol of preset `name` and writes `<results_dir>/<name>.json`.

    Args:
        name: a registered preset.
        data_dir: folder holding the full dataset (e.g. `../shared/data`).
        seeds: one run per seed; the result is their mean and standard deviation.
        runs_dir: parent of every run's `model_dir` (keep it across sessions to resume).
        results_dir: where `<name>.json` and `curves/<name>.png` go.
        epochs: override the preset's epochs (a shorter protocol; recorded), in
            every stage that does not set its own `training.epochs`.
        baselines: also run the preset's same-budget baselines.
        ship_weights: copy the selected (best validation) learned run's weights to
            the package's `pretrained/<name>.weights.h5`.
        report_only: train nothing; write the results of the runs as they stand.
            A run still in progress is reported by its validation curve only
            (`complete: false`): its test split is not read before it ends.
        stage_epochs: `{stage name: epochs}` for one stage of a staged protocol
            (e.g. `{"agent": 10}`), over `epochs` and the stage's own length;
            recorded as `stage_epochs_override`.

    Returns:
        The results dict written to the JSON file.
    """
    preset = registry.get_preset(name)
    stage_epochs = dict(stage_epochs or {})
    unknown = sorted(set(stage_epochs) - {st["name"] for st in stage_plan(name)})
    if unknown:
        raise ValueError(f"stage_epochs names {unknown}, which '{name}' does not have; its stages "
                         f"are {[st['name'] for st in stage_plan(name)]}.")
    for stage, n in stage_epochs.items():
        validation.positive_int(f"stage_epochs[{stage!r}]", n)
    metric = preset.get("paper_metric")
    key, lower_is_better = METRIC_KEYS.get(metric, (None, True))
    runs = plan(name) if baselines else plan(name)[:1]
    results = {"model": name, "paper": {k: preset.get(k) for k in
                                        ("paper", "paper_metric", "paper_value", "paper_table")
                                        if k in preset},
               "seeds": [int(s) for s in seeds], "runs": {}, "started": _now(),
               "commit": provenance.git_commit()[0]}
    stages = stage_plan(name)
    shared = shared_stages(name)
    first = next(iter(run_dirs(runs_dir, name, "learned", seeds[0], stages).values()))
    if data_dir is None and (first / training_lib.CONFIG_FILE).is_file():
        data_dir = training_lib.read_config(first).get("data_dir")  # what the run used
    config0 = training_lib.resolve_config(name, data_dir=data_dir)
    source = data_source(config0)
    results["data"] = {"name": config0["data"].get("name"), "source": source,
                       "full_data": source in ("local", "keras_cache", "download")}
    for label, overrides, paper_value in runs:
        per_seed = []
        for seed in seeds:
            dirs = run_dirs(runs_dir, name, label, seed, stages, shared.get(label, ()))
            m, done = None, []
            for st in stages:
                model_dir = dirs[st["name"]]
                if report_only:
                    partial = _partial_metrics(model_dir)
                    if partial is None:
                        break
                    m = partial
                else:
                    logger.warning("reproduce %s: %s, seed %d%s -> %s", name, label, seed,
                                   f", stage {st['name']}" if st["name"] else "", model_dir)
                    # --epochs shortens the stages that do not fix their own length.
                    own = "training.epochs" in st["overrides"]
                    stage_n = stage_epochs.get(st["name"], None if own else epochs)
                    # An earlier stage's test metrics feed checks (e.g. PatchDrop's
                    # "hr:accuracy"), never its Monte Carlo errors: those (M sampled
                    # episodes per test image, minutes for AdaGlimpse) only for the last.
                    last = {} if st is stages[-1] else {"training.monte_carlo": []}
                    m = run_one(name, {**overrides, **last, **st["overrides"]}, int(seed),
                                model_dir,
                                data_dir=data_dir, epochs=stage_n,
                                verbose=verbose,
                                stage=st["stage"], init_from=_init_specs(st["init_from"], dirs))
                hist = read_history(model_dir)
                done.append({"name": st["name"], "model_dir": str(model_dir),
                             "epochs": len(hist.get("epoch", [])),
                             "planned_epochs": _planned_epochs(model_dir),
                             "wall_seconds": float(np.nansum(hist.get("epoch_seconds", []))),
                             "trained_commits": provenance.commits(model_dir)})
                if st["name"] in shared.get(label, []):
                    done[-1]["shared_with"] = "learned"  # trained once, counted in both
                if "test" not in m:
                    break  # a stage in progress: the later ones have not started
            if not done or m is None:
                continue
            per_seed.append({"seed": int(seed), "model_dir": done[-1]["model_dir"], "metrics": m,
                             "epochs": sum(d["epochs"] for d in done),
                             "complete": "test" in m and len(done) == len(stages),
                             "wall_seconds": sum(d["wall_seconds"] for d in done),
                             "trained_commits": list(dict.fromkeys(
                                 c for d in done for c in d["trained_commits"]))})
            if stages[0]["name"] is not None:
                per_seed[-1]["stages"] = done
        if not per_seed:
            continue
        test = [r["metrics"]["test"] for r in per_seed if "test" in r["metrics"]]
        if len(test) < len(per_seed):
            test = []  # a mean over some seeds only would mislead
        entry = {"overrides": overrides, "paper_value": paper_value, "per_seed": per_seed,
                 "complete": all(r["complete"] for r in per_seed)}
        if key is not None and test:
            entry["test_" + metric] = _stats([t.get(key) for t in test])
        for mc in ("mc1_error", "mc10_error"):
            if test and all(mc in t for t in test):
                entry["test_" + mc + "_percent"] = _stats([t[mc] for t in test])
        entry["selection"] = {"monitor": per_seed[0]["metrics"]["selection"]["monitor"],
                              "best_per_seed": [r["metrics"]["selection"]["best"]
                                                for r in per_seed],
                              "epoch_per_seed": [r["metrics"]["selection"]["epoch"]
                                                 for r in per_seed]}
        entry["epochs"] = [r["epochs"] for r in per_seed]
        entry["wall_seconds"] = [round(r["wall_seconds"], 1) for r in per_seed]
        results["runs"][label] = entry
    if report_only and not stage_epochs and epochs is None and "learned" in results["runs"]:
        # What the runs were trained with, not what this report was asked.
        epochs, stage_epochs = _recorded_overrides(
            name, results["runs"]["learned"]["per_seed"][0], stages)
    results.update(finished=_now(), machine=_machine(), epochs_override=epochs,
                   stage_epochs_override=stage_epochs or None,
                   complete=all(e["complete"] for e in results["runs"].values())
                   and len(results["runs"]) == len(runs),
                   target=preset.get("paper_target"))
    if "learned" not in results["runs"]:
        raise FileNotFoundError(f"No run of '{name}' under '{runs_dir}' to report yet.")
    learned = results["runs"]["learned"]
    # `reproduce.measure` names the test metric that follows the paper's protocol
    # when it is not the default one (RAM: one sampled rollout, "mc1_error").
    measure = (preset.get("reproduce", {}) or {}).get("measure")
    column = "test_" + (f"{measure}_percent" if measure else metric)
    if key is not None and learned.get(column):
        results["measured"] = learned[column]["mean"]
        results["measured_std"] = learned[column]["std"]
        results["measured_metric"] = measure or key
        if preset.get("paper_value") is not None:
            target = preset.get("paper_target")
            results["met"] = None if target is None else bool(
                results["measured"] <= float(target) if lower_is_better
                else results["measured"] >= float(target))
    # `reproduce.beats`: with no paper number, the target is to beat that
    # same-budget baseline (URAM: the learned policy below random glimpses).
    beats = (preset.get("reproduce", {}) or {}).get("beats")
    rival = results["runs"].get(beats, {}).get(column) if beats else None
    if rival and "measured" in results and results.get("met") is None:
        results["target"] = f"below {beats}" if lower_is_better else f"above {beats}"
        results["met"] = bool(results["measured"] < rival["mean"] if lower_is_better
                              else results["measured"] > rival["mean"])
    evaluations = (preset.get("reproduce", {}) or {}).get("evaluations") or []
    if evaluations and learned["complete"]:
        results["evaluations"] = {
            e["label"]: _stats_dict([extra_evaluation(r["model_dir"], e, report_only)
                                     for r in learned["per_seed"]]) for e in evaluations}
    checks = (preset.get("reproduce", {}) or {}).get("checks")
    test = [dict(r["metrics"]["test"], **_stage_tests(r)) for r in learned["per_seed"]
            if "test" in r["metrics"]]
    if checks and test and learned["complete"]:
        mean = _mean_metrics(test)
        for label, entry in results["runs"].items():  # baselines as "label:metric"
            done = [r["metrics"]["test"] for r in entry["per_seed"] if "test" in r["metrics"]]
            if label != "learned" and entry["complete"] and done:
                mean.update({f"{label}:{k}": v for k, v in _mean_metrics(done).items()})
        results["checks"] = evaluate_checks(checks, mean)
        results["target"] = "; ".join(c["check"] for c in results["checks"])
        passed = [c["passed"] for c in results["checks"]]
        results["met"] = None if None in passed else all(passed)
    out = pathlib.Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    curve = plot_curves(name, results, out / "curves" / f"{name}.png")
    if curve:
        results["curve"] = str(curve.relative_to(out.parent)) if out.parent in curve.parents \
            else str(curve)
    path = out / f"{name}.json"
    if ship_weights:
        results["weights"] = ship(name, results)
    elif path.is_file():  # a later report keeps the record of the weights shipped earlier
        shipped = json.loads(path.read_text()).get("weights")
        if shipped:
            results["weights"] = shipped
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return results


def _planned_epochs(model_dir):
    """The epochs a run was set to train (its config.json), None before it started."""
    path = pathlib.Path(model_dir) / training_lib.CONFIG_FILE
    if not path.is_file():
        return None
    return training_lib.read_config(model_dir).get("training", {}).get("epochs")


def _recorded_overrides(name, run, stages):
    """`(epochs_override, stage_epochs_override)` that one seed's run was trained
    with, read from its stages' config.json against the preset's own lengths
    (a report written later need not be told again)."""
    records = run.get("stages") or [{"name": None, "planned_epochs": _planned_epochs(
        run["model_dir"])}]
    by_name = {st["name"]: st for st in stages}
    epochs, stage_epochs = None, {}
    for rec in records:
        st = by_name.get(rec["name"])
        planned = rec.get("planned_epochs")
        if st is None or planned is None:
            continue
        default = training_lib.resolve_config(name, stage=st["stage"],
                                              overrides=st["overrides"])["training"].get("epochs")
        if default is not None and int(planned) != int(default):
            if rec["name"] is None:
                epochs = int(planned)
            else:
                stage_epochs[rec["name"]] = int(planned)
    return epochs, stage_epochs


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def plot_curves(name, results, path):
    """Validation (and training) curves of every run and seed, one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no curve written (pip install "
                       "'keras_glimpse[viz]').")
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    shown = None  # the column the y axis shows
    for label, entry in results["runs"].items():
        for r in entry["per_seed"]:
            hist = _run_history(r)
            monitor = r["metrics"]["selection"]["monitor"]
            col = "val_error" if "val_error" in hist else monitor
            if col not in hist:
                continue
            shown = col
            ax.plot(np.arange(1, len(hist[col]) + 1), hist[col],
                    label=f"{label} seed {r['seed']} ({col})")
            if col == "val_error" and "error" in hist:
                ax.plot(np.arange(1, len(hist["error"]) + 1), hist["error"], alpha=0.35,
                        linestyle="--", label=f"{label} seed {r['seed']} (train error)")
    paper = results["paper"].get("paper_value")
    if paper is not None and results["paper"].get("paper_metric") == "test_error_percent":
        ax.axhline(paper, color="k", linestyle=":", label=f"paper {paper} % (test)")
        ax.set_yscale("log")
        ax.set_ylabel("error %")
    else:
        ax.set_ylabel("error %" if shown == "val_error" else (shown or "metric"))
    ax.set_xlabel("epoch")
    ax.set_title(f"{name}: validation curves")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _run_history(run):
    """One run's history, its stages' histories end to end (one curve per run)."""
    hists = [read_history(st["model_dir"]) for st in run.get("stages", [run])]
    keys = set().union(*hists) if hists else set()
    return {k: [v for h in hists for v in h.get(k, [float("nan")] * len(h.get("epoch", [])))]
            for k in keys}


def ship(name, results):
    """Copies the learned run with the best *validation* metric (never the test
    one) into the package as `pretrained/<name>.weights.h5`; returns its record."""
    from keras_glimpse import weights as weights_lib

    entry = results["runs"]["learned"]
    mode = entry["per_seed"][0]["metrics"]["selection"]["mode"]
    best = entry["selection"]["best_per_seed"]
    pick = int(np.argmax(best) if mode == "max" else np.argmin(best))
    run = entry["per_seed"][pick]
    model, config = training_lib.restore_model(run["model_dir"], checkpoint="best")
    target = weights_lib.weights_path(name, must_exist=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.weights.h5")
    model.save_weights(str(tmp))
    shutil.move(str(tmp), str(target))
    selection = run["metrics"]["selection"]
    record = {"file": f"keras_glimpse/pretrained/{target.name}", "seed": run["seed"],
              "monitor": selection["monitor"], "validation": best[pick],
              "epoch": selection["epoch"], "epochs_run": run["epochs"],
              "complete": run["complete"], "test": run["metrics"].get("test"),
              "commit": results.get("commit"), "trained_commits": run.get("trained_commits"),
              # the run's model beyond the preset's table (its stage): what loading builds
              "model_args": dict(config.get("model_args") or {})}
    weights_lib.write_record(name, record)
    return record


def format_result(results):
    """A few lines: measured vs paper for the preset and each baseline."""
    paper = results["paper"]
    metric = paper.get("paper_metric", "metric")
    lines = [f"{results['model']} ({'full data' if results['data']['full_data'] else 'NOT full data: '+str(results['data']['source'])})"]
    for label, entry in results["runs"].items():
        stats = entry.get("test_" + metric)
        shown = "n/a" if not stats else (f"{stats['mean']:.2f}" + (
            f" +- {stats['std']:.2f}" if len(stats["per_seed"]) > 1 else ""))
        ref = entry.get("paper_value")
        extra = []
        for mc in ("mc1_error", "mc10_error"):
            s = entry.get("test_" + mc + "_percent")
            if s:
                extra.append(f"{mc.split('_')[0].upper()} {s['mean']:.2f}")
        lines.append(f"  {label:<20} {metric} {shown}"
                     + (f" ({', '.join(extra)})" if extra else "")
                     + (f"   paper {ref}" if ref is not None else "")
                     + f"   epochs {entry['epochs']}")
    shortened = {k: results[k] for k in ("epochs_override", "stage_epochs_override")
                 if results.get(k)}
    if shortened:
        lines.append(f"  protocol changed from the preset's: {shortened}")
    return "\n".join(lines)
