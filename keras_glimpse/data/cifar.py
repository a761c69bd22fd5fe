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
protocol, spec §2.2); labels are int32.
"""

import os
import pathlib
import pickle

import numpy as np
import tensorflow as tf

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


def make_dataset(split, batch_size, seed=0, data_dir=None, num_classes=10, shuffle=None,
                 drop_remainder=None, num_examples=None, name=None):
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

    Example:
    >>> ds = make_dataset("test", 32, data_dir="/data/cifar")  # doctest: +SKIP
    """
    del name
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'; received split={split!r}.")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    (x_train, y_train), (x_test, y_test) = load_cifar(num_classes, data_dir)
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    if num_examples is not None:
        x, y = x[: int(num_examples)], y[: int(num_examples)]
    y = np.asarray(y).reshape(-1).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((np.asarray(x, np.uint8), y))
    train = split == "train"
    if shuffle if shuffle is not None else train:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=train if drop_remainder is None else drop_remainder)
    ds = ds.map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
