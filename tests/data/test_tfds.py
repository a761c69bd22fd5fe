"""`data.name = "tfds:<dataset>"`: a tiny TFDS dataset built offline in tmp_path."""

import sys

import numpy as np
import pytest

from keras_glimpse import data as data_lib
from keras_glimpse.data import mnist
from keras_glimpse.data import tfds as kg_tfds

NUM_TRAIN, NUM_TEST = 48, 12


def _tiny_builder_class():
    tfds = pytest.importorskip("tensorflow_datasets")

    class KgTinyDigits(tfds.core.GeneratorBasedBuilder):
        """28x28x1 uint8 images whose every pixel is the example's index (test only)."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(28, 28, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10)}),
                supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, NUM_TRAIN),
                    "test": self._generate_examples(100, NUM_TEST)}

        def _generate_examples(self, offset, n):
            for i in range(n):
                pixel = np.full((28, 28, 1), (offset + i) * 2, np.uint8)
                pixel[0, 0, 0] = 255  # every image reaches 1.0 after scaling
                yield i, {"image": pixel, "label": i % 10}

    return KgTinyDigits


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A prepared TFDS data_dir holding `kg_tiny_digits` (no network)."""
    cls = _tiny_builder_class()
    data_dir = tmp_path_factory.mktemp("tfds")
    cls(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


def _arrays(split, data_dir, **kwargs):
    ds = data_lib.load("tfds:kg_tiny_digits", split=split, batch_size=7, data_dir=data_dir,
                       **kwargs)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def _ids(x):  # the example each image came from (its constant pixel value / 2)
    return set(np.rint(x[:, 1, 1, 0] * 255 / 2).astype(int).tolist())


def test_tfds_splits_shapes_and_fixed_validation(tiny_dir):
    train_x, train_y = _arrays("train", tiny_dir, shuffle=False, drop_remainder=False)
    val_x, val_y = _arrays("validation", tiny_dir)
    test_x, test_y = _arrays("test", tiny_dir)
    for x, y in ((train_x, train_y), (val_x, val_y), (test_x, test_y)):
        assert x.shape[1:] == (28, 28, 1) and x.dtype == np.float32
        assert y.dtype == np.int32 and set(y.tolist()) <= set(range(10))
        assert x.min() >= 0.0 and x.max() == pytest.approx(1.0)
    n_val = len(mnist.validation_indices(NUM_TRAIN))  # the project's fixed fraction
    assert len(val_x) == n_val and len(train_x) == NUM_TRAIN - n_val and len(test_x) == NUM_TEST
    train_ids, val_ids = _ids(train_x), _ids(val_x)
    assert not train_ids & val_ids and train_ids | val_ids == set(range(NUM_TRAIN))
    assert _ids(test_x) == set(range(100, 100 + NUM_TEST))
    # deterministic: the same held-out examples whatever the run's seed
    again = data_lib.load("tfds:kg_tiny_digits", split="validation", batch_size=64, seed=5,
                          data_dir=tiny_dir)
    assert _ids(np.concatenate([x.numpy() for x, _ in again])) == val_ids
    assert "tfds:kg_tiny_digits" in data_lib.WITH_VALIDATION  # apps.train selects on it


def test_tfds_options_and_errors(tiny_dir, monkeypatch):
    x, _ = _arrays("test", tiny_dir, image_size=32, channels=3, limit=5)
    assert x.shape == (5, 32, 32, 3) and x.dtype == np.float32 and 0.0 <= x.min() <= x.max() <= 1.0
    with pytest.raises(ValueError, match="split"):
        data_lib.load("tfds:kg_tiny_digits", split="val", data_dir=tiny_dir)
    with pytest.raises(LookupError, match="no dataset 'kg_no_such_set'"):
        data_lib.load("tfds:kg_no_such_set", split="test", data_dir=tiny_dir)
    with pytest.raises(LookupError, match="tfds:mnist"):
        data_lib.get_dataset_fn("tfds:")
    # a registered but unprepared dataset offline: a clear error, no download attempt
    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not prepared"):
        data_lib.load("tfds:kg_tiny_digits", split="test", data_dir=tiny_dir + "/empty")


def test_training_make_data_reads_tfds(tiny_dir):
    from keras_glimpse import training

    config = {"model": "x", "seed": 0, "data_dir": tiny_dir, "training": {"batch_size": 4},
              "data": {"name": "tfds:kg_tiny_digits", "limit": 8}}
    images, labels = next(iter(training.make_data(config, "train")))
    assert tuple(images.shape) == (4, 28, 28, 1) and tuple(labels.shape) == (4,)
    assert training.has_validation(config)


def test_missing_tensorflow_datasets_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install 'keras_glimpse\[tfds\]'") as info:
        data_lib.load("tfds:mnist", split="train", batch_size=4)
    assert isinstance(info.value, ValueError)  # apps print it as one ERROR: line
    assert "\n" not in str(info.value)
    assert isinstance(kg_tfds.MissingExtraError("x"), ImportError)
