import numpy as np
import pytest

import helpers
from keras_glimpse.backbones import ResNet


@pytest.mark.parametrize("depth,expected", [(18, 11_689_512), (34, 21_797_672)])
def test_parameter_counts_match_torchvision(depth, expected):
    net = ResNet(depth=depth, num_classes=1000)
    net.build((None, 224, 224, 3))
    trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    assert trainable == expected  # torchvision resnet18 / resnet34 parameters


def test_runs_on_policy_and_hr_sizes():
    net = ResNet(depth=10, num_classes=16)
    assert net(np.zeros((1, 56, 56, 3), "float32")).shape == (1, 16)
    assert net(np.zeros((1, 224, 224, 3), "float32")).shape == (1, 16)


def test_cifar_stem_and_features():
    net = ResNet(depth=10, stem="cifar")
    assert net(np.zeros((2, 8, 8, 3), "float32")).shape == (2, 512)


def test_resnet50_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5' does not exist"):
        ResNet(depth=50, input_shape=(32, 32, 3), weights=str(tmp_path / "missing.h5"))


@pytest.mark.slow  # keras.applications.ResNet50 takes ~30 s to build twice on 2 cores
def test_resnet50_from_keras_applications(tmp_path):
    net = ResNet(depth=50, num_classes=5, input_shape=(32, 32, 3))
    assert net(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 5)
    assert net.application.count_params() > 23e6  # bottleneck ResNet-50 trunk
    # A local weights file of the right network loads.
    path = str(tmp_path / "r50.weights.h5")
    net.application.save_weights(path)
    other = ResNet(depth=50, input_shape=(32, 32, 3), weights=path)
    np.testing.assert_allclose(other.application.get_weights()[0],
                               net.application.get_weights()[0])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="depth=20"):
        ResNet(depth=20)
    with pytest.raises(ValueError, match="input_shape"):
        ResNet(depth=50)
    with pytest.raises(ValueError, match="stem='x'"):
        ResNet(depth=18, stem="x")
    with pytest.raises(ValueError, match="depth=50"):
        ResNet(depth=18, weights="w.h5")


def test_config_roundtrip():
    net = ResNet(depth=10, num_classes=3)
    net(np.zeros((1, 32, 32, 3), "float32"))
    helpers.assert_config_roundtrip(net)
