"""Ordinal localiser training throughput and peak memory (joint stage, batch 512).

Usage:
    python benchmarks/ordinal.py [--stage joint|pretrain] [--batch_size 512]
                                 [--steps 5] [--warmup 2] [--modes graph,jit]

Each configuration (graph, jit = XLA) runs in its own subprocess so that the
peak memory of one does not hide the other's. Reports train steps/s of
`model.fit` on a fixed batch of random 84x84 images with random ground-truth
boxes (data loading excluded) and the peak memory: the process's peak
resident set size on CPU, or `tf.config.experimental.get_memory_info`'s peak
on a GPU. The model is the `ordinal_cluttered84` preset (T = 10 steps,
3.9 M embedding parameters, dropout on).
"""

import argparse
import os
import sys

NAME = "ordinal_cluttered84"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)


def run_one(stage, batch_size, steps, warmup, jit):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import numpy as np
    import tensorflow as tf

    from keras_glimpse import registry

    model = registry.build(NAME, stage=stage, compile=False)
    preset = registry.get_preset(NAME)
    training = dict(preset["training"])
    training.update(training.pop("stages")[stage])
    model.compile_from_preset(training)
    model.jit_compile = bool(jit)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, 84, 84, 1)).astype("float32")
    corner = rng.integers(0, 57, size=(batch_size, 2))
    y = np.concatenate([corner, corner + 27], axis=1).astype("float32")
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    timing = harness.timed(harness.fit_steps(model, ds), steps, warmup)
    peak, where = harness.peak_memory_mib()
    return {"stage": stage, "mode": "jit" if jit else "graph", "batch_size": batch_size,
            "steps_per_s": timing["steps_per_s"], "first_fit_s": timing["first_s"],
            "peak_mib": peak, "memory": where}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="joint", choices=("joint", "pretrain"))
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--modes", default="graph,jit")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child is not None:
        result = run_one(args.stage, args.batch_size, args.steps, args.warmup,
                         args._child == "jit")
        harness.report(result)
        return None
    rows = []
    for mode in args.modes.split(","):
        argv = ["--stage", args.stage,
               "--batch_size", str(args.batch_size), "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
        rows.append(harness.run_child(__file__, argv, mode))
    print("| stage | mode | batch | train steps/s | first fit (s) | peak memory (MiB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['mode']} | {r['batch_size']} | {r['steps_per_s']:.3f} | "
              f"{r['first_fit_s']:.1f} | {r['peak_mib']:.0f} ({r['memory']}) |")
    return rows


if __name__ == "__main__":
    main()
