import os

import numpy as np

from keras_glimpse.data.elastic_digits import generate, make_dataset

os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")


def test_generate_is_seeded_and_places_digits():
    digits = np.zeros((6, 28, 28), "uint8")
    digits[:, 4:24, 10:18] = 255
    labels = np.arange(6)
    a, la = generate(digits, labels, seed=3, num_clutter=0)
    b, _ = generate(digits, labels, seed=3, num_clutter=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 64, 64, 1) and a.max() <= 1.0
    assert (a.reshape(6, -1).max(1) > 0.9).all()
    np.testing.assert_array_equal(la, labels)


def test_make_dataset_offline():
    ds = make_dataset("test", 8, limit=16)
    x, y = next(iter(ds))
    assert x.shape == (8, 64, 64, 1) and y.shape == (8,)
    x2, _ = next(iter(make_dataset("test", 8, limit=16)))
    np.testing.assert_array_equal(x, x2)  # the test split is fixed by its seed


def test_validation_split_fixed_held_out_with_validation_clutter(monkeypatch):
    import pytest

    from keras_glimpse.data import elastic_digits
    from keras_glimpse.data.mnist import mnist_split

    x_va, y_va = mnist_split("validation", source="embedded")
    calls = []
    gen = elastic_digits.generate
    monkeypatch.setattr(elastic_digits, "generate",
                        lambda digits, *a, **k: calls.append(digits) or gen(digits, *a, **k))
    ds = make_dataset("validation", 128, seed=2, source="embedded")
    a, ya = map(np.concatenate, zip(*ds.as_numpy_iterator()))
    b, _ = map(np.concatenate, zip(*ds.as_numpy_iterator()))
    np.testing.assert_array_equal(a, b)  # fixed: two passes give the same images
    again, _ = map(np.concatenate, zip(*make_dataset(
        "validation", 128, seed=2, source="embedded").as_numpy_iterator()))
    np.testing.assert_array_equal(a, again)  # and so does a second build
    assert len(a) == len(x_va) and a.shape[1:] == (64, 64, 1)
    np.testing.assert_array_equal(ya, y_va)  # unshuffled by default
    # Digits and their clutter are the validation digits only (never test digits).
    np.testing.assert_array_equal(calls[0], x_va)
    test, _ = map(np.concatenate, zip(*make_dataset(
        "test", 128, seed=2, source="embedded", limit=len(x_va)).as_numpy_iterator()))
    assert test.shape == a.shape and not np.array_equal(a, test)
    make_dataset("train", 8, source="embedded", limit=4)
    np.testing.assert_array_equal(calls[-1], mnist_split("train", source="embedded")[0][:4])
    with pytest.raises(ValueError, match="split='bogus'"):
        make_dataset("bogus", 4, source="embedded")
