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
  by zeros and `keras.random.uniform` by its mid-range value, so that policies
  draw identical actions per example regardless of how a batch is split.
- `assert_replica_equivalence(build_fn, x, y)`: one `fit` step on one device
  equals one step under MirroredStrategy on 2 logical CPUs (DESIGN rule 2).
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
    for k, v in expected.items():
        np.testing.assert_allclose(np.asarray(served[k]), np.asarray(v), atol=atol, rtol=1e-4)
    b = images.shape[0]
    assert sampled["predictions"].shape[0] == b
    for k in model.trajectory_keys:
        assert sampled[k].shape[:2] == (num_samples, b), (k, sampled[k].shape)
    return served, sampled


@contextlib.contextmanager
def deterministic_sampling():
    """Makes keras.random.normal/uniform return per-element constants."""
    real_uniform = keras.random.uniform

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return keras.ops.full(shape, mean, dtype=dtype or "float32")

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return keras.ops.full(shape, 0.5 * (minval + maxval) - 0.13 * (maxval - minval),
                              dtype=dtype or "float32")

    with mock.patch.object(keras.random, "normal", normal), \
            mock.patch.object(keras.random, "uniform", uniform):
        yield real_uniform


def two_cpu_strategy():
    cpus = tf.config.list_logical_devices("CPU")
    assert len(cpus) >= 2, "conftest.py must configure 2 logical CPUs"
    # Every MirroredStrategy numbers its collectives from the same keys, and TF
    # caches them per process: a later all-reduce of another shape would abort
    # with "Shape mismatch in the collective instance". TF's own tests bump the
    # base the same way.
    tf.distribute.MirroredStrategy._collective_key_base += 10_000
    return tf.distribute.MirroredStrategy([cpus[0].name, cpus[1].name])


def assert_replica_equivalence(build_fn, x, y=None, steps=1, atol=1e-5, rtol=1e-4,
                               fit_kwargs=None):
    """One (or `steps`) fit step(s) on 1 device == on 2 mirrored logical CPUs.

    Args:
        build_fn: returns a built and compiled model (called once per strategy,
            inside the strategy scope).
        x, y: one global batch (the batch size must be even).
    """
    fit_kwargs = fit_kwargs or {}
    data = (x,) if y is None else (x, y)
    ds = tf.data.Dataset.from_tensors(data).repeat(steps)
    with deterministic_sampling():
        single = build_fn()
        initial = single.get_weights()
        single.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, **fit_kwargs)
        strategy = two_cpu_strategy()
        with strategy.scope():
            mirrored = build_fn()
            mirrored.set_weights(initial)
        mirrored.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, **fit_kwargs)
    changed = 0
    for a, b, w0 in zip(single.get_weights(), mirrored.get_weights(), initial):
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol)
        changed += int(not np.allclose(a, w0))
    assert changed > 0, "no weight changed: the train_step did not update anything"
    return single, mirrored
