import numpy as np
import tensorflow as tf

import os

import pytest

from apps import export
from apps import flags as app_flags
from keras_glimpse import training
from keras_glimpse.export import load_exported


def test_export_app_writes_servable_savedmodel(toy, trained_dir, tmp_path, capsys):
    model_dir, _ = trained_dir
    dest = tmp_path / "exported"
    assert _export([f"--model_dir={model_dir}", f"--export_dir={dest}", "--num_samples=3",
                    "--checkpoint=last"]) == 0
    assert "exported to" in capsys.readouterr().out
    assert oct(dest.stat().st_mode & 0o777) == oct(0o777 & ~_umask())  # not mkdtemp's 0700
    loaded = load_exported(dest)
    images = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    model, _ = training.restore_model(model_dir, checkpoint="last")
    served = loaded.signatures["serve"](images=tf.constant(images))
    np.testing.assert_allclose(served["predictions"], model(images), atol=1e-5)
    assert loaded.signatures["sample"](images=tf.constant(images))["locations"].shape == (
        3, 2, 2, 2)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _export(args):
    app_flags.FLAGS(["export", *args])
    try:
        return export.main([])
    finally:
        app_flags.FLAGS.unparse_flags()


def _tree(path):
    return sorted((str(p.relative_to(path)), p.stat().st_size) for p in path.rglob("*")
                  if p.is_file())


def test_export_never_destroys_a_model_dir_or_other_files(toy, trained_dir, tmp_path):
    model_dir, _ = trained_dir
    before = _tree(model_dir)
    # Into the model_dir itself, or a folder holding it: refused, with --overwrite too.
    for dest, extra in [(model_dir, []), (model_dir, ["--overwrite"]),
                        (model_dir.parent, ["--overwrite"])]:
        with pytest.raises(FileExistsError, match="training run"):
            _export([f"--model_dir={model_dir}", f"--export_dir={dest}", *extra])
    assert _tree(model_dir) == before
    # A folder with other contents, and a file: refused and untouched.
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.png").write_bytes(b"not an export")
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    for dest in (other, afile):
        with pytest.raises(FileExistsError):
            _export([f"--model_dir={model_dir}", f"--export_dir={dest}", "--overwrite"])
    assert (other / "cat.png").read_bytes() == b"not an export"
    assert afile.read_text() == "keep me"


def test_refused_destination_is_one_error_line_from_the_app(toy, trained_dir, tmp_path,
                                                            capsys, monkeypatch):
    # What a user sees: `ERROR: ...` and exit status 2, not a FileExistsError traceback.
    from apps import quiet

    monkeypatch.delenv("KERAS_GLIMPSE_TRACEBACK", raising=False)
    model_dir, _ = trained_dir
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    app_flags.FLAGS(["export", f"--model_dir={model_dir}", f"--export_dir={afile}"])
    try:
        assert quiet.wrap(export.main)([]) == 2
    finally:
        app_flags.FLAGS.unparse_flags()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ERROR: Export destination") and "notes.txt" in err[0]
    assert afile.read_text() == "keep me"


def test_replacing_an_export_needs_overwrite(toy, trained_dir, tmp_path):
    model_dir, _ = trained_dir
    dest = tmp_path / "e"
    assert _export([f"--model_dir={model_dir}", f"--export_dir={dest}"]) == 0
    with pytest.raises(FileExistsError, match="--overwrite"):
        _export([f"--model_dir={model_dir}", f"--export_dir={dest}"])
    assert _export([f"--model_dir={model_dir}", f"--export_dir={dest}", "--overwrite"]) == 0
    assert (dest / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]  # no leftovers


def test_export_app_refuses_a_mistyped_model_dir(toy, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model_dir"):
        _export(["--model=toy_mnist", f"--model_dir={tmp_path / 'typo'}",
                 f"--export_dir={tmp_path / 'e'}"])
    assert not (tmp_path / "e").exists()
