"""Fixed-size cluttered MNIST of the ordinal-embedding localiser (spec §1.2).

Each example is an 84x84 canvas holding one 28x28 digit whose top-left corner
is a uniform integer in `[0, 56]^2`, plus 32 fragments of 6x6 cut from random
digits of the same split (any class; validation clutter comes from validation
digits, never from test digits; crop origin uniform in `[0, 22]^2`).
A fragment is only written where its 6x6 target is entirely zero (on no
digit stroke and no earlier fragment), so it may land inside the digit's box
where that part of the box is blank. The reference re-draws the target until
it is empty; here each fragment draws `num_candidates` target positions at
once (vectorised over the images) and takes the first empty one. With 16
candidates a fragment finds no empty target with probability < 1e-9 per
image; it is then skipped (`generate_ordinal_clutter` reports the count).

The dataset is generated once per `(seed, split, digit, other_digits)` with a
NumPy generator, so train, validation and test are fixed, and can be cached to
an `.npz` (`cache_path`; the file records its split). The target is the
ground-truth box `(x1, y1, x2, y2)` with inclusive corners `[x, y, x + 27,
y + 27]`. Images are normalised as the
reference, `(x / 255 - 0.1307) / 0.3081`.

Digits come from `keras_glimpse.data.mnist.mnist_split` (full MNIST when a
local copy exists, else the 5,000 embedded digits: 400 training and 100 test
images per class, against 5,842 / 982 fours in full MNIST); `"train"` is the
training file minus the held-out `"validation"` digits (a fixed 1/12).
"""

import logging
import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_glimpse.data import pipeline

logger = logging.getLogger("keras_glimpse")

SPLITS = ("train", "validation", "test")
# Generation seed id of each split. Train and test keep the ids they had
# before the validation split existed, so the test data is unchanged (train
# now lacks the held-out validation digits, so its canvases differ).
_SPLIT_IDS = {"train": 0, "test": 1, "validation": 2}
IMAGE_SIZE = 84
DIGIT_SIZE = 28
MEAN = 0.1307
STD = 0.3081


def _place_fragments(canvas, pool, rng, num_fragments, fragment_size, num_candidates):
    """Writes fragments into `canvas` (N, S, S) uint8 in place; returns skipped count."""
    n, size, _ = canvas.shape
    f = fragment_size
    max_origin = pool.shape[1] - f  # crop origin in [0, 22]
    max_target = size - f  # target origin in [0, 78]
    rows = np.arange(n)[:, None, None]
    offs = np.arange(f)
    skipped = 0
    for _ in range(num_fragments):
        src = rng.integers(0, len(pool), size=n)
        oy, ox = rng.integers(0, max_origin + 1, size=(2, n))
        frag = pool[src[:, None, None], oy[:, None, None] + offs[None, :, None],
                    ox[:, None, None] + offs[None, None, :]]  # (N, f, f)
        ty, tx = rng.integers(0, max_target + 1, size=(2, n, num_candidates))
        # occupancy of every candidate target: (N, C, f, f)
        region = canvas[np.arange(n)[:, None, None, None],
                        ty[..., None, None] + offs[None, None, :, None],
                        tx[..., None, None] + offs[None, None, None, :]]
        empty = ~region.reshape(n, num_candidates, -1).any(axis=-1)
        found = empty.any(axis=1)
        pick = np.argmax(empty, axis=1)
        y0 = ty[np.arange(n), pick]
        x0 = tx[np.arange(n), pick]
        yy = y0[:, None, None] + offs[None, :, None]
        xx = x0[:, None, None] + offs[None, None, :]
        current = canvas[rows, yy, xx]
        canvas[rows, yy, xx] = np.where(found[:, None, None], frag, current)
        skipped += int((~found).sum())
    return skipped


