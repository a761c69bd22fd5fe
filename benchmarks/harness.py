"""Shared plumbing of the benchmarks: one fresh process per measured variant.

Each benchmark script re-runs itself with `--_child VARIANT` so that every
variant (eager / graph / XLA, or a training stage) gets its own process: peak
resident memory is then per variant, and one variant's traced graphs and
allocator state do not flatter the next. The child prints one JSON line.
"""

import json
import resource
import subprocess
import sys
import time


def peak_rss_mb():
    """Peak resident memory of this process in MiB (Linux `ru_maxrss` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(result):
    """Child side: print the result dict as the JSON line the parent reads."""
    print("RESULT " + json.dumps(result), flush=True)


def run_child(script, argv, variant):
    """Parent side: runs `script argv --_child variant`; returns its result dict.

    Raises:
        RuntimeError: the child failed or printed no result (its stderr tail is
            in the message).
    """
    cmd = [sys.executable, script, *map(str, argv), "--_child", variant]
    out = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark variant {variant!r} failed (exit {out.returncode}):\n"
                           f"{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def peak_memory_mib():
    """`(peak MiB, where)`: the GPU allocator's peak when a GPU is visible, else
    the process's peak resident set size."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "GPU"
    return peak_rss_mb(), "CPU RSS"


def timed(run, steps, warmup=0):
    """The one timing loop of the benchmarks.

    `run(n)` runs `n` training steps and returns the last step's logs (or
    anything else). `run(warmup)` is timed first (`first_s`: tracing, XLA
    compilation, allocator warm-up), then `run(steps)`; a `"loss"` in the
    returned logs is read back so queued device work is counted. When `run`
    keeps its own measure of the steps in `run.inner_s` (`fit_steps` does:
    the steps without `fit`'s set-up and teardown), that is the time of the
    timed steps, and `call_s` the whole call.

    Returns:
        dict: `first_s`, `seconds`, `step_s`, `steps_per_s` and `call_s` of
        the timed steps.
    """

    def finish(logs):
        if isinstance(logs, dict) and "loss" in logs:
            float(logs["loss"])

    start = time.perf_counter()
    if warmup:
        finish(run(warmup))
    first = time.perf_counter() - start
    start = time.perf_counter()
    if hasattr(run, "inner_s"):
        run.inner_s = None  # not the warm-up's
    finish(run(steps))
    call = time.perf_counter() - start
    seconds = getattr(run, "inner_s", None) or call
    return {"first_s": first, "seconds": seconds, "step_s": seconds / steps,
            "steps_per_s": steps / seconds, "call_s": call}


def median_ms(fn, repeats=20):
    """Median wall milliseconds of `fn()` (its result read back) after one untimed call."""
    fn().numpy()  # trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn().numpy()
        times.append(1000 * (time.perf_counter() - start))
    return sorted(times)[len(times) // 2]


def fit_steps(model, dataset):
    """`run(n)` for `timed`: one `model.fit` epoch of `n` steps on `dataset` (repeated).

    `run.inner_s` is the time from Keras' `on_train_begin` to `on_train_end`:
    the steps alone. Around them, `fit` builds its iterator and, when it
    returns, tears down the endless `from_tensors(...).repeat()` iterator;
    that teardown took 0 to 5 s per call (2026-12-05, RECAP agent: 200 steps
    measured 4.4 s inside, 5.1 or 10.2 s around `fit`), which had halved some
    of the bare rates and made `apps.train` look faster than its own step.
    """
    import keras

    marks = {}

    class _Marks(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks["begin"] = time.perf_counter()

        def on_train_end(self, logs=None):
            marks["end"] = time.perf_counter()

    def run(n):
        history = model.fit(dataset, steps_per_epoch=n, epochs=1, verbose=0,
                            callbacks=[_Marks()])
        run.inner_s = marks["end"] - marks["begin"]
        return history

    return run


def call_steps(step, *args):
    """`run(n)` for `timed`: `n` calls of `step(*args)` (e.g. a compiled train
    function); returns the last call's result."""

    def run(n):
        logs = None
        for _ in range(n):
            logs = step(*args)
        return logs

    return run
