"""Fixtures of the app tests: the toy preset and one small trained model_dir."""

import pytest

from toy_registry import install_toy


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
