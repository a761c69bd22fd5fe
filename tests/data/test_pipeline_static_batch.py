"""The training split's batches have a static batch size, through per-batch composition too."""

import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse import data as data_lib
from keras_glimpse.data import pipeline


def _batch_dims(ds):
    return {spec.shape[0] for spec in tf.nest.flatten(ds.element_spec)}


def test_batched_drops_the_training_remainder_by_default():
    x = np.arange(10, dtype=np.float32)
    compose = lambda b, y: (2 * b, y)  # noqa: E731  (a per-batch map keeps the static size)
    train = pipeline.batched((x, x), "train", 4, batch_map_fn=compose)
    assert _batch_dims(train) == {4}
    assert [len(b) for b, _ in train] == [4, 4]  # the partial batch of 2 is dropped
    test = pipeline.batched((x, x), "test", 4, batch_map_fn=compose)
    assert _batch_dims(test) == {None} and [len(b) for b, _ in test] == [4, 4, 2]
    kept = pipeline.batched((x, x), "train", 4, drop_remainder=False)
    assert [len(b) for b, _ in kept] == [4, 4, 2]


@pytest.mark.parametrize("name, kwargs", [
    ("recap_clutter", {"img_size": 64}),
    ("recap_clutter", {"img_size": 28}),
    ("cluttered_digits_canvas", {}),
    ("elastic_digits", {}),
    ("mnist", {}),
])
def test_training_splits_of_the_mnist_datasets_have_static_batches(name, kwargs):
    ds = data_lib.load(name, split="train", batch_size=8, source="embedded", limit=20, **kwargs)
    assert _batch_dims(ds) == {8}
    assert [int(x.shape[0]) for x, _ in ds] == [8, 8]
    val = data_lib.load(name, split="validation", batch_size=8, source="embedded", limit=20,
                        **kwargs)
    assert sum(int(x.shape[0]) for x, _ in val) == 20  # evaluation keeps every example
