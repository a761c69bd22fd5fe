"""Shared test helpers. Every layer and model test calls these, never a copy.

- `assert_config_roundtrip(layer)`: `from_config(get_config())` gives an equal config.
- `assert_keras_roundtrip(model, inputs)`: save to `.keras`, reload, same outputs.
- `assert_layer_saved_model_roundtrip(layer, inputs)`: the layer inside a
  tf.Module survives `tf.saved_model.save/load` with identical outputs.
- `assert_export_roundtrip(model, images)`: `keras_glimpse.export` SavedModel's
  `serve` equals the model's greedy rollout, `sample` runs and has the right shapes.
- `assert_jit_compiles(fn, *args)`: `fn` runs under `tf.function(jit_compile=True)`
  and matches eager.
- `deterministic_sampling()`: context manager replacing `keras.random.normal`
  by a fixed NON-ZERO noise (`NOISE_PATTERN` along the last axis, the same for
  every example) and `keras.random.uniform` by a fixed point of its range, so
  that policies draw identical actions per example regardless of how a batch
  is split, and Gaussian policy gradients (proportional to the noise) are not 0.
- `assert_replica_equivalence(build_fn, x, y)`: one `fit` step on one device
  equals one step under MirroredStrategy on 2 logical CPUs (DESIGN rule 2);
  every trained weight must change, and (`control=True`) a planted
  per-replica loss mean must break the equivalence.
- `per_replica_loss_mean()`: the planted bug of that control.
"""

import contextlib
import os
import tempfile
from unittest import mock

import keras
import numpy as np
import tensorflow as tf


def _to_numpy_tree(x):
    return tf.nest.map_structure(lambda t: np.asarray(t), x)


def assert_allclose_tree(a, b, atol=1e-5, rtol=1e-5):
    a, b = _to_numpy_tree(a), _to_numpy_tree(b)
    tf.nest.assert_same_structure(a, b)
    for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
        np.testing.assert_allclose(x, y, atol=atol, rtol=rtol)


def assert_config_roundtrip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config, (clone.get_config(), config)
    return clone


def assert_keras_roundtrip(model, inputs, atol=1e-5, call=None):
    """Saves `model` to a .keras file, reloads it and compares `call(model, inputs)`."""
    call = call or (lambda m, x: m(x, training=False))
    expected = call(model, inputs)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, compile=False)
    assert_allclose_tree(expected, call(loaded, inputs), atol=atol)
    return loaded


def assert_layer_saved_model_roundtrip(layer, inputs, atol=1e-5, call=None):
    call = call or (lambda l, x: l(x))
    expected = call(layer, inputs)
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), inputs)
    module = tf.Module()
    module.layer = layer
    module.f = tf.function(lambda x: call(layer, x), input_signature=[spec])
    with tempfile.TemporaryDirectory() as d:
        tf.saved_model.save(module, d)
        reloaded = tf.saved_model.load(d)
        got = reloaded.f(inputs)
    assert_allclose_tree(expected, got, atol=atol)


def assert_jit_compiles(fn, *args, atol=1e-4):
    eager = fn(*args)
    jitted = tf.function(fn, jit_compile=True)(*args)
    assert_allclose_tree(eager, jitted, atol=atol, rtol=1e-4)
    return jitted


def assert_export_roundtrip(model, images, num_samples=3, atol=1e-4):
    from keras_glimpse.export import export_saved_model

    images = tf.convert_to_tensor(images, tf.float32)
    expected = model.export_outputs(images, mode="greedy")
    with tempfile.TemporaryDirectory() as d:
        path = export_saved_model(model, os.path.join(d, "export"), num_samples=num_samples)
        loaded = tf.saved_model.load(path)
        served = loaded.signatures["serve"](images=images)
        sampled = loaded.signatures["sample"](images=images)
        if getattr(model, "supports_early_exit", False):  # p = 1: the full greedy rollout
            early = loaded.serve_early_exit(images, tf.constant(1.0))
            np.testing.assert_allclose(np.asarray(early["predictions"]),
                                       np.asarray(expected["predictions"]), atol=atol, rtol=1e-4)
    for k, v in expected.items():
        np.testing.assert_allclose(np.asarray(served[k]), np.asarray(v), atol=atol, rtol=1e-4)
    b = images.shape[0]
    assert sampled["predictions"].shape[0] == b
    for k in model.trajectory_keys:
        assert sampled[k].shape[:2] == (num_samples, b), (k, sampled[k].shape)
    return served, sampled


# The standard-normal noise under `deterministic_sampling`, cycled along the
# last axis. Non-zero: a Gaussian policy's log-prob gradient w.r.t. its mean is
# `eps / std`, so zero noise would make every REINFORCE location gradient 0.
# It does not depend on the batch index, so each replica's shard of a batch
# sees exactly the noise the same examples see on one device.
NOISE_PATTERN = (0.3, -0.25, 0.2, -0.35)


