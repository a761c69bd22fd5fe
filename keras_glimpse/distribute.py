"""Distribution strategies by name: `default`, `mirrored`, `multi_worker`."""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def get_strategy(name="default", devices=None):
    """Returns a `tf.distribute.Strategy` for `name`.

    Args:
        name: `"default"` (one device), `"mirrored"` (all local GPUs, or the
            given `devices`; on a CPU-only machine the logical CPUs) or
            `"multi_worker"` (`MultiWorkerMirroredStrategy` configured from the
            `TF_CONFIG` environment variable).
        devices: optional device list for `"mirrored"`.

    Raises:
        ValueError: unknown `name`, or `multi_worker` without a valid `TF_CONFIG`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise ValueError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable, e.g. "
                '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                '"task": {"type": "worker", "index": 0}}.'
            )
        try:
            json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def global_batch_average(per_example, global_batch_size=None):
    """Reduces per-example values by the global batch (correct under any strategy)."""
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
