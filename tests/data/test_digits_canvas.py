import os

import numpy as np
import pytest

from keras_glimpse.data import digits_canvas, load


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "1")


def test_shapes_range_and_fixed_test_split():
    a = next(iter(load("cluttered_digits_canvas", "test", 8, seed=3, limit=16)))
    b = next(iter(load("cluttered_digits_canvas", "test", 8, seed=3, limit=16)))
    c = next(iter(load("cluttered_digits_canvas", "test", 8, seed=4, limit=16)))
    assert a[0].shape == (8, 64, 64, 1) and a[1].dtype.name == "int32"
    assert 0.0 <= float(np.min(a[0])) and float(np.max(a[0])) <= 1.0
    np.testing.assert_array_equal(a[0], b[0])  # the test split is fixed by its seed
    assert not np.array_equal(a[0], c[0])


def test_training_split_changes_every_epoch():
    ds = digits_canvas.make_dataset("train", 8, seed=0, limit=8, shuffle=False)
    first = next(iter(ds))[0].numpy()
    second = next(iter(ds))[0].numpy()
    assert not np.array_equal(first, second)


def test_digit_is_placed_whole_without_clutter():
    (x, _), = [next(iter(digits_canvas.make_dataset("test", 4, limit=4, num_clutter=0)))]
    from keras_glimpse.data.mnist import load_mnist

    (_, _), (digits, _) = load_mnist()
    for i in range(4):
        canvas = x[i, ..., 0].numpy()
        # The canvas holds exactly the digit's ink (28x28 window somewhere).
        np.testing.assert_allclose(canvas.sum(), digits[i].astype(np.float32).sum() / 255.0,
                                   rtol=1e-5)
        rows = np.flatnonzero(canvas.sum(1))
        cols = np.flatnonzero(canvas.sum(0))
        assert rows[-1] - rows[0] < 28 and cols[-1] - cols[0] < 28


def test_invalid_arguments():
    with pytest.raises(ValueError, match="canvas_size=20"):
        digits_canvas.make_dataset("train", 4, canvas_size=20)
    with pytest.raises(ValueError, match="split='val'"):
        digits_canvas.make_dataset("val", 4)
