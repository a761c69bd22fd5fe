"""Throughput and peak memory of PatchDrop's training steps (patchdrop_r32_c10).

    python benchmarks/patchdrop.py [--batch_size 256] [--steps 5] [--stages pretrain finetune]

Each stage runs in its own subprocess so that the peak resident memory
(`ru_maxrss`, which includes TensorFlow's runtime, about 0.6 GB) is that
stage's alone. The step is the compiled `train_step` as `fit` runs it, on
synthetic CIFAR-shaped data. Reference (PyTorch original, GPU): pretrain
0.14 steps/s at batch 256, 7.8 GB peak.
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)


def run_one(stage, batch_size, steps, warmup):
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import tensorflow as tf

    import keras_glimpse

    model = keras_glimpse.build("patchdrop_r32_c10", stage=stage)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch_size, 32, 32, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, batch_size).astype("int32"))
    step = tf.function(model.train_step, jit_compile=False)
    dt = harness.timed(harness.call_steps(step, (x, y)), steps, warmup)["step_s"]
    peak_gb = harness.peak_rss_mb() / 1024
    return {"stage": stage, "batch_size": batch_size, "steps_per_s": 1.0 / dt,
            "images_per_s": batch_size / dt, "peak_rss_gb": peak_gb,
            "device": "CPU" if not tf.config.list_physical_devices("GPU") else "GPU",
            "cpu_threads": os.cpu_count()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--stages", nargs="+", default=["pretrain", "finetune"])
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        harness.report(run_one(args._child, args.batch_size, args.steps, args.warmup))
        return
    rows = []
    for stage in args.stages:
        rows.append(harness.run_child(__file__, ["--batch_size", args.batch_size, "--steps",
                                                 args.steps, "--warmup", args.warmup], stage))
    print(f"{'stage':<10} {'batch':>5} {'steps/s':>8} {'images/s':>9} {'peak RSS GB':>12}")
    for r in rows:
        print(f"{r['stage']:<10} {r['batch_size']:>5} {r['steps_per_s']:>8.3f} "
              f"{r['images_per_s']:>9.1f} {r['peak_rss_gb']:>12.2f}  ({r['device']})")
    print("PyTorch original (same 2 CPU cores): pretrain 0.14 steps/s at batch 256, 7.8 GB peak.")


if __name__ == "__main__":
    main()