def _shape_tensor(shape):
    if isinstance(shape, (tuple, list)):
        return tf.stack([tf.cast(d, tf.int32) for d in shape])
    return tf.cast(shape, tf.int32)


@contextlib.contextmanager
def deterministic_sampling():
    """Makes keras.random.normal/uniform return fixed per-element values."""
    real_uniform = keras.random.uniform

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        dtype = tf.as_dtype(dtype or "float32")
        shape = _shape_tensor(shape)
        k = tf.range(shape[-1]) % len(NOISE_PATTERN)
        eps = tf.broadcast_to(tf.gather(tf.constant(NOISE_PATTERN, dtype), k), shape)
        return tf.cast(mean, dtype) + tf.cast(stddev, dtype) * eps

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return keras.ops.full(shape, 0.5 * (minval + maxval) - 0.13 * (maxval - minval),
                              dtype=dtype or "float32")

    with mock.patch.object(keras.random, "normal", normal), \
            mock.patch.object(keras.random, "uniform", uniform):
        yield real_uniform


@contextlib.contextmanager
def per_replica_loss_mean():
    """Plants the classic distribution bug: losses averaged over each replica's
    shard (`reduce_mean`) instead of the global batch. With N replicas the
    summed gradient is N times too large; plain SGD shows it, Adam hides it."""
    def local_mean(per_example, sample_weight=None, global_batch_size=None):
        return tf.reduce_mean(per_example)

    with mock.patch.object(tf.nn, "compute_average_loss", local_mean):
        yield


def two_cpu_strategy():
    cpus = tf.config.list_logical_devices("CPU")
    assert len(cpus) >= 2, "conftest.py must configure 2 logical CPUs"
    # Every MirroredStrategy numbers its collectives from the same keys, and TF
    # caches them per process: a later all-reduce of another shape would abort
    # with "Shape mismatch in the collective instance". TF's own tests bump the
    # base the same way.
    tf.distribute.MirroredStrategy._collective_key_base += 10_000
    return tf.distribute.MirroredStrategy([cpus[0].name, cpus[1].name])


def _fit_from(build_fn, initial, ds, steps, fit_kwargs):
    model = build_fn()
    if initial is not None:
        model.set_weights(initial)
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, **fit_kwargs)
    return model


def assert_replica_equivalence(build_fn, x, y=None, steps=1, atol=1e-5, rtol=1e-4,
                               fit_kwargs=None, trained=None, control=False):
    """One (or `steps`) fit step(s) on 1 device == on 2 mirrored logical CPUs.

    Compile `build_fn`'s model with plain SGD: Adam (scale invariant) and
    gradient clipping would hide a gradient that is N times too large.

    Args:
        build_fn: returns a built and compiled model (called once per strategy,
            inside the strategy scope).
        x, y: one global batch (the batch size must be even).
        trained: `"all"` (every trainable variable) or a `model -> variables`
            callable: the variables the step trains; every one must change.
            None (callers not yet converted): at least one weight changes.
        control: also fit under `per_replica_loss_mean()` on 2 replicas and
            require the comparison to catch it (its weights differ).

    Returns:
        `(single, mirrored)` models.
    """
    fit_kwargs = fit_kwargs or {}
    data = (x,) if y is None else (x, y)
    ds = tf.data.Dataset.from_tensors(data).repeat(steps)
    with deterministic_sampling():
        single = build_fn()
        initial = single.get_weights()
        variables = (single.trainable_weights if trained in (None, "all")
                     else trained(single))
        before = [np.array(v) for v in variables]
        single.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, **fit_kwargs)
        strategy = two_cpu_strategy()
        with strategy.scope():
            mirrored = _fit_from(build_fn, initial, ds, steps, fit_kwargs)
        if control:
            with strategy.scope(), per_replica_loss_mean():
                planted = _fit_from(build_fn, initial, ds, steps, fit_kwargs)
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol)
    # Exact: a weight with a zero gradient keeps its bits under plain SGD.
    unchanged = [v.path for v, w0 in zip(variables, before) if np.array_equal(np.array(v), w0)]
    if trained is None:
        assert len(unchanged) < len(variables), "no weight changed: the step updated nothing"
    else:
        assert variables and not unchanged, f"trained weights that did not change: {unchanged}"
    if control:
        caught = any(not np.allclose(a, b, atol=atol, rtol=rtol)
                     for a, b in zip(single.get_weights(), planted.get_weights()))
        assert caught, "the replica check did not catch a per-replica loss mean"
    return single, mirrored
