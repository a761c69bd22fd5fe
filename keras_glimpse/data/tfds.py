"""Any TensorFlow Datasets image-classification set as a keras_glimpse dataset.

A preset's `data.name = "tfds:<dataset>"` (e.g. `"tfds:mnist"`, or
`--override data.name=tfds:mnist` in the apps) loads `<dataset>` with
`tensorflow_datasets` (`pip install 'keras_glimpse[tfds]'`):

- splits: TFDS `train` minus the held-out digits -> `"train"`; those held-out
  examples -> `"validation"` (the fixed `VALIDATION_FRACTION` / `VALIDATION_SEED`
  rule of `keras_glimpse.data.mnist.validation_indices`, whatever the run's
  seed); TFDS `test` -> `"test"`;
- images: float32 in `[0, 1]` (`(H, W, C)` as stored, 28x28x1 for MNIST;
  `image_size` / `channels` convert them), labels int32;
- `data_dir`: TFDS's data folder (default: TFDS's own, `~/tensorflow_datasets`).
  A dataset not prepared there is downloaded and prepared unless
  `KERAS_GLIMPSE_OFFLINE=1`.
"""

import functools

import numpy as np

PREFIX = "tfds:"
EXTRA_HINT = "pip install 'keras_glimpse[tfds]'"


class MissingExtraError(ImportError, ValueError):
    """`tensorflow_datasets` is not installed (a ValueError too, so that the
    apps report it as one `ERROR:` line)."""


def require_tfds():
    """The `tensorflow_datasets` module, or a one-line error naming the extra."""
    try:
        import tensorflow_datasets
    except ImportError as e:
        raise MissingExtraError(
            f"data.name='tfds:...' needs tensorflow_datasets: {EXTRA_HINT}") from e
    return tensorflow_datasets


def is_tfds_name(name):
    return isinstance(name, str) and name.startswith(PREFIX)


def dataset_fn(name):
    """`make_dataset` bound to the TFDS dataset of `name` (`"tfds:<dataset>"`)."""
    dataset = name[len(PREFIX):].strip()
    if not dataset:
        raise LookupError(f"Dataset name '{name}' names no TFDS dataset; write e.g. "
                          "'tfds:mnist'.")
    return functools.partial(make_dataset, dataset=dataset)


def _builder(tfds, dataset, data_dir):
    from keras_glimpse.data.mnist import _offline

    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise LookupError(f"TFDS has no dataset '{dataset}' (data.name='tfds:{dataset}'); "
                          "see https://www.tensorflow.org/datasets/catalog.") from None
    if not builder.is_prepared():
        if _offline():
            raise FileNotFoundError(
                f"TFDS dataset '{dataset}' is not prepared in '{builder.data_dir}' and "
                "KERAS_GLIMPSE_OFFLINE=1 forbids downloading it; prepare it online "
                "(tfds build) or pass the --data_dir that holds it.")
        builder.download_and_prepare()
    return builder


def _split_size(builder, name):
    splits = builder.info.splits
    if name not in splits:
        raise ValueError(f"TFDS dataset '{builder.name}' has no '{name}' split (it has "
                         f"{', '.join(sorted(splits)) or 'none'}); keras_glimpse needs "
                         "'train' and 'test'.")
    return int(splits[name].num_examples)


def make_dataset(split, batch_size, seed=0, data_dir=None, dataset="mnist", image_size=None,
                 channels=None, shuffle=None, repeat=False, drop_remainder=None, limit=None):
    """A batched `tf.data.Dataset` of `(images, labels)` from a TFDS dataset.

    Args:
        split: `"train"`, `"validation"` (held out from TFDS `train`) or `"test"`.
        batch_size: batch size.
        seed: shuffle seed (the validation split does not depend on it).
        data_dir: TFDS data folder (None: TFDS's default).
        dataset: the TFDS name, e.g. `"mnist"`, `"fashion_mnist"`, `"cifar10"`.
        image_size: None (as stored) or `[H, W]` / an int: bilinear resize.
        channels: None (as stored), 1 (grayscale) or 3 (RGB).
        shuffle: shuffle each epoch; defaults to `split == "train"`.
        repeat: repeat forever.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).
        limit: keep only the first `limit` examples of the split.

    Returns:
        Dataset of `images` float32 `(B, H, W, C)` in `[0, 1]` and `labels` int32 `(B,)`.
    """
    import tensorflow as tf

    from keras_glimpse.data import mnist, pipeline

    mnist.check_split(split)
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1; received batch_size={batch_size}.")
    if channels not in (None, 1, 3):
        raise ValueError(f"`channels` must be None, 1 or 3; received channels={channels!r}.")
    tfds = require_tfds()
    builder = _builder(tfds, dataset, data_dir)
    if builder.info.supervised_keys is None:
        raise ValueError(f"TFDS dataset '{dataset}' has no (image, label) supervised keys.")
    source = "test" if split == "test" else "train"
    num = _split_size(builder, source)
    read_config = tfds.ReadConfig(shuffle_seed=0, interleave_cycle_length=1)
    ds = builder.as_dataset(split=source, as_supervised=True, shuffle_files=False,
                            read_config=read_config)
    if split != "test":  # the fixed held-out examples, by position in TFDS's order
        held = np.zeros(num, bool)
        held[mnist.validation_indices(num)] = True
        keep = held if split == "validation" else ~held
        mask = tf.constant(keep)
        ds = ds.enumerate().filter(lambda i, xy: tf.gather(mask, i)).map(lambda i, xy: xy)
        num = int(keep.sum())
    if limit is not None:
        num = min(num, int(limit))
        ds = ds.take(num)
    ds = ds.apply(tf.data.experimental.assert_cardinality(num))
    size = None
    if image_size is not None:
        size = [int(image_size)] * 2 if np.isscalar(image_size) else [int(s) for s in image_size]

    def to_float(image, label):
        image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]
        if channels == 1 and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        elif channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        if size is not None:
            image = tf.clip_by_value(tf.image.resize(image, size, method="bilinear"), 0.0, 1.0)
        return image, tf.cast(label, tf.int32)

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return pipeline.batched(ds, split, batch_size, seed, shuffle=shuffle, repeat=repeat,
                            drop_remainder=drop_remainder)
