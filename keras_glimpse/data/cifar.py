"""CIFAR-10 / CIFAR-100 as `tf.data`, from a local copy or `keras.datasets`.

Sources, in order:

1. `data_dir`: a folder holding `cifar10.npz` / `cifar100.npz` (arrays
   `x_train, y_train, x_test, y_test`), or the extracted python version
   (`cifar-10-batches-py/` or `cifar-100-python/`, or `data_dir` itself being
   that folder);
2. the Keras cache (`~/.keras/datasets/cifar-10-batches-py`, ...);
3. `keras.datasets.cifar10/100.load_data()` (downloads; skipped when
   `KERAS_GLIMPSE_OFFLINE=1`).

Images are float32 RGB in `[0, 1]` with **no normalisation** (URAM's
protocol, spec §2.2); labels are int32. `make_patchdrop_dataset` (the
`cifar_patchdrop` dataset) is the same pipeline with PatchDrop's
preprocessing (spec A2): training images get a random 32x32 crop of the image
zero-padded by 4 pixels (black, before normalisation, as torchvision's
RandomCrop on the PIL image), then a random horizontal flip; both splits are
normalised with mean (125.3, 123.0, 113.9)/255 and std (63.0, 62.1, 66.7)/255,
so a dropped (zeroed) patch is the dataset mean colour.
"""

import os
import pathlib
import pickle

import numpy as np
import tensorflow as tf

from keras_glimpse.data import pipeline

MEAN = np.array([125.3, 123.0, 113.9], np.float32) / 255.0
STD = np.array([63.0, 62.1, 66.7], np.float32) / 255.0

_FOLDERS = {10: "cifar-10-batches-py", 100: "cifar-100-python"}
_URLS = {10: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
         100: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}


