"""Test session set-up: two logical CPUs (for MirroredStrategy tests), quiet TF."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")  # tests never download
sys.path.insert(0, os.path.dirname(__file__))  # `import helpers`
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))  # the repo root

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:  # already initialised (e.g. a plugin touched TF first)
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long learning runs (make test-slow)")
    # Keras 3.15's Variable.__array__ predates NumPy 2's `copy` keyword and warns
    # on every save (~95 % of the suite's warnings). Only that message is hidden.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


@pytest.fixture
def unset_global_seed():
    """The training split's shuffle and placements (`tf.data` ops with an op
    seed) also depend on TensorFlow's global seed, which `apps.train` sets from
    `--seed` and earlier tests in the same worker may have set: the digests of
    a seed's canvases were recorded with it unset, as in a fresh process."""
    tf.random.set_seed(None)
    yield
