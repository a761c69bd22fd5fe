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
        return _reduce_nested(tf.distribute.MultiWorkerMirroredStrategy())
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def _reduce_nested(strategy):
    """Makes `MultiWorkerMirroredStrategy` work with Keras 3.15's `fit`.

    1. `strategy.reduce` takes nested structures, as MirroredStrategy's does.

    Keras 3.15's `fit` reduces the first (x, y) batch with
    `strategy.reduce("MEAN", batch)` to build the model symbolically;
    `MultiWorkerMirroredStrategy` (TF 2.21) only reduces single values and
    fails with "Attempt to convert a value (PerReplica...)". Mapping the
    reduction over the structure fixes it without changing single values.
    """
    extended = strategy.extended
    reduce_to = extended._reduce_to

    def _reduce_to(reduce_op, value, destinations, options):
        if isinstance(value, (tuple, list, dict)):
            return tf.nest.map_structure(
                lambda v: reduce_to(reduce_op, v, destinations, options), value)
        return reduce_to(reduce_op, value, destinations, options)

    extended._reduce_to = _reduce_to

    # Keras 3.15 reduces per-replica metric values of a multi-worker strategy
    # with `strategy.reduce("MEAN", v, axis=0)`, which fails for the scalar
    # metrics every train_step returns ("Invalid reduction dimension 0 for
    # input with 0 dimensions"). For scalars, reduce across replicas instead.
    reduce = strategy.reduce

    def _is_scalar(v):
        local = strategy.experimental_local_results(v)
        return bool(local) and all(getattr(t, "shape", None) is not None
                                   and t.shape.rank == 0 for t in local)

    def reduce_with_scalars(reduce_op, value, axis=None):
        if axis is not None and all(_is_scalar(v) for v in tf.nest.flatten(value)):
            axis = None
        return reduce(reduce_op, value, axis=axis)

    strategy.reduce = reduce_with_scalars
    return strategy


def clip_by_global_norm_across_replicas(grads, clip_norm):
    """Clips by the global norm of the gradients summed over all replicas.

    Keras's `clipnorm` clips each replica's gradients before the all-reduce,
    which is not the single-device step under `MirroredStrategy`. Here the
    gradients are all-reduced first, clipped, and divided by the replica
    count, so that the optimizer's all-reduce (a sum) gives back the clipped
    global gradient. Returns `(clipped_grads, global_norm)`.
    """
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync if ctx is not None else 1
    if replicas > 1:
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    clipped, norm = tf.clip_by_global_norm(grads, clip_norm)
    if replicas > 1:
        clipped = [g / replicas for g in clipped]
    return clipped, norm
