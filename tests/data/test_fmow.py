import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.data import fmow, image_folder


def _write_png(path, h, w, value):
    image = tf.fill([h, w, 3], tf.constant(value, tf.uint8))
    tf.io.write_file(str(path), tf.io.encode_png(image))


def test_reads_headerless_csv_and_resizes_shorter_side(tmp_path):
    _write_png(tmp_path / "a.png", 40, 60, 255)
    _write_png(tmp_path / "b.png", 50, 30, 0)
    (tmp_path / "test.csv").write_text("3,a.png\n61,b.png\n")
    ds = fmow.make_dataset("test", 2, data_dir=str(tmp_path), image_size=16)
    x, y = next(iter(ds))
    assert x.shape == (2, 16, 16, 3) and list(y.numpy()) == [3, 61]
    # White and black after ImageNet normalisation.
    np.testing.assert_allclose(x[0, 0, 0], (1 - image_folder.IMAGENET_MEAN)
                               / image_folder.IMAGENET_STD, atol=1e-5)
    np.testing.assert_allclose(x[1, 0, 0], -image_folder.IMAGENET_MEAN
                               / image_folder.IMAGENET_STD, atol=1e-5)
    (tmp_path / "train.csv").write_text("0,a.png\n")
    xt, _ = next(iter(fmow.make_dataset("train", 1, data_dir=str(tmp_path), image_size=16)))
    assert xt.shape == (1, 16, 16, 3)


@pytest.mark.parametrize("content,message", [
    ("3,a.png\nlabel,path\n", "line 2: the label 'label' is not an integer"),
    ("3,a.png\n5\n", "line 2: expected 'label,image_path'"),
    ("62,a.png\n", "line 1: label 62 is outside 0..61"),
    ("1, \n", "line 1: empty image path"),
])
def test_malformed_row_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "train.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        fmow.make_dataset("train", 2, data_dir=str(tmp_path))
    assert str(path) in str(err.value)


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="test.csv"):
        fmow.make_dataset("test", 2, data_dir=str(tmp_path))


def test_image_folder_classes(tmp_path):
    for cls, value in (("cat", 10), ("dog", 200)):
        (tmp_path / "test" / cls).mkdir(parents=True)
        _write_png(tmp_path / "test" / cls / "x.png", 20, 24, value)
    ds = image_folder.make_dataset("test", 4, data_dir=str(tmp_path), image_size=16,
                                   resize_shorter=18)
    x, y = next(iter(ds))
    assert x.shape == (2, 16, 16, 3) and sorted(y.numpy()) == [0, 1]
    with pytest.raises(FileNotFoundError, match="class folders"):
        image_folder.make_dataset("train", 4, data_dir=str(tmp_path))
