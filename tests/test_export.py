import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse import export as export_lib
from toy_model import ToyGlimpseModel

# Makes `import keras` / `import tensorflow_probability` fail in a subprocess.
BLOCKER = textwrap.dedent("""
    import importlib.machinery
    import sys

    BLOCKED = ("keras", "tensorflow_probability", "tf_keras")

    class _PathFinderWithoutKeras(importlib.machinery.PathFinder):
        # Behaves as if keras / TFP were not installed (find_spec -> None).
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return None
            return importlib.machinery.PathFinder.find_spec(name, path, target)

    sys.meta_path[:] = [_PathFinderWithoutKeras if f is importlib.machinery.PathFinder else f
                        for f in sys.meta_path]
    """)

SERVE = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    try:
        import keras  # noqa: F401
        raise SystemExit("keras importable: the blocker did not work")
    except ImportError:
        pass
    path, out = sys.argv[1], sys.argv[2]
    images = np.load(out + "/images.npy")
    loaded = tf.saved_model.load(path)
    served = loaded.signatures["serve"](images=tf.constant(images))
    sampled = loaded.signatures["sample"](images=tf.constant(images))
    assert not any(m.split(".")[0] in ("keras", "tensorflow_probability", "tf_keras")
                   for m in sys.modules), "keras/TFP got imported"
    np.savez(out + "/served.npz", **{k: v.numpy() for k, v in served.items()})
    np.savez(out + "/sampled.npz", **{k: v.numpy() for k, v in sampled.items()})
    """)


def _toy(**kwargs):
    model = ToyGlimpseModel(image_shape=(8, 8, 1), **kwargs)
    model.build_from_image_shape()
    return model


def _images(n=3, shape=(8, 8, 1)):
    return np.random.default_rng(0).uniform(size=(n,) + shape).astype("float32")


def test_export_roundtrip_serve_and_sample():
    model = _toy()
    served, sampled = helpers.assert_export_roundtrip(model, _images(), num_samples=4)
    assert served["locations"].shape == (3, 2, 2)
    assert sampled["locations"].shape == (4, 3, 2, 2)
    # Sampled trajectories are stochastic: the M rollouts differ after the first glimpse.
    locs = np.asarray(sampled["locations"])
    assert not np.allclose(locs[0, :, 1], locs[1, :, 1])
    # Mean of log-probabilities: a (sub-normalised) geometric mean of the M rollouts.
    total = np.exp(np.asarray(sampled["predictions"])).sum(-1)
    assert np.all(total <= 1.0 + 1e-5) and np.all(total > 0.5), total


def test_export_reloads_without_keras_or_tfp(tmp_path):
    model = _toy()
    images = _images()
    expected = {k: np.asarray(v) for k, v in model.export_outputs(images).items()}
    path = export_lib.export_saved_model(model, tmp_path / "export", num_samples=2)
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCKER)
    np.save(tmp_path / "images.npy", images)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "block"), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", SERVE, path, str(tmp_path)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(tmp_path / "served.npz")
    for k, v in expected.items():
        np.testing.assert_allclose(served[k], v, atol=1e-5)
    assert np.load(tmp_path / "sampled.npz")["locations"].shape == (2, 3, 2, 2)


def test_failed_export_keeps_existing_export(tmp_path, monkeypatch):
    model = _toy()
    path = pathlib.Path(export_lib.export_saved_model(model, tmp_path / "export"))
    before = sorted(p.relative_to(path) for p in path.rglob("*"))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_lib.tf.saved_model, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_lib.export_saved_model(model, path, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary leftovers
    served = export_lib.load_exported(path).signatures["serve"](images=tf.constant(_images()))
    assert served["predictions"].shape == (3, 10)


def test_overwrite_replaces_and_refuses_when_asked(tmp_path):
    path = export_lib.export_saved_model(_toy(seed=1), tmp_path / "e")
    model = _toy(seed=2, units=8)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_lib.export_saved_model(model, path)
    export_lib.export_saved_model(model, path, overwrite=True)
    served = export_lib.load_exported(path).signatures["serve"](images=tf.constant(_images()))
    np.testing.assert_allclose(served["predictions"], model(_images()), atol=1e-5)


def test_failed_second_rename_restores_the_earlier_export(tmp_path, monkeypatch):
    path = pathlib.Path(export_lib.export_saved_model(_toy(seed=1), tmp_path / "e"))
    before = _tree(path)
    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new export into place
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(export_lib.os, "replace", flaky)
    with pytest.raises(OSError, match="rename failed"):
        export_lib.export_saved_model(_toy(seed=2), path, overwrite=True)
    monkeypatch.undo()
    assert _tree(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["e"]  # nothing hidden left behind


def _tree(path):
    return sorted((str(p.relative_to(path)), p.read_bytes()) for p in path.rglob("*")
                  if p.is_file())


def test_export_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="num_samples=0"):
        export_lib.export_saved_model(_toy(), tmp_path / "e", num_samples=0)
    with pytest.raises(TypeError, match="export_outputs"):
        export_lib.export_saved_model(tf.keras.layers.Dense(1) if False else object(), tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="No SavedModel"):
        export_lib.load_exported(tmp_path / "missing")


@pytest.mark.parametrize("shape, what", [
    ((8, 8, 1), "rank 3"),
    ((2, 8, 8, 3), "channels 3 != 1"),
    ((2, 9, 8, 1), "height 9 != 8"),
])
def test_wrong_image_batch_is_a_clear_error(shape, what):
    model = _toy()
    with pytest.raises(ValueError, match=what):
        model(np.zeros(shape, "float32"))


def test_config_and_keras_roundtrip():
    model = _toy(units=8, seed=3)
    config = model.get_config()
    assert json.loads(json.dumps(config)) == config
    helpers.assert_keras_roundtrip(model, _images())


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_images_are_refused_by_the_model_and_the_savedmodel(tmp_path, value):
    model = _toy()
    bad = _images()
    bad[1, 2, 3, 0] = value
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(bad)
    model.predict(_images(), verbose=0)  # finite images still work
    loaded = export_lib.load_exported(export_lib.export_saved_model(model, tmp_path / "e"))
    for endpoint in ("serve", "sample"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
            loaded.signatures[endpoint](images=tf.constant(bad))
    assert np.all(np.isfinite(loaded.signatures["serve"](images=tf.constant(_images()))[
        "predictions"]))
