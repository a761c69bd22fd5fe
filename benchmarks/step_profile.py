"""Where a training step's time goes: TensorFlow's profiler on one preset's bare train step.

    python benchmarks/step_profile.py [--presets ram_mnist28,recap_cluttered64:agent]
                                      [--steps 200] [--top 8] [--threads 2] [--json FILE]

Each preset (`NAME` or `NAME:STAGE`) runs in a fresh process: the bare step of
`end_to_end.py` (`model.fit` on one real batch repeated, the preset's own
`steps_per_execution`, `jit_compile` and `intra_op_threads`), warmed up, then
`--steps` steps under `tf.profiler`. From the trace it prints:

- **ms/step**: wall time per step while profiled, from Keras' `on_train_begin`
  to `on_train_end` (the profiler adds a few %);
- **busy**: the executor threads' time inside kernels' batches
  (`ExecutorState::Process`), per step, as a share of both threads' wall time:
  near 100 % the cores are busy running the graph, not waiting on Python;
- **kernels**: kernel launches per step and the time in matrix products and
  convolutions (forward and gradient: `*MatMul*`, `*Conv*`, `Einsum`) against
  all kernels;
- **GFLOP/s**: `3 x` the forward matrix-product FLOPs of the greedy rollout at
  the same batch (TensorFlow's profiler count, `keras_glimpse.flops.profiler_flops`;
  a training step is about one forward and two backward passes) over the time
  in those kernels, beside this machine's rate on one large matrix product
  (2048 x 2048 x 2048, float32, the step's threads per op: with the presets'
  one thread per op, one core's rate). A step whose matrix-product
  kernels run near that rate, with busy threads, is bound by its arithmetic:
  only fewer FLOPs make it faster;
- the `--top` op types by kernel time.

The estimate ignores elementwise FLOPs and the RL-specific extra passes (RECAP's
prefix logits, baseline and value heads), so read it as a lower bound of
the rate. No GPU row: on a GPU use TensorBoard's profile plugin.
"""

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/ is not a package)

DEFAULT = "ram_mnist28,recap_cluttered64:agent"
DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "data")
# Kernel (op type) names of matrix products and convolutions, oneDNN variants included.
_DENSE_MARKS = ("MatMul", "Conv", "Einsum")


def is_dense_kernel(op_type):
    """True for the matrix-product and convolution kernels (forward and gradient)."""
    return any(mark in op_type for mark in _DENSE_MARKS)


def summarize_trace(xspace, steps):
    """Per-step kernel time by op type and busy time of the executor threads.

    Args:
        xspace: a parsed `XSpace` (the profiler's `*.xplane.pb`).
        steps: training steps the trace covers.

    Returns:
        dict: `busy_ms` (summed over threads), `threads`, `kernels` (launches),
        `kernel_ms`, `dense_ms` and `by_type` ({op type: ms}), all per step.
    """
    by_type = collections.Counter()
    launches = 0
    busy = 0.0
    threads = 0
    for plane in xspace.planes:
        meta = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            threads += 1
            for event in line.events:
                m = meta[event.metadata_id]
                ms = event.duration_ps / 1e9
                if m.display_name:  # a kernel: the display name is its op type
                    by_type[m.display_name] += ms
                    launches += 1
                elif m.name == "ExecutorState::Process":
                    busy += ms
    kernel_ms = sum(by_type.values())
    dense_ms = sum(v for k, v in by_type.items() if is_dense_kernel(k))
    return {"busy_ms": busy / steps, "threads": threads, "kernels": launches / steps,
            "kernel_ms": kernel_ms / steps, "dense_ms": dense_ms / steps,
            "by_type": {k: v / steps for k, v in by_type.most_common()}}


def matmul_gflops(size=2048, repeats=5):
    """This process's float32 rate on one `size`-cube matrix product, in GFLOP/s."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    f().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f().numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best / 1e9


def run_child(item, data_dir, steps, threads):
    """Profiles one preset's bare step; returns the row."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import end_to_end
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from keras_glimpse import flops

    preset, _, stage = item.partition(":")
    model, ds, batch, _ = end_to_end.bare_setup(preset, stage or None, data_dir, None, threads)
    spe = model.steps_per_execution
    steps = max(spe, steps // spe * spe)
    run = harness.fit_steps(model, ds)
    run(4 * spe)  # trace, warm up
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    run(steps)
    tf.profiler.experimental.stop()
    wall_ms = run.inner_s * 1e3 / steps  # the steps only (see harness.fit_steps)
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    row = summarize_trace(space, steps)
    forward = flops.matmul_flops(flops.profiler_flops(model, batch_size=batch))
    row.update({"preset": item, "batch_size": batch, "steps": steps, "wall_ms": wall_ms,
                "images_per_s": batch * 1e3 / wall_ms, "train_gflop": 3 * forward / 1e9,
                "peak_gflops": matmul_gflops(), "jit_compile": model.jit_compile,
                "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()})
    row["dense_gflops"] = row["train_gflop"] / (row["dense_ms"] / 1e3) if row["dense_ms"] else None
    row["wall_gflops"] = row["train_gflop"] / (wall_ms / 1e3)
    return row


def format_rows(rows, top=8):
    """Markdown tables: one summary row per preset, then each preset's top op types."""
    out = ["| preset | batch | ms/step | images/s | busy (of threads x wall) | kernels/step "
           "| matmul+conv ms (of kernels) | train GFLOP/step | GFLOP/s in matmul+conv "
           "| large matmul GFLOP/s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        busy = r["busy_ms"] / (r["threads"] * r["wall_ms"]) if r["threads"] else 0.0
        dense = r["dense_gflops"]
        rate = f"{dense:.0f} ({dense / r['peak_gflops']:.0%})" if dense else "—"
        share = r["dense_ms"] / r["kernel_ms"] if r["kernel_ms"] else 0.0
        out.append(
            f"| {r['preset']} | {r['batch_size']} | {r['wall_ms']:.1f} | {r['images_per_s']:.0f} "
            f"| {busy:.0%} ({r['threads']} threads) | {r['kernels']:.0f} "
            f"| {r['dense_ms']:.1f} of {r['kernel_ms']:.1f} ({share:.0%}) "
            f"| {r['train_gflop']:.2f} | {rate} | {r['peak_gflops']:.0f} "
            f"({r['intra_op_threads']} thread{'s' if r['intra_op_threads'] != 1 else ''} per op) |")
    for r in rows:
        out += ["", f"{r['preset']}: top op types, kernel ms per step", "",
                "| op type | ms/step | share of kernel time |", "|---|---|---|"]
        for name, ms in list(r["by_type"].items())[:top]:
            out.append(f"| {name} | {ms:.2f} | {ms / r['kernel_ms']:.0%} |")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=DEFAULT)
    parser.add_argument("--data_dir", default=None,
                        help="full MNIST folder (default ../shared/data, else embedded digits)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or (DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) else None)
    if args._child:
        harness.report(run_child(args._child, data_dir, args.steps, args.threads))
        return
    rows = []
    for item in args.presets.split(","):
        argv = ["--steps", args.steps, "--threads", args.threads]
        if data_dir:
            argv += ["--data_dir", data_dir]
        rows.append(harness.run_child(os.path.abspath(__file__), argv, item))
        print(f"{item}: {rows[-1]['wall_ms']:.1f} ms/step", flush=True)
    print(format_rows(rows, args.top))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
