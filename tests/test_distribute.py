import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.objectives import reinforce
from keras_glimpse import distribute
from toy_model import ToyGlimpseModel

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS_DIR)


def _toy():
    model = ToyGlimpseModel(image_shape=(8, 8, 1), units=8, seed=1)
    model.build_from_image_shape()
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    return model


def _batch(n=8):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(n, 8, 8, 1)).astype("float32"), rng.integers(0, 10, n).astype("int32")


def test_get_strategy_by_name(monkeypatch):
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    mirrored = distribute.get_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2  # conftest: 2 logical CPUs
    with pytest.raises(ValueError, match="'tpu'"):
        distribute.get_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        distribute.get_strategy("multi_worker")


def test_reduce_loss_is_the_global_batch_mean_under_two_replicas():
    strategy = helpers.two_cpu_strategy()
    values = tf.range(8, dtype=tf.float32)
    ds = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(values).batch(8))
    per_replica = strategy.run(reinforce.reduce_loss, args=(next(iter(ds)),))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
    np.testing.assert_allclose(float(total), 3.5)  # the global mean, not 2x


def test_toy_train_step_replica_equivalence():
    x, y = _batch()
    helpers.assert_replica_equivalence(_toy, x, y, steps=2, trained="all", control=True)


WORKER = textwrap.dedent("""
    import os, sys
    sys.path[:0] = [sys.argv[2], sys.argv[3]]
    import numpy as np
    import keras
    import tensorflow as tf
    from keras_glimpse import distribute
    from toy_model import ToyGlimpseModel

    strategy = distribute.get_strategy("multi_worker")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    keras.utils.set_random_seed(int(os.environ["WORKER_SEED"]))  # differs per worker
    with strategy.scope():
        model = ToyGlimpseModel(image_shape=(8, 8, 1), units=8, seed=1)
        model.build_from_image_shape()
        model.compile(optimizer=keras.optimizers.SGD(0.5))
    initial = [np.asarray(w) for w in model.get_weights()]
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 32).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    model.fit(ds.with_options(options), epochs=2, steps_per_epoch=2, verbose=0)
    np.savez(sys.argv[1], *model.get_weights())
    np.savez(sys.argv[1] + ".initial.npz", *initial)
    """)


def _free_ports(n):
    # gRPC binds 0.0.0.0:port, so probe the same address. The ports are free
    # now but released before the workers bind them: another process may take
    # one in between, which `_run_workers` detects and retries.
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# What a worker prints when its port was taken between `_free_ports` and its bind.
_BIND_ERRORS = ("Could not start gRPC server", "Failed to add port", "Address already in use")


def _run_workers(tmp_path, attempt, timeout=240):
    """Launches the two workers; returns `(returncodes, logs)`."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs, logs = [], []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", WORKER_SEED=str(100 + index),
                   CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                         "task": {"type": "worker", "index": index}}))
        out = tmp_path / f"w{index}.npz"
        log = tmp_path / f"w{index}.attempt{attempt}.log"
        logs.append(log)
        with open(log, "w") as f:  # a file, not a pipe: nothing blocks on a full pipe
            procs.append(subprocess.Popen(
                [sys.executable, "-c", WORKER, str(out), REPO, TESTS_DIR], env=env,
                cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT))
    deadline = time.time() + timeout
    try:
        # A worker that failed (e.g. could not bind) leaves its peer waiting for
        # it until the timeout: stop at the first failure.
        while time.time() < deadline and any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    return [p.returncode for p in procs], [log.read_text() for log in logs]


def test_multi_worker_two_local_processes(tmp_path):
    for attempt in range(3):  # retry the whole launch if a port was taken meanwhile
        codes, logs = _run_workers(tmp_path, attempt)
        if codes == [0, 0] or not any(e in log for log in logs for e in _BIND_ERRORS):
            break
    for code, log in zip(codes, logs):
        assert code == 0, log[-3000:]
    w0 = np.load(tmp_path / "w0.npz")
    w1 = np.load(tmp_path / "w1.npz")
    init = np.load(tmp_path / "w0.npz.initial.npz")
    assert len(w0.files) == len(w1.files) > 0
    changed = 0
    for k in w0.files:
        np.testing.assert_allclose(w0[k], w1[k], atol=1e-6)
        changed += int(not np.allclose(w0[k], init[k]))
    assert changed > 0
