import numpy as np
import tensorflow as tf

from apps import export
from apps import flags as app_flags
from keras_glimpse import training
from keras_glimpse.export import load_exported


def test_export_app_writes_servable_savedmodel(toy, trained_dir, tmp_path, capsys):
    model_dir, _ = trained_dir
    dest = tmp_path / "exported"
    dest.mkdir()
    (dest / "stale.txt").write_text("old export")  # an existing path is replaced atomically
    app_flags.FLAGS(["export", f"--model_dir={model_dir}", f"--export_dir={dest}",
                     "--num_samples=3", "--checkpoint=last"])
    try:
        assert export.main([]) == 0
    finally:
        app_flags.FLAGS.unparse_flags()
    assert "exported to" in capsys.readouterr().out
    assert not (dest / "stale.txt").exists()
    loaded = load_exported(dest)
    images = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    model, _ = training.restore_model(model_dir, checkpoint="last")
    served = loaded.signatures["serve"](images=tf.constant(images))
    np.testing.assert_allclose(served["predictions"], model(images), atol=1e-5)
    assert loaded.signatures["sample"](images=tf.constant(images))["locations"].shape == (
        3, 2, 2, 2)
