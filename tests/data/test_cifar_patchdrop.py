import numpy as np
import tensorflow as tf

from keras_glimpse.data import cifar_patchdrop as cp


def test_normalisation_constants_of_the_spec():
    white = cp.normalize_cifar(tf.fill([1, 1, 3], tf.constant(255, tf.uint8))).numpy()
    np.testing.assert_allclose(white[0, 0], (1 - np.array([125.3, 123.0, 113.9]) / 255)
                               / (np.array([63.0, 62.1, 66.7]) / 255), rtol=1e-5)


def test_crop_with_zero_padding_and_flip():
    image = tf.ones([32, 32, 3], tf.uint8)
    outs = [cp.random_crop_flip(image, tf.constant([s, 1], tf.int64)).numpy() for s in range(20)]
    assert all(o.shape == (32, 32, 3) for o in outs)
    # Some crops show the black (zero) padding, at most 4 rows/columns of it.
    zeros = [int((o == 0).all(-1).sum()) for o in outs]
    assert max(zeros) > 0 and max(zeros) <= 32 * 32 - 28 * 28