def generate_ordinal_clutter(digits, pool, seed=0, image_size=IMAGE_SIZE, num_fragments=32,
                             fragment_size=6, num_candidates=16, chunk_size=2048):
    """Generates cluttered canvases for `digits` (vectorised over images).

    Args:
        digits: `(N, 28, 28)` uint8 digits to place (one per canvas).
        pool: `(M, 28, 28)` uint8 digits the fragments are cut from.
        seed: int or sequence of ints for `np.random.default_rng`.
        image_size: canvas side (84).
        num_fragments: fragments per canvas (32).
        fragment_size: fragment side (6).
        num_candidates: target positions tried per fragment and image.
        chunk_size: images generated together (bounds memory).

    Returns:
        `(images (N, S, S) uint8, boxes (N, 4) int32, skipped)`, boxes
        `(x1, y1, x2, y2)` inclusive; `skipped` counts fragments that found no
        empty target.
    """
    digits = np.asarray(digits, np.uint8)
    pool = np.asarray(pool, np.uint8)
    n, d = len(digits), digits.shape[1]
    if image_size < d:
        raise ValueError(f"`image_size` must be >= {d}; received image_size={image_size}.")
    rng = np.random.default_rng(seed)
    images = np.zeros((n, image_size, image_size), np.uint8)
    corners = rng.integers(0, image_size - d + 1, size=(n, 2))  # (x, y)
    offs = np.arange(d)
    skipped = 0
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        canvas = images[sl]
        m = len(canvas)
        x, y = corners[sl, 0], corners[sl, 1]
        canvas[np.arange(m)[:, None, None], y[:, None, None] + offs[None, :, None],
               x[:, None, None] + offs[None, None, :]] = digits[sl]
        skipped += _place_fragments(canvas, pool, rng, num_fragments, fragment_size,
                                    num_candidates)
    boxes = np.concatenate([corners, corners + d - 1], axis=1).astype(np.int32)
    return images, boxes, skipped


def load_ordinal_clutter(split="train", seed=0, data_dir=None, digit=4, other_digits=False,
                         source=None, num_examples=None, cache_path=None, **generate_kwargs):
    """The fixed (per seed) cluttered split as NumPy arrays.

    Args:
        split: `"train"`, `"validation"` or `"test"` (see
            `keras_glimpse.data.mnist.mnist_split`).
        seed: generation seed.
        data_dir: folder with `mnist.npz` (see `keras_glimpse.data.mnist`).
        digit: the digit class to localise (0..9).
        other_digits: use every class except `digit` instead (generalisation
            test; normally with `split="test"`).
        source: forces a `load_mnist` source (e.g. `"embedded"`).
        num_examples: optional cap on the number of digits.
        cache_path: optional `.npz` path; loaded when it exists, else written.
            The file records its split: one written for another split is an
            error, and a training file written before the validation split
            existed (it still holds the validation digits) is regenerated.
        **generate_kwargs: passed to `generate_ordinal_clutter`.

    Returns:
        `(images (N, 84, 84) uint8, boxes (N, 4) int32, labels (N,) uint8)`.
    """
    from keras_glimpse.data.mnist import check_split, mnist_split

    check_split(split)
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ValueError(f"`digit` must be an integer in [0, 9]; received digit={digit!r}.")
    if cache_path is not None and pathlib.Path(cache_path).is_file():
        cached = _read_cache(cache_path, split)
        if cached is not None:
            return cached
    x, y = mnist_split(split, data_dir=data_dir, source=source)
    keep = (y != digit) if other_digits else (y == digit)
    digits, labels = x[keep], y[keep]
    if num_examples is not None:
        digits, labels = digits[:int(num_examples)], labels[:int(num_examples)]
    # Fragments come from every digit of the split (validation clutter from
    # validation digits only).
    images, boxes, skipped = generate_ordinal_clutter(
        digits, x, seed=[int(seed), _SPLIT_IDS[split], int(digit), int(bool(other_digits))],
        **generate_kwargs)
    if skipped:
        logger.info("ordinal_clutter: %d fragment(s) found no empty target.", skipped)
    labels = labels.astype(np.uint8)
    if cache_path is not None:
        path = pathlib.Path(cache_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, images=images, boxes=boxes, labels=labels, split=np.str_(split))
        os.replace(tmp, path)
    return images, boxes, labels


