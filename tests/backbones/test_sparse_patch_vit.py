"""SparsePatchViT: only the kept patches are computed, and the padding of a
batch's shorter images changes nothing."""

import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse.backbones.sparse_patch_vit import SparsePatchViT


@pytest.fixture(scope="module")
def net():
    net = SparsePatchViT(num_classes=5, image_shape=(16, 16, 1), grid_size=4, size="tiny")
    net.build()
    return net


def test_all_kept_is_the_dense_token_path(net):
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(net(x, tf.ones((2, 16))), net(x), atol=1e-5)


def test_each_image_sees_exactly_its_kept_patches(net):
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3, 16, 16, 1)).astype("float32")
    keep = np.zeros((3, 16), "float32")
    keep[0, [1, 5, 6]] = 1  # 3 patches
    keep[1, [0, 15]] = 1  # 2 patches: one padding token in the batch of K = 3
    keep[2, :] = 0  # none: the CLS token alone
    got = net(x, tf.constant(keep)).numpy()
    patches = net.patches(x).numpy()
    for i in range(3):
        idx = np.flatnonzero(keep[i])
        boxes = tf.gather(net._boxes, idx)[None]
        alone = net.encoder(patches[i:i + 1, idx], boxes)["tokens"][:, 0]
        np.testing.assert_allclose(got[i], net.head(alone)[0], atol=1e-4)
    # A dropped patch's pixels never matter.
    y = x.copy()
    y[0, :4, :4] = 100.0  # patch 0, dropped for image 0
    np.testing.assert_allclose(net(y, tf.constant(keep))[0], got[0], atol=1e-5)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="grid_size"):
        SparsePatchViT(10, (30, 30, 1), grid_size=4)


def test_sparse_patchdrop_finetune_step_trains_the_vit_through_the_kept_patches():
    # The classifier's cross-entropy reaches every ViT weight through the kept
    # patches. (Whether the policy moves depends on the self-critical advantage,
    # zero when sampled and greedy masks score alike: tests/objectives covers it.)
    import keras

    import keras_glimpse

    keras.utils.set_random_seed(0)
    model = keras_glimpse.build("patchdrop_digits64_sparse", compile=False, seed=0)
    model.compile(optimizer="adam")
    x = np.random.default_rng(2).uniform(size=(4, 64, 64, 1)).astype("float32")
    y = np.array([0, 1, 2, 3])
    before = [v.numpy().copy() for v in model.hr_net.trainable_variables]
    model.train_on_batch(x, y)
    assert all(not np.allclose(a, v.numpy()) for a, v in
               zip(before, model.hr_net.trainable_variables))
    assert model.rollout(x)["predictions"].shape == (4, 10)
