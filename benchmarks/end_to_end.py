"""What a user's `apps.train` gets, beside the bare training step, in images/s.

    python benchmarks/end_to_end.py [--presets ram_mnist28,recap_cluttered64:agent,...]
                                    [--data_dir ../shared/data] [--rounds 2]

Two variants per preset (and stage), each in a fresh process, alternated
`--rounds` times so that this machine's drifting speed hits both alike:

- **bare**: `model.fit` on one real batch repeated (`from_tensors`), with the
  preset's own compile settings (`jit_compile`, `steps_per_execution`); no
  callbacks, no validation, no progress bar. The step's own cost.
- **apps.train**: `training.run_training`, the function `apps.train` calls,
  with the real input pipeline, every callback of the protocol (checkpoints,
  BackupAndRestore, CSV, TensorBoard, plateau schedule, NaN watch), per-epoch
  validation and the Keras progress bar. An epoch's time runs from one epoch's
  start to the next (so end-of-epoch checkpoint writing counts); the first
  epoch (tracing) is not timed, the second is. With `--steps` shorter than a true epoch, the
  validation batches are cut in the same proportion (`training.validation_steps`),
  so validation weighs what it weighs in a full run; the per-epoch costs
  (checkpoints, backup) are then over-weighted, so whole epochs (the default)
  are the honest measure.

`ratio` = apps.train images/s / bare images/s (medians over rounds); the
target is >= 0.9. The default data is full MNIST from `--data_dir` (the
embedded 5,000 digits when absent: smaller epochs, same per-step costs).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)

DEFAULT = ("ram_mnist28,ram_cluttered60,recap_cluttered64:agent,patchdrop_digits64:pretrain,"
           "ordinal_cluttered84:joint")
BARE_STEPS = 400
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "data")


def _config(preset, stage, data_dir, steps, epochs, model_dir):
    from keras_glimpse import training

    config = training.resolve_config(preset, model_dir=model_dir, data_dir=data_dir, stage=stage,
                                     epochs=epochs, verbose=1)
    train_batches = int(training.make_data(config, "train").cardinality())
    steps = min(int(steps), train_batches) if steps else train_batches
    if steps < train_batches:
        config["training"]["steps_per_epoch"] = steps
        if training.has_validation(config):
            val_batches = int(training.make_data(config, "validation").cardinality())
            config["training"]["validation_steps"] = max(
                1, round(val_batches * steps / train_batches))
    return config, steps


def bare_setup(preset, stage, data_dir, steps, threads):
    """`(model, dataset, batch size, steps)` of the bare step: the preset's model
    with its own `steps_per_execution` and `jit_compile`, and one real training
    batch repeated forever (also `step_profile.py`'s workload)."""
    import tensorflow as tf

    from keras_glimpse import training

    _threads(threads, preset, stage)
    config, steps = _config(preset, stage, data_dir, steps, 1, tempfile.mkdtemp())
    x, y = next(iter(training.make_data(config, "train")))
    model = training.build_model(config)
    model.steps_per_execution = int(config["training"].get("steps_per_execution", 1))
    model.jit_compile = bool(config["training"].get("jit_compile", False))
    return model, tf.data.Dataset.from_tensors((x, y)).repeat(), int(x.shape[0]), steps


def run_bare(preset, stage, data_dir, steps, threads):
    model, ds, batch, steps = bare_setup(preset, stage, data_dir, steps, threads)
    steps = min(steps, BARE_STEPS)  # a steady rate; no per-epoch costs to amortise
    timing = harness.timed(harness.fit_steps(model, ds), steps,
                           warmup=2 * model.steps_per_execution)
    return {"variant": "bare", "steps": steps, "batch_size": batch,
            "steps_per_s": timing["steps_per_s"], "images_per_s": batch * timing["steps_per_s"],
            "peak_mb": harness.peak_rss_mb()}


def run_apps_train(preset, stage, data_dir, steps, threads, epochs=2):
    import keras

    from keras_glimpse import training

    _threads(threads, preset, stage)
    model_dir = os.path.join(tempfile.mkdtemp(), "run")
    config, steps = _config(preset, stage, data_dir, steps, epochs, model_dir)
    marks = []
    parts = []  # per epoch: (start, validation start, validation end, epoch end)

    class EpochMarks(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.append(time.perf_counter())
            parts.append({"start": marks[-1]})

        def on_test_begin(self, logs=None):
            if parts:
                parts[-1]["val_start"] = time.perf_counter()

        def on_test_end(self, logs=None):
            if parts:
                parts[-1]["val_end"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            parts[-1]["end"] = time.perf_counter()

        def on_train_end(self, logs=None):
            marks.append(time.perf_counter())

    make_callbacks = training.make_callbacks
    training.make_callbacks = lambda *a, **k: make_callbacks(*a, **k) + [EpochMarks()]
    try:
        training.run_training(config, export=False)
    finally:
        training.make_callbacks = make_callbacks
    # Epoch e runs from its start to the next one's (after its checkpoints),
    # the last one to the end of training; epoch 0 traces and compiles, so it
    # is left out.
    seconds = [b - a for a, b in zip(marks[1:], marks[2:])]
    epoch_s = statistics.median(seconds)
    batch = int(config["training"]["batch_size"])
    return {"variant": "apps.train", "steps": steps, "batch_size": batch,
            "steps_per_s": steps / epoch_s, "images_per_s": batch * steps / epoch_s,
            "epoch_s": seconds, "first_epoch_s": marks[1] - marks[0],
            "split_s": epoch_split(parts[1:], marks[2:]), "peak_mb": harness.peak_rss_mb()}


def epoch_split(parts, next_marks):
    """Where each timed epoch went, in seconds: `steps` (its training steps,
    input pipeline included), `validation`, and `rest` (the end-of-epoch
    callbacks after validation: checkpoints, backup, CSV, pictures, schedule;
    up to the next epoch's start)."""
    out = []
    for p, nxt in zip(parts, next_marks):
        val_start = p.get("val_start", p.get("end", nxt))
        val_end = p.get("val_end", val_start)
        out.append({"steps": val_start - p["start"], "validation": val_end - val_start,
                    "rest": nxt - val_end})
    return out


def _threads(threads, preset, stage):
    """Both variants get the same threads, set before TensorFlow's first op:
    `threads` inter-op, and intra-op the preset's `training.intra_op_threads`
    when it sets one (else `threads`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from keras_glimpse import training

    intra_op = training.resolve_config(preset, stage=stage)["training"].get("intra_op_threads")

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op or threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def measure(presets=DEFAULT, data_dir=None, steps=None, rounds=2, threads=2, log=print):
    """Rows `{preset, stage, bare, apps_train, ratio, ...}`, variants alternated per round."""
    data_dir = data_dir or (DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) else None)
    rows = []
    for item in presets.split(",") if isinstance(presets, str) else presets:
        preset, _, stage = item.partition(":")
        argv = ["--presets", item, "--threads", threads]
        if data_dir:
            argv += ["--data_dir", data_dir]
        if steps:
            argv += ["--steps", steps]
        runs = {"bare": [], "apps.train": []}
        for _ in range(int(rounds)):
            for variant in runs:
                runs[variant].append(harness.run_child(__file__, argv, variant))
                log(f"  {item} {variant}: {runs[variant][-1]['images_per_s']:.0f} images/s")
        bare = statistics.median(r["images_per_s"] for r in runs["bare"])
        e2e = statistics.median(r["images_per_s"] for r in runs["apps.train"])
        rows.append({"preset": preset, "stage": stage or None, "batch_size":
                     runs["bare"][0]["batch_size"], "steps": runs["bare"][0]["steps"],
                     "bare_images_per_s": bare, "apps_train_images_per_s": e2e,
                     "ratio": e2e / bare, "runs": runs})
    return rows


def print_table(rows, out=print):
    out("| preset (stage) | batch | steps/epoch timed | bare step images/s | apps.train images/s "
        "| apps.train / bare | epoch s: steps + validation + rest |")
    out("|---|---|---|---|---|---|---|")
    for r in rows:
        name = r["preset"] + (f" ({r['stage']})" if r["stage"] else "")
        split = [s for run in r["runs"]["apps.train"] for s in run.get("split_s", [])]
        where = " / ".join(f"{s['steps']:.1f} + {s['validation']:.1f} + {s['rest']:.1f}"
                           for s in split) or "—"
        out(f"| {name} | {r['batch_size']} | {r['steps']} | {r['bare_images_per_s']:.0f} "
            f"| {r['apps_train_images_per_s']:.0f} | {r['ratio']:.2f} | {where} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=DEFAULT, help="NAME[:STAGE],...")
    p.add_argument("--data_dir", default=None, help="folder with mnist.npz (default: "
                   "../shared/data when present, else the embedded digits)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per epoch (default: a whole epoch)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        preset, _, stage = args.presets.partition(":")
        run = run_bare if args._child == "bare" else run_apps_train
        harness.report(run(preset, stage or None, args.data_dir, args.steps, args.threads))
        return 0
    rows = measure(args.presets, args.data_dir, args.steps, args.rounds, args.threads)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
