"""RAM training throughput and peak memory on CPU: eager vs graph vs XLA.

    python -m benchmarks.ram [--preset ram_mnist28] [--batch_size 128] [--steps 50]

Each mode runs in a fresh subprocess (so peak RSS is per mode) with 2 CPU
threads, trains `--steps` steps on random 28x28 digits after 20 warm-up steps,
and prints a table of steps/s and peak resident memory. Reference: the PyTorch
original runs about 20 steps/s for this setting on the same 2 cores.
"""

import argparse
import os
import sys

MODES = ("eager", "graph", "jit")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)


def run_one(mode, preset, batch_size, steps, threads):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    import keras_glimpse

    model = keras_glimpse.build(preset, compile=False, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-4), run_eagerly=mode == "eager",
                  jit_compile=mode == "jit")
    rng = np.random.default_rng(0)
    x = rng.random((batch_size,) + tuple(model.image_shape)).astype("float32")
    y = rng.integers(0, 10, batch_size).astype("int32")
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    # 20 warm-up steps: tracing, Grappler, allocator.
    timing = harness.timed(harness.fit_steps(model, ds), steps, warmup=20)
    return {"mode": mode, "steps_per_s": timing["steps_per_s"], "peak_mb": harness.peak_rss_mb()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="ram_mnist28")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        harness.report(run_one(args._child, args.preset, args.batch_size, args.steps,
                               args.threads))
        return 0
    rows = []
    for mode in args.modes.split(","):
        steps = max(5, args.steps // 5) if mode == "eager" else args.steps
        rows.append(harness.run_child(__file__, ["--preset", args.preset, "--batch_size",
                                                 args.batch_size, "--steps", steps,
                                                 "--threads", args.threads], mode))
    print(f"RAM train step, preset {args.preset}, batch {args.batch_size}, "
          f"{args.threads} CPU threads")
    print(f"{'mode':<8} {'steps/s':>9} {'peak RSS (MB)':>14}")
    for r in rows:
        print(f"{r['mode']:<8} {r['steps_per_s']:9.2f} {r['peak_mb']:14.0f}")
    print("reference: PyTorch original ~20 steps/s on the same 2 cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
