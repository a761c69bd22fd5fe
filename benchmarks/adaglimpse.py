"""Throughput and peak memory of the tiny AdaGlimpse presets on CPU.

python benchmarks/adaglimpse.py [--steps 5] [--batch_size 64]

Reports, per preset and phase (RL = T glimpse steps with one SAC update each;
backbone = one episode + one optimizer step), train batches/s, glimpse steps/s
and the process's peak resident memory. Trace time is reported separately.
"""

import argparse
import os
import resource
import time

os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")

import tensorflow as tf  # noqa: E402

import keras_glimpse  # noqa: E402


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench(name, phase, steps, batch_size):
    model = keras_glimpse.build(name, seed=0, freeze_backbone_epochs=0 if phase == "backbone" else 10)
    model.current_epoch = 1 if phase == "backbone" else 0
    h, w, c = model.image_shape
    x = tf.random.uniform((batch_size, h, w, c))
    y = tf.zeros((batch_size,), tf.int32)
    fn = model.make_train_function()
    data = [(x, y if model.task == "classification" else x)]
    t0 = time.time()
    fn(data)
    trace = time.time() - t0
    t0 = time.time()
    for _ in range(steps):
        logs = fn(data)
    float(logs["loss"])
    dt = (time.time() - t0) / steps
    return {"preset": name, "phase": phase, "trace_s": round(trace, 1),
            "batches_per_s": round(1.0 / dt, 3),
            "glimpse_steps_per_s": round(model.num_glimpses / dt, 2),
            "peak_rss_mb": round(peak_rss_mb(), 0)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--presets", default="adaglimpse_digits_reconstruction,adaglimpse_digits_classification")
    a = p.parse_args()
    rows = []
    for name in a.presets.split(","):
        for phase in ("rl", "backbone"):
            rows.append(bench(name, phase, a.steps, a.batch_size))
            print(rows[-1], flush=True)
    print("| preset | phase | trace s | batches/s | glimpse steps/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['phase']} | {r['trace_s']} | {r['batches_per_s']} | "
              f"{r['glimpse_steps_per_s']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
