import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.data import scenes


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(tf.constant(array, tf.uint8)).numpy())


def test_ade20k_labels_shifted_and_ignored(tmp_path):
    _png(tmp_path / "images/validation/a.png", np.full((8, 12, 3), 200, np.uint8))
    mask = np.zeros((8, 12, 1), np.uint8)
    mask[:, 6:] = 3
    _png(tmp_path / "annotations/validation/a.png", mask)
    x, y = next(iter(scenes.make_ade20k_dataset("val", 1, data_dir=str(tmp_path),
                                                image_size=(16, 16))))
    assert x.shape == (1, 16, 16, 3) and float(tf.reduce_max(x)) <= 1.0
    assert set(np.unique(y.numpy())) == {255, 2}


def test_imagenet_folders_and_missing_folder(tmp_path):
    for c in ("b", "a"):
        _png(tmp_path / "val" / c / "x.png", np.zeros((5, 7, 3), np.uint8))
    x, y = next(iter(scenes.make_dataset("val", 2, data_dir=str(tmp_path), layout="imagenet",
                                         task="classification", image_size=(8, 8))))
    assert x.shape == (2, 8, 8, 3) and sorted(y.numpy().tolist()) == [0, 1]
    with pytest.raises(FileNotFoundError, match="train2014"):
        scenes.make_dataset("train", 2, data_dir=str(tmp_path), layout="coco")
