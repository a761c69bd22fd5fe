"""Fixtures of the app tests: the toy preset and one small trained model_dir."""

import os
import sys

import pytest

from toy_registry import install_toy

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS_DIR)

# Runs an app in a subprocess with the `toy` builder registered.
LAUNCHER = (
    "import sys; sys.path[:0] = [{repo!r}, {tests!r}]; "
    "from keras_glimpse import registry; "
    "registry.BUILDERS['toy'] = 'toy_model:ToyGlimpseModel'; "
    "from absl import app; from apps import {app} as m; app.run(m.main)"
)


def launcher_argv(app_name, *flags):
    code = LAUNCHER.format(repo=REPO, tests=TESTS_DIR, app=app_name)
    return [sys.executable, "-c", code, *flags]


@pytest.fixture
def toy(monkeypatch, tmp_path_factory):
    return install_toy(monkeypatch, tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="package")
def trained_dir(tmp_path_factory):
    """A model_dir trained for one short epoch by keras_glimpse.training."""
    from keras_glimpse import training

    with pytest.MonkeyPatch.context() as mp:
        install_toy(mp, tmp_path_factory.mktemp("toy_presets"))
        model_dir = tmp_path_factory.mktemp("trained") / "run"
        config = training.resolve_config("toy_mnist", model_dir=model_dir, steps_per_epoch=3,
                                         eval_steps=2, verbose=0)
        result = training.run_training(config)
    return model_dir, result
