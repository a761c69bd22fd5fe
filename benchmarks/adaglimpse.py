"""Throughput and peak memory of AdaGlimpse presets (tiny ones on CPU, any on a GPU).

python benchmarks/adaglimpse.py [--steps 5] [--batch_size 64] [--presets a,b]
    [--phases rl,backbone] [--rl_step reference,loop]

Each (preset, phase, RL step implementation) runs in its own process
(benchmarks/harness.py), so peak memory is per row: the GPU allocator's peak
when a GPU is visible, else the process's peak RSS. Phases: `rl` = one episode
of T glimpse steps with `rl_iters_per_step` SAC updates after each (the
backbone frozen); `backbone` = one episode and one optimizer step of the
backbone. Trace time (the first call: tracing, graph optimisation, the first
step) is reported separately from the steady-state rate.

`--rl_step` picks `AdaGlimpse.rl_step_impl` for the `rl` rows: `reference` is
the previous implementation (the episode unrolled in Python, one graph copy of
the SAC update per glimpse step and iteration, the plain network calls),
`unrolled` the same unrolled graph with the current SAC update (what runs under
a tf.distribute strategy), `loop` the default (one tf.while_loop). Rows of the
same preset are compared with the first implementation listed (`speed-up`).
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")

import tensorflow as tf  # noqa: E402

import harness  # noqa: E402  (benchmarks/ is not a package)
import keras_glimpse  # noqa: E402

PRESETS = "adaglimpse_digits_reconstruction,adaglimpse_digits_classification"


def run_one(name, phase, steps, batch_size, rl_step="loop"):
    model = keras_glimpse.build(
        name, seed=0, backbone_training="backbone_only" if phase == "backbone" else "rl_only")
    model.rl_step_impl = rl_step
    h, w, c = model.image_shape
    x = tf.random.stateless_uniform((batch_size, h, w, c), [0, 1])
    if model.task == "classification":
        y = tf.zeros((batch_size,), tf.int32)
    elif model.task == "segmentation":
        y = tf.zeros((batch_size, h, w), tf.int32)
    else:
        y = x
    timing = harness.timed(harness.call_steps(model.make_train_function(), [(x, y)]), steps,
                           warmup=1)
    trace, dt = timing["first_s"], timing["step_s"]
    peak, where = harness.peak_memory_mib()
    updates = model.num_glimpses * model.rl_iters_per_step if phase == "rl" else 1
    return {"preset": name, "phase": phase, "rl_step": rl_step if phase == "rl" else "-",
            "trace_s": trace, "batches_per_s": 1.0 / dt, "images_per_s": batch_size / dt,
            "glimpse_steps_per_s": model.num_glimpses / dt, "updates_per_s": updates / dt,
            "peak_mb": peak, "memory": where}


def table(rows, batch_size, steps):
    lines = [f"AdaGlimpse train step, batch {batch_size}, {steps} timed steps",
             "| preset | phase | RL step | trace s | batches/s | images/s | glimpse steps/s "
             "| optimizer updates/s | speed-up | peak MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    first = {}
    for r in rows:
        base = first.setdefault((r["preset"], r["phase"]), r)
        speedup = r["batches_per_s"] / base["batches_per_s"]
        lines.append(
            f"| {r['preset']} | {r['phase']} | {r['rl_step']} | {r['trace_s']:.1f} "
            f"| {r['batches_per_s']:.2f} | {r['images_per_s']:.0f} "
            f"| {r['glimpse_steps_per_s']:.2f} | {r['updates_per_s']:.2f} | {speedup:.2f}x "
            f"| {r['peak_mb']:.0f} ({r['memory']}) |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--presets", default=PRESETS)
    p.add_argument("--phases", default="rl,backbone")
    p.add_argument("--rl_step", default="reference,loop",
                   help="comma-separated AdaGlimpse.rl_step_impl values for the rl rows")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        name, phase, rl_step = args._child.split(":")
        harness.report(run_one(name, phase, args.steps, args.batch_size, rl_step))
        return 0
    rows = []
    for name in args.presets.split(","):
        for phase in args.phases.split(","):
            for rl_step in (args.rl_step.split(",") if phase == "rl" else ["loop"]):
                rows.append(harness.run_child(
                    __file__, ["--steps", args.steps, "--batch_size", args.batch_size],
                    f"{name}:{phase}:{rl_step}"))
                print(rows[-1], flush=True)
    print(table(rows, args.batch_size, args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
