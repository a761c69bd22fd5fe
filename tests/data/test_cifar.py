"""CIFAR loader: local copies (npz and python pickles) and the offline error."""

import pickle

import numpy as np
import pytest

from keras_glimpse.data import cifar


def _write_python_copy(root, n=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": list(range(n))}, f)
    return folder


def test_python_pickle_copy(tmp_path):
    folder = _write_python_copy(tmp_path)
    (xtr, ytr), (xte, yte) = cifar.load_cifar(10, data_dir=str(tmp_path))
    assert xtr.shape == (30, 32, 32, 3) and xte.shape == (6, 32, 32, 3)
    raw = pickle.load(open(folder / "test_batch", "rb"))[b"data"][0]
    # channel-first rows of 1024 -> HWC: pixel (0, 0) is (R, G, B) = raw[0], raw[1024], raw[2048]
    np.testing.assert_array_equal(xte[0, 0, 0], [raw[0], raw[1024], raw[2048]])
    ds = cifar.make_dataset("train", 4, data_dir=str(tmp_path))
    x, y = next(iter(ds))
    assert x.shape == (4, 32, 32, 3) and x.dtype.name == "float32" and y.dtype.name == "int32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    # the test split is in order and complete
    ys = np.concatenate([y for _, y in cifar.make_dataset("test", 4, data_dir=str(folder))])
    np.testing.assert_array_equal(ys, np.arange(6))


def test_npz_copy(tmp_path):
    x = np.zeros((3, 32, 32, 3), np.uint8)
    np.savez(tmp_path / "cifar10.npz", x_train=x, y_train=np.array([[1], [2], [3]]),
             x_test=x[:2], y_test=np.array([[4], [5]]))
    _, y = next(iter(cifar.make_dataset("test", 2, data_dir=str(tmp_path))))
    assert y.numpy().tolist() == [4, 5]


def test_missing_copy_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        cifar.load_cifar(10, data_dir=str(tmp_path))
    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="offline"):
        cifar.make_dataset("train", 4)
    with pytest.raises(ValueError, match="num_classes=7"):
        cifar.load_cifar(7)