def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _to_images(flat):
    return np.asarray(flat, np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _read_python_folder(folder, num_classes):
    folder = pathlib.Path(folder)
    if num_classes == 10:
        parts = [_unpickle(folder / f"data_batch_{i}") for i in range(1, 6)]
        test = _unpickle(folder / "test_batch")
        x_train = np.concatenate([_to_images(p[b"data"]) for p in parts])
        y_train = np.concatenate([np.asarray(p[b"labels"]) for p in parts])
        return (x_train, y_train), (_to_images(test[b"data"]), np.asarray(test[b"labels"]))
    train, test = _unpickle(folder / "train"), _unpickle(folder / "test")
    return ((_to_images(train[b"data"]), np.asarray(train[b"fine_labels"])),
            (_to_images(test[b"data"]), np.asarray(test[b"fine_labels"])))


def _find_local(root, num_classes):
    root = pathlib.Path(root).expanduser()
    npz = root / f"cifar{num_classes}.npz"
    if npz.is_file():
        with np.load(npz) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    for folder in (root / _FOLDERS[num_classes], root):
        marker = "data_batch_1" if num_classes == 10 else "train"
        if (folder / marker).is_file():
            return _read_python_folder(folder, num_classes)
    return None


def load_cifar(num_classes=10, data_dir=None):
    """Returns `((x_train, y_train), (x_test, y_test))`, uint8 images (N, 32, 32, 3).

    Raises:
        FileNotFoundError: `data_dir` holds no copy, or offline with no cached copy.
    """
    if num_classes not in _FOLDERS:
        raise ValueError(f"`num_classes` must be 10 or 100; received num_classes={num_classes!r}.")
    help_text = (f"Download {_URLS[num_classes]}, extract it and pass the folder holding "
                 f"'{_FOLDERS[num_classes]}/' as data_dir (or put it in ~/.keras/datasets/), "
                 f"or save x_train/y_train/x_test/y_test as cifar{num_classes}.npz there.")
    if data_dir is not None:
        found = _find_local(data_dir, num_classes)
        if found is None:
            raise FileNotFoundError(f"No CIFAR-{num_classes} copy in '{data_dir}'. {help_text}")
        return found
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    found = _find_local(pathlib.Path(home) / "datasets", num_classes)
    if found is not None:
        return found
    if os.environ.get("KERAS_GLIMPSE_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        raise FileNotFoundError(
            f"CIFAR-{num_classes} is not available offline (KERAS_GLIMPSE_OFFLINE=1) and no "
            f"local copy was found. {help_text}")
    import keras

    loader = keras.datasets.cifar10 if num_classes == 10 else keras.datasets.cifar100
    try:
        return loader.load_data()
    except Exception as e:  # noqa: BLE001 - any network failure
        raise FileNotFoundError(
            f"Could not download CIFAR-{num_classes} ({type(e).__name__}: {str(e)[:120]}). "
            f"{help_text}") from e


def random_crop_flip(image, seed):
    """Random crop with 4-px zero padding + horizontal flip; `image` uint8/float (32, 32, 3)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.stateless_random_crop(padded, tf.shape(image), seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seeds[1])


def normalize_cifar(image):
    """uint8 `(..., 3)` -> float32 `(x / 255 - mean) / std`."""
    return (tf.cast(image, tf.float32) / 255.0 - MEAN) / STD


def _to_unit(image):
    return tf.cast(image, tf.float32) / 255.0


def make_dataset(split, batch_size, seed=0, data_dir=None, num_classes=10, shuffle=None,
                 drop_remainder=None, num_examples=None, name=None, augment=False,
                 normalize="none"):
    """Batched `tf.data.Dataset` of `(images (B, 32, 32, 3) float32 in [0, 1], labels int32)`.

    Args:
        split: `"train"` or `"test"`.
        batch_size: batch size.
        seed: shuffle seed.
        data_dir: folder with a local copy (see the module docstring).
        num_classes: 10 (CIFAR-10) or 100 (CIFAR-100).
        shuffle: defaults to `split == "train"` (reshuffled every epoch).
        drop_remainder: defaults to `split == "train"`.
        num_examples: optional cap on the number of examples.
        name: ignored (the dispatcher's dataset name).
        augment: random crop + flip on the training split (PatchDrop's).
        normalize: `"patchdrop"` (or True) applies PatchDrop's mean/std;
            `"none"` (or False, None) keeps [0, 1] pixels.

    Example:
    >>> ds = make_dataset("test", 32, data_dir="/data/cifar")  # doctest: +SKIP
    """
    del name
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'; received split={split!r}.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    if normalize not in (True, False, "patchdrop", "none", None):
        raise ValueError(f"`normalize` must be 'patchdrop' or 'none'; received normalize={normalize!r}.")
    to_float = normalize_cifar if normalize in (True, "patchdrop") else _to_unit
    (x_train, y_train), (x_test, y_test) = load_cifar(num_classes, data_dir)
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    x, y = pipeline.first(num_examples, x, y)
    arrays = (np.asarray(x, np.uint8), np.asarray(y).reshape(-1).astype(np.int32))
    if split == "train" and augment:  # per example, fresh crops and flips every epoch
        return pipeline.batched(
            arrays, split, batch_size, seed, shuffle=shuffle, drop_remainder=drop_remainder,
            map_seeds=pipeline.random_seeds(seed),
            map_fn=lambda xy, s: (to_float(random_crop_flip(xy[0], s)), xy[1]))
    return pipeline.batched(arrays, split, batch_size, seed, shuffle=shuffle,
                            drop_remainder=drop_remainder,
                            batch_map_fn=lambda a, b: (to_float(a), b))


def make_patchdrop_dataset(split, batch_size, seed=0, data_dir=None, dataset="cifar10",
                           augment=True, normalize="patchdrop", shuffle=None,
                           drop_remainder=None, num_examples=None):
    """The `cifar_patchdrop` dataset: `make_dataset` with PatchDrop's
    preprocessing (see the module docstring), `(images (B, 32, 32, 3) float32
    normalised, labels (B,) int32)`.

    Args:
        dataset: `"cifar10"` or `"cifar100"`.
        augment: random crop + flip on the training split.
        normalize: `"patchdrop"` (or True) applies the spec's mean/std;
            `"none"` (or False) keeps [0, 1] pixels.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).
        The others as `make_dataset`.
    """
    if dataset not in ("cifar10", "cifar100"):
        raise ValueError(f"`dataset` must be 'cifar10' or 'cifar100'; received dataset={dataset!r}.")
    return make_dataset(split, batch_size, seed, data_dir, num_classes=int(dataset[5:]),
                        shuffle=shuffle, drop_remainder=drop_remainder,
                        num_examples=num_examples, augment=augment, normalize=normalize)
