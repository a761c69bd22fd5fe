"""Train-step throughput under float32 / mixed precision, with and without XLA.

    python benchmarks/precision.py [--presets ram_mnist28,recap_cluttered64:agent,...]
        [--policies float32,mixed_float16] [--jit false,true] [--steps 20] [--batch_size N]

One row per (preset[:stage], dtype policy, XLA), each in a fresh process
(benchmarks/harness.py): the preset's model built as `apps.train` builds it
(`training.dtype_policy`, `training.jit_compile`), compiled from its preset,
trained on one real batch of its data pipeline repeated. `first s` is the
first step (tracing, XLA compilation); `images/s` the steady state; peak
memory is the GPU allocator's peak when a GPU is visible (the `device`
column says GPU), else the process's peak RSS. On a CPU, float16 runs in
software: the mixed rows there check the code path, not a speed-up.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)

CPU_PRESETS = "ram_mnist28,recap_cluttered64:agent,patchdrop_digits64:pretrain"
GPU_PRESETS = (CPU_PRESETS + ",uram_mnist28,ordinal_cluttered84:joint,"
               "adaglimpse_digits_classification:rl,adaglimpse_digits_classification:pretrain")


def run_one(variant, steps, batch_size):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from keras_glimpse import training

    spec, policy, jit = variant.split("|")
    name, _, stage = spec.partition(":")
    overrides = {"training.dtype_policy": policy, "training.jit_compile": jit == "true"}
    config = training.resolve_config(name, stage=stage or None, batch_size=batch_size,
                                     overrides=overrides)
    model = training.build_model(config)
    model.jit_compile = jit == "true"
    batch = next(iter(training.make_data(config, "train")))
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    timing = harness.timed(harness.fit_steps(model, ds), steps, warmup=1)
    peak, where = harness.peak_memory_mib()
    images = int(tf.shape(tf.nest.flatten(batch)[0])[0])
    return {"preset": spec, "policy": policy, "jit": jit, "first_s": timing["first_s"],
            "images_per_s": images * timing["steps_per_s"], "peak_mib": peak,
            "device": "GPU" if where == "GPU" else "CPU"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=None,
                   help=f"default: {CPU_PRESETS} on a CPU; with a GPU also the others")
    p.add_argument("--policies", default="float32,mixed_float16")
    p.add_argument("--jit", default="false,true")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch_size", type=int, default=None, help="default: the preset's")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        harness.report(run_one(args._child, args.steps, args.batch_size))
        return 0
    if args.presets is None:
        import tensorflow as tf

        args.presets = GPU_PRESETS if tf.config.list_physical_devices("GPU") else CPU_PRESETS
    extra = ["--steps", args.steps] + (["--batch_size", args.batch_size]
                                       if args.batch_size else [])
    print(f"{'preset':<42} {'policy':<14} {'XLA':<5} {'device':<6} {'first s':>8} "
          f"{'images/s':>10} {'peak MiB':>9}", flush=True)
    for spec in args.presets.split(","):
        for policy in args.policies.split(","):
            for jit in args.jit.split(","):
                try:
                    r = harness.run_child(__file__, extra, f"{spec}|{policy}|{jit}")
                except RuntimeError as e:
                    print(f"{spec:<42} {policy:<14} {jit:<5} failed: "
                          f"{str(e).strip().splitlines()[-1][:80]}", flush=True)
                    continue
                print(f"{spec:<42} {policy:<14} {jit:<5} {r['device']:<6} "
                      f"{r['first_s']:8.1f} {r['images_per_s']:10.1f} {r['peak_mib']:9.0f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
