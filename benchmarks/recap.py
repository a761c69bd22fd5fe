"""RECAP training throughput and peak memory: graph vs XLA (`jit_compile`).

Usage:
    python benchmarks/recap.py [--model recap_cluttered64] [--stage agent]
                               [--batch_size 32] [--steps 30] [--warmup 3]

Each configuration (graph, jit) runs in its own subprocess so that the peak
memory of one does not hide the other's. Reports train steps/s of
`model.fit` on a fixed random batch (data loading excluded) and the peak
memory: the process's peak resident set size on CPU, or
`tf.config.experimental.get_memory_info("GPU:0")["peak"]` on a GPU.
The PyTorch original runs about 11 agent steps/s on 2 CPU cores.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)


def run_one(model_name, stage, batch_size, steps, warmup, jit):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import numpy as np
    import tensorflow as tf

    import keras_glimpse.registry as registry

    model = registry.build(model_name, stage=stage, compile=False)
    preset = registry.get_preset(model_name)
    model.compile_from_preset(preset.get("training", {}))
    model.jit_compile = bool(jit)
    size = model.image_size
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, size, size, model.channels)).astype("float32")
    y = rng.integers(0, model.num_classes, size=(batch_size,)).astype("int32")
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    timing = harness.timed(harness.fit_steps(model, ds), steps, warmup)
    peak, where = harness.peak_memory_mib()
    return {"model": model_name, "stage": stage, "mode": "jit" if jit else "graph",
            "batch_size": batch_size, "steps_per_s": timing["steps_per_s"],
            "first_fit_s": timing["first_s"], "peak_mib": peak, "memory": where}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="recap_cluttered64")
    parser.add_argument("--stage", default="agent", choices=("agent", "pretrain"))
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--modes", default="graph,jit")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child is not None:
        result = run_one(args.model, args.stage, args.batch_size, args.steps, args.warmup,
                         args._child == "jit")
        harness.report(result)
        return
    rows = []
    for mode in args.modes.split(","):
        argv = ["--model", args.model, "--stage", args.stage, "--batch_size", args.batch_size,
                "--steps", args.steps, "--warmup", args.warmup]
        rows.append(harness.run_child(__file__, argv, mode))
    print("| model | stage | mode | batch | train steps/s | first fit (s) | peak memory (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['stage']} | {r['mode']} | {r['batch_size']} | "
              f"{r['steps_per_s']:.2f} | {r['first_fit_s']:.1f} | {r['peak_mib']:.0f} "
              f"({r['memory']}) |")
    return rows


if __name__ == "__main__":
    main()
