"""Images/s and peak memory against batch size and CPU threads, RAM and PatchDrop.

    python benchmarks/scaling.py [--batches 32,64,128,256,512,1024] [--threads 1,2]
                                 [--workloads ram,patchdrop] [--steps 20]

Each (workload, batch, threads) point is the bare training step (`model.fit`
on one random batch repeated, the preset's compile settings) in its own
process, so peak resident memory (or the GPU allocator's peak) is that point's
alone. Workloads: `ram` = `ram_mnist28` (28x28); `patchdrop` =
`patchdrop_r32_c10` policy pretraining (32x32x3, CIFAR-shaped random data),
whose README batch is 1024. Steps are capped by time (`--max_seconds`), at
least 2 timed steps.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)

WORKLOADS = {"ram": ("ram_mnist28", None), "patchdrop": ("patchdrop_r32_c10", "pretrain")}


def run_point(workload, batch_size, threads, steps, max_seconds):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from keras_glimpse import training

    preset, stage = WORKLOADS[workload]
    config = training.resolve_config(preset, model_dir="unused", stage=stage)
    model = training.build_model(config)
    model.jit_compile = bool(config["training"].get("jit_compile", False))
    model.steps_per_execution = 1
    rng = np.random.default_rng(0)
    x = rng.random((batch_size,) + tuple(model.image_shape)).astype("float32")
    y = rng.integers(0, 10, batch_size).astype("int32")
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)  # trace
    done, start = 0, time.perf_counter()
    while done < steps and (done < 2 or time.perf_counter() - start < max_seconds):
        logs = model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)
        done += 1
    float(logs.history["loss"][-1])
    seconds = time.perf_counter() - start
    peak, where = harness.peak_memory_mib()
    return {"workload": preset + (f" ({stage})" if stage else ""), "batch_size": batch_size,
            "threads": threads, "steps": done, "images_per_s": batch_size * done / seconds,
            "peak_mib": peak, "memory": where}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="ram,patchdrop")
    p.add_argument("--batches", default="32,64,128,256,512,1024")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--max_seconds", type=float, default=20.0)
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        workload, batch, threads = args._child.split(":")
        harness.report(run_point(workload, int(batch), int(threads), args.steps,
                                 args.max_seconds))
        return 0
    rows = []
    for workload in args.workloads.split(","):
        for batch in args.batches.split(","):
            for threads in args.threads.split(","):
                rows.append(harness.run_child(
                    __file__, ["--steps", args.steps, "--max_seconds", args.max_seconds],
                    f"{workload}:{batch}:{threads}"))
                r = rows[-1]
                print(f"  {r['workload']} batch {batch} threads {threads}: "
                      f"{r['images_per_s']:.0f} images/s, {r['peak_mib']:.0f} MiB", flush=True)
    print("| workload | batch | threads | images/s | peak memory (MiB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['batch_size']} | {r['threads']} | {r['images_per_s']:.0f} "
              f"| {r['peak_mib']:.0f} ({r['memory']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
