"""Keras' own conventions: `model.export`, its TFLite path, and a clear error
under a non-TensorFlow Keras backend."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_glimpse
from keras_glimpse.export import export_saved_model, load_exported

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ram_export(tmp_path_factory):
    model = keras_glimpse.build("ram_mnist28", seed=3)
    root = tmp_path_factory.mktemp("keras_export")
    path = model.export(str(root / "via_model_export"), num_samples=4)
    return model, path, root


def test_model_export_gives_the_serve_and_sample_endpoints(ram_export):
    model, path, root = ram_export
    loaded = load_exported(path)
    assert {"serve", "sample", "serving_default"} <= set(loaded.signatures)
    x = tf.random.stateless_uniform((5, 28, 28, 1), seed=(1, 2))
    served = loaded.signatures["serve"](images=x)
    assert served["predictions"].shape == (5, 10) and served["locations"].shape == (5, 6, 2)
    np.testing.assert_allclose(served["predictions"], model(x), rtol=1e-5, atol=1e-5)
    sampled = loaded.signatures["sample"](images=x)
    assert sampled["locations"].shape == (4, 5, 6, 2)  # M rollouts stacked first
    # The library's exporter writes the same endpoints (one path).
    other = load_exported(export_saved_model(model, root / "via_library", num_samples=4))
    np.testing.assert_allclose(other.signatures["serve"](images=x)["predictions"],
                               served["predictions"], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="input_signature"):
        model.export(str(root / "bad"), input_signature=[tf.TensorSpec((None, 28, 28, 1))])


def test_exported_ram_converts_to_tflite_with_the_same_prediction(ram_export):
    model, path, _ = ram_export
    converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=["serve"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    flat = converter.convert()
    runner = tf.lite.Interpreter(model_content=flat).get_signature_runner("serve")
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    out = runner(images=x)
    ref = load_exported(path).signatures["serve"](images=tf.constant(x))
    np.testing.assert_allclose(out["predictions"], ref["predictions"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["locations"], ref["locations"], atol=1e-5)


def _import_with(env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(env_extra, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", "import keras_glimpse"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_non_tensorflow_backend_fails_at_import_with_one_clear_line(backend, tmp_path):
    out = _import_with({"KERAS_BACKEND": backend}, tmp_path)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("keras_glimpse.BackendError:") and f"'{backend}'" in last
    assert "KERAS_BACKEND=tensorflow" in last


def test_the_backend_from_keras_json_is_checked_too(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    out = _import_with({"KERAS_HOME": str(tmp_path)}, tmp_path)
    assert out.returncode != 0 and "'jax'" in out.stderr.strip().splitlines()[-1]
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))
    assert _import_with({"KERAS_HOME": str(tmp_path)}, tmp_path).returncode == 0


def test_a_keras_file_loads_with_only_import_keras_glimpse(ram_export, tmp_path):
    model, _, _ = ram_export
    path = tmp_path / "ram.keras"
    model.save(str(path))
    code = ("import keras, keras_glimpse, numpy as np; "
            f"m = keras.saving.load_model({str(path)!r}); "
            "print(type(m).__name__, m(np.zeros((1, 28, 28, 1), 'float32')).shape)")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["RAM", "(1,", "10)"]
