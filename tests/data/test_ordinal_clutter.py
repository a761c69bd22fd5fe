"""The fixed-size cluttered MNIST of the ordinal localiser."""

import numpy as np
import pytest

from keras_glimpse import data as data_lib
from keras_glimpse.data import ordinal_clutter as oc


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "1")


def _digits(n, seed=0):
    rng = np.random.default_rng(seed)
    d = np.zeros((n, 28, 28), np.uint8)
    d[:, 4:24, 10:18] = rng.integers(1, 256, size=(n, 20, 8))  # a dense stroke block
    return d


def test_digit_placed_and_box_correct():
    digits = _digits(50)
    images, boxes, skipped = oc.generate_ordinal_clutter(digits, _digits(20, 1), seed=3)
    assert images.shape == (50, 84, 84) and images.dtype == np.uint8
    assert skipped == 0
    x1, y1, x2, y2 = boxes.T
    assert (x2 - x1 == 27).all() and (y2 - y1 == 27).all()
    assert (x1 >= 0).all() and (x1 <= 56).all() and (y1 >= 0).all() and (y1 <= 56).all()
    for img, box, dig in zip(images, boxes, digits):
        crop = img[box[1]:box[3] + 1, box[0]:box[2] + 1]
        # every digit stroke survives unchanged (fragments never overwrite it)
        np.testing.assert_array_equal(crop[dig > 0], dig[dig > 0])
    # the clutter adds at most 32 * 36 pixels
    extra = (images > 0).sum((1, 2)) - (digits > 0).sum((1, 2))
    assert (extra > 0).all() and (extra <= 32 * 36).all()


def test_fragments_only_on_empty_targets():
    rng = np.random.default_rng(0)
    canvas = np.full((4, 84, 84), 7, np.uint8)
    canvas[:, 30:36, 50:56] = 0  # the only empty 6x6 target
    before = canvas.copy()
    pool = np.full((3, 28, 28), 200, np.uint8)
    skipped = oc._place_fragments(canvas, pool, rng, num_fragments=3, fragment_size=6,
                                  num_candidates=100000)
    # one fragment per canvas fills the hole, the two later ones find nothing.
    assert skipped == 8
    np.testing.assert_array_equal(canvas[:, 30:36, 50:56], 200)
    mask = np.ones((84, 84), bool)
    mask[30:36, 50:56] = False
    np.testing.assert_array_equal(canvas[:, mask], before[:, mask])


def test_no_fragment_overlaps_existing_pixels():
    digits = _digits(30)
    canvas = np.zeros((30, 84, 84), np.uint8)
    canvas[:, 10:38, 20:48] = digits
    rng = np.random.default_rng(5)
    pool = np.full((2, 28, 28), 255, np.uint8)  # opaque fragments
    prev = canvas.copy()
    for _ in range(32):
        oc._place_fragments(canvas, pool, rng, 1, 6, 16)
        changed = canvas != prev
        assert not (prev[changed] > 0).any()  # written pixels were all empty before
        prev = canvas.copy()


def test_fixed_per_seed_and_cache(tmp_path):
    a = oc.load_ordinal_clutter("test", seed=1, source="embedded", num_examples=12)
    b = oc.load_ordinal_clutter("test", seed=1, source="embedded", num_examples=12)
    c = oc.load_ordinal_clutter("test", seed=2, source="embedded", num_examples=12)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert (a[2] == 4).all()
    path = tmp_path / "cache.npz"
    first = oc.load_ordinal_clutter("test", seed=1, source="embedded", num_examples=12,
                                    cache_path=path)
    assert path.is_file()
    again = oc.load_ordinal_clutter("test", seed=1, source="embedded", num_examples=12,
                                    cache_path=path)
    for x, y, z in zip(a, first, again):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)


def test_make_dataset_through_dispatcher():
    ds = data_lib.load("ordinal_clutter", split="test", batch_size=5, source="embedded",
                       num_examples=7)
    batches = list(ds)
    assert [int(x.shape[0]) for x, _ in batches] == [5, 2]
    images, boxes = batches[0]
    assert images.shape == (5, 84, 84, 1) and boxes.shape == (5, 4)
    np.testing.assert_allclose(float(np.min(images)), -0.1307 / 0.3081, rtol=1e-5)
    raw, raw_boxes, _ = oc.load_ordinal_clutter("test", source="embedded", num_examples=7)
    np.testing.assert_allclose(images[..., 0], (raw[:5] / 255.0 - 0.1307) / 0.3081, atol=1e-5)
    np.testing.assert_array_equal(boxes, raw_boxes[:5])


def test_other_digits_split():
    _, _, labels = oc.load_ordinal_clutter("test", source="embedded", other_digits=True,
                                           num_examples=200)
    assert 4 not in set(labels.tolist()) and len(set(labels.tolist())) > 5


def test_validation():
    with pytest.raises(ValueError, match="split"):
        oc.load_ordinal_clutter("valid")
    with pytest.raises(ValueError, match="digit=12"):
        oc.load_ordinal_clutter("train", digit=12)


