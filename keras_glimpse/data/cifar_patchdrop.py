"""CIFAR-10/100 with PatchDrop's preprocessing (spec A2).

Images come from `keras_glimpse.data.cifar.load_cifar` (a local copy or
`keras.datasets`). Training: random 32x32 crop of the image zero-padded by
4 pixels (black, before normalisation, as torchvision's RandomCrop on the
PIL image), then a random horizontal flip. Both splits are normalised with
mean (125.3, 123.0, 113.9)/255 and std (63.0, 62.1, 66.7)/255, so a
dropped (zeroed) patch is the dataset mean colour.
"""

import numpy as np
import tensorflow as tf

from keras_glimpse.data.cifar import load_cifar

MEAN = np.array([125.3, 123.0, 113.9], np.float32) / 255.0
STD = np.array([63.0, 62.1, 66.7], np.float32) / 255.0


def random_crop_flip(image, seed):
    """Random crop with 4-px zero padding + horizontal flip; `image` uint8/float (32, 32, 3)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.stateless_random_crop(padded, tf.shape(image), seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seeds[1])


def normalize_cifar(image):
    """uint8 `(..., 3)` -> float32 `(x / 255 - mean) / std`."""
    return (tf.cast(image, tf.float32) / 255.0 - MEAN) / STD


def make_dataset(split, batch_size, seed=0, data_dir=None, dataset="cifar10", augment=True,
                 normalize="patchdrop", shuffle=None, drop_remainder=False, num_examples=None):
    """Batched `(images (B, 32, 32, 3) float32 normalised, labels (B,) int32)`.

    Args:
        split: `"train"` or `"test"`.
        batch_size: batch size.
        seed: shuffle and augmentation seed (fresh augmentation every epoch).
        data_dir: folder with a local CIFAR copy (see `keras_glimpse.data.cifar`).
        dataset: `"cifar10"` or `"cifar100"`.
        augment: random crop + flip on the training split.
        normalize: `"patchdrop"` (or True) applies the spec's mean/std;
            `"none"` (or False) keeps [0, 1] pixels.
        shuffle: default: training split.
        drop_remainder: drop the last partial batch.
        num_examples: optional cap on the number of examples.
    """
    if dataset not in ("cifar10", "cifar100"):
        raise ValueError(f"`dataset` must be 'cifar10' or 'cifar100'; received dataset={dataset!r}.")
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'; received split={split!r}.")
    if normalize not in (True, False, "patchdrop", "none", None):
        raise ValueError(f"`normalize` must be 'patchdrop' or 'none'; received normalize={normalize!r}.")
    do_norm = normalize in (True, "patchdrop")
    (x_train, y_train), (x_test, y_test) = load_cifar(10 if dataset == "cifar10" else 100,
                                                      data_dir)
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    if num_examples is not None:
        x, y = x[: int(num_examples)], y[: int(num_examples)]
    y = np.asarray(y).reshape(-1).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.uint8), y))
    train = split == "train"
    if shuffle if shuffle is not None else train:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if train and augment:
        rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, rand).map(
            lambda xy, s: (random_crop_flip(xy[0], s), xy[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    if do_norm:
        ds = ds.map(lambda a, b: (normalize_cifar(a), b),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b))
    return ds.batch(int(batch_size), drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