def _read_cache(path, split):
    """The cached `(images, boxes, labels)` of `split`, or None when stale."""
    with np.load(path, allow_pickle=False) as f:
        cached_split = str(f["split"]) if "split" in f.files else None
        arrays = f["images"], f["boxes"], f["labels"]
    if cached_split is None and split == "test":
        return arrays  # written before files recorded their split; test is unchanged
    if cached_split is None:
        logger.info("ordinal_clutter: regenerating '%s', written before the %s split "
                    "excluded the validation digits.", path, split)
        return None
    if cached_split != split:
        raise ValueError(
            f"`cache_path` '{path}' holds the {cached_split!r} split; received split={split!r}. "
            "Use one cache file per split (or pass a folder).")
    return arrays


def normalize(images):
    """`(x / 255 - 0.1307) / 0.3081` as float32 with a channel axis."""
    x = tf.cast(images, tf.float32) / 255.0
    return ((x - MEAN) / STD)[..., None]


def make_dataset(split, batch_size, seed=0, data_dir=None, digit=4, other_digits=False,
                 source=None, num_examples=None, cache_path=None, shuffle=None,
                 drop_remainder=None, name=None, **generate_kwargs):
    """Batched `tf.data.Dataset` of `(images (B, 84, 84, 1) float32, boxes (B, 4) float32)`.

    Args:
        split: `"train"` (shuffled every epoch), `"validation"` or `"test"`
            (fixed, unshuffled by default; see `load_ordinal_clutter`).
        batch_size: batch size.
        seed: seed of the (fixed) generation and of the shuffling.
        data_dir: optional folder holding `mnist.npz`.
        digit: the digit class (4 in the paper setting).
        other_digits: every class except `digit` (the generalisation test).
        source: forces a `load_mnist` source.
        num_examples: optional cap on the number of digits (tests, demos).
        cache_path: optional `.npz` cache of the generated split. A folder
            (existing, or a path without suffix) gets one file per
            `(split, seed, digit, other_digits)`, the split named in the file
            name (`ordinal_clutter_validation_s0_d4_only.npz`).
        shuffle: shuffle each epoch; defaults to True for `"train"`.
        drop_remainder: defaults to True for `"train"`, False for
            `"validation"` and `"test"`.
        name: ignored (the dispatcher's dataset name).
        **generate_kwargs: `num_fragments`, `fragment_size`, `num_candidates`.

    Returns:
        A `tf.data.Dataset`; boxes are `(x1, y1, x2, y2)` inclusive pixels.

    Example:
    >>> ds = make_dataset("test", 8, source="embedded", num_examples=8)
    >>> images, boxes = next(iter(ds))  # (8, 84, 84, 1), (8, 4)
    """
    del name
    from keras_glimpse.data.mnist import check_split

    check_split(split)
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    if cache_path is not None:
        path = pathlib.Path(cache_path)
        if path.is_dir() or path.suffix == "":
            tag = "other" if other_digits else "only"
            path = path / f"ordinal_clutter_{split}_s{seed}_d{digit}_{tag}.npz"
        cache_path = str(path)
    images, boxes, _ = load_ordinal_clutter(
        split, seed=seed, data_dir=data_dir, digit=digit, other_digits=other_digits,
        source=source, num_examples=num_examples, cache_path=cache_path, **generate_kwargs)
    return pipeline.batched((images, boxes.astype(np.float32)), split, batch_size, seed,
                            shuffle=shuffle, drop_remainder=drop_remainder,
                            batch_map_fn=lambda x, b: (normalize(x), b))