def test_validation_split_fixed_held_out_with_validation_clutter(monkeypatch):
    from keras_glimpse.data.mnist import mnist_split

    x_va, y_va = mnist_split("validation", source="embedded")
    pools = []
    gen = oc.generate_ordinal_clutter
    monkeypatch.setattr(oc, "generate_ordinal_clutter",
                        lambda digits, pool, **k: pools.append(pool) or gen(digits, pool, **k))
    a = oc.load_ordinal_clutter("validation", seed=1, source="embedded")
    b = oc.load_ordinal_clutter("validation", seed=1, source="embedded")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert len(a[0]) == int((y_va == 4).sum()) > 0 and (a[2] == 4).all()
    # Fragments are cut from validation digits only (never test digits).
    np.testing.assert_array_equal(pools[0], x_va)
    test = oc.load_ordinal_clutter("test", seed=1, source="embedded", num_examples=len(a[0]))
    assert test[0].shape == a[0].shape and not np.array_equal(a[0], test[0])
    # Through the dispatcher: fixed, unshuffled, nothing dropped.
    ds = data_lib.load("ordinal_clutter", split="validation", batch_size=8, seed=1,
                       source="embedded")
    first = np.concatenate([np.asarray(bx) for _, bx in ds])
    second = np.concatenate([np.asarray(bx) for _, bx in ds])
    np.testing.assert_array_equal(first, a[1])
    np.testing.assert_array_equal(second, a[1])
    with pytest.raises(ValueError, match="split='bogus'"):
        oc.load_ordinal_clutter("bogus", source="embedded")
    with pytest.raises(ValueError, match="split='bogus'"):
        oc.make_dataset("bogus", 4, source="embedded")


def test_train_and_test_keep_their_generation_seeds():
    from keras_glimpse.data.mnist import mnist_split

    # Test: exactly what it was before the validation split (seed id 1, test pool).
    x_te, y_te = mnist_split("test", source="embedded")
    images, boxes, _ = oc.load_ordinal_clutter("test", seed=3, source="embedded",
                                               num_examples=10)
    ref, ref_boxes, _ = oc.generate_ordinal_clutter(x_te[y_te == 4][:10], x_te,
                                                    seed=[3, 1, 4, 0])
    np.testing.assert_array_equal(images, ref)
    np.testing.assert_array_equal(boxes, ref_boxes)
    # Train: seed id 0, digits and clutter from the training digits without validation.
    x_tr, y_tr = mnist_split("train", source="embedded")
    _, _, labels = oc.load_ordinal_clutter("train", seed=3, source="embedded")
    assert len(labels) == int((y_tr == 4).sum())
    images, _, _ = oc.load_ordinal_clutter("train", seed=3, source="embedded",
                                           num_examples=10)
    ref, _, _ = oc.generate_ordinal_clutter(x_tr[y_tr == 4][:10], x_tr, seed=[3, 0, 4, 0])
    np.testing.assert_array_equal(images, ref)


def test_cache_is_keyed_by_split(tmp_path, caplog):
    kw = dict(seed=1, source="embedded", num_examples=6)
    ds = oc.make_dataset("validation", 6, cache_path=tmp_path, **kw)
    assert (tmp_path / "ordinal_clutter_validation_s1_d4_only.npz").is_file()
    oc.make_dataset("test", 6, cache_path=tmp_path, **kw)
    assert (tmp_path / "ordinal_clutter_test_s1_d4_only.npz").is_file()
    cached = np.concatenate([np.asarray(x) for x, _ in oc.make_dataset(
        "validation", 6, cache_path=tmp_path, **kw)])
    np.testing.assert_array_equal(cached, np.concatenate([np.asarray(x) for x, _ in ds]))
    # One explicit file is one split: reading it for another split is an error.
    path = tmp_path / "one.npz"
    oc.load_ordinal_clutter("validation", cache_path=path, **kw)
    with pytest.raises(ValueError, match="'validation' split; received split='test'"):
        oc.load_ordinal_clutter("test", cache_path=path, **kw)
    # A training file written before files recorded their split still holds the
    # validation digits: it is regenerated; an old test file is still valid.
    stale = tmp_path / "stale_train.npz"
    np.savez_compressed(stale, images=np.zeros((1, 84, 84), np.uint8),
                        boxes=np.zeros((1, 4), np.int32), labels=np.zeros(1, np.uint8))
    with caplog.at_level("INFO", logger="keras_glimpse"):
        fresh = oc.load_ordinal_clutter("train", cache_path=stale, **kw)
    assert "regenerating" in caplog.text and len(fresh[0]) == 6
    np.testing.assert_array_equal(oc.load_ordinal_clutter("train", cache_path=stale, **kw)[0],
                                  fresh[0])
    old_test = tmp_path / "old_test.npz"
    want = oc.load_ordinal_clutter("test", **kw)
    np.savez_compressed(old_test, images=want[0], boxes=want[1], labels=want[2])
    np.testing.assert_array_equal(oc.load_ordinal_clutter("test", cache_path=old_test, **kw)[0],
                                  want[0])
