import numpy as np
import pytest
import tensorflow as tf

import helpers
from keras_glimpse.backbones import CifarResNet


def test_resnet32_parameter_count_matches_paper():
    net = CifarResNet(depth=32, num_classes=10)
    net.build((None, 32, 32, 3))
    # He et al. 2016, Table 6: ResNet-32 has 0.46 M parameters.
    assert 0.45e6 < net.count_params() < 0.47e6, net.count_params()
    assert len(net.residual_blocks) == 15


@pytest.mark.parametrize("size", [32, 8])
def test_runs_on_hr_and_lr_inputs(size):
    net = CifarResNet(depth=8, num_classes=10)
    out = net(np.random.rand(2, size, size, 3).astype("float32"))
    assert out.shape == (2, 10)


def test_features_without_classifier_and_blocks_override():
    net = CifarResNet(blocks=1, widths=(4, 8, 8))
    assert net(np.zeros((3, 8, 8, 1), "float32")).shape == (3, 8)
    assert net.blocks_per_stage == 1


def test_option_b_shortcut_is_parameter_free():
    net = CifarResNet(depth=8)
    net.build((None, 32, 32, 3))
    names = [w.path for w in net.weights]
    assert not any("proj" in n or "shortcut" in n for n in names), names
    # 7 convolutions (stem + 3 blocks x 2), each followed by BatchNorm.
    assert sum(w.path.endswith("kernel") for w in net.weights) == 7


def test_he_fan_out_init():
    net = CifarResNet(depth=8, widths=(16, 32, 64))
    net.build((None, 32, 32, 3))
    kernel = net.residual_blocks[-1].conv2.kernel.numpy()
    expected = np.sqrt(2.0 / (3 * 3 * 64))
    assert abs(kernel.std() - expected) / expected < 0.1


def test_invalid_arguments():
    with pytest.raises(ValueError, match="depth=33"):
        CifarResNet(depth=33)
    with pytest.raises(ValueError, match="blocks=0"):
        CifarResNet(blocks=0)
    with pytest.raises(ValueError, match="widths"):
        CifarResNet(widths=(16, 8, 64))
    with pytest.raises(ValueError, match="num_classes"):
        CifarResNet(num_classes=0)


def test_config_and_keras_roundtrip():
    net = CifarResNet(depth=8, num_classes=3, widths=(4, 8, 8))
    x = np.random.rand(2, 8, 8, 3).astype("float32")
    net(x)
    helpers.assert_config_roundtrip(net)
    import keras

    model = keras.Sequential([keras.Input((8, 8, 3)), net])
    helpers.assert_keras_roundtrip(model, x)


def test_jit_compiles():
    net = CifarResNet(depth=8, num_classes=4, widths=(4, 8, 8))
    x = tf.random.normal((2, 16, 16, 3))
    net(x)
    helpers.assert_jit_compiles(lambda t: net(t, training=False), x)
