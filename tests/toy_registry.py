"""Test fixtures: a `toy` builder and a preset folder for the foundation tests."""

import os
import sys
import textwrap

TOY_PRESETS = textwrap.dedent("""
    [toy_mnist]
    builder = "toy"
    description = "Toy 2-glimpse classifier on embedded MNIST (tests only)."
    paper = "none (test fixture)"
    paper_metric = "test_error"
    paper_value = 50.0

    [toy_mnist.model]
    image_shape = [28, 28, 1]
    units = 8

    [toy_mnist.data]
    name = "mnist"
    source = "embedded"
    limit = 128

    [toy_mnist.training]
    batch_size = 16
    epochs = 1
    learning_rate = 0.01

    [toy_mnist.training.stages.finetune]
    learning_rate = 0.001
    epochs = 2
    """)


def install_toy(monkeypatch, tmp_path, text=TOY_PRESETS, env=True):
    """Registers the `toy` builder and a preset folder; returns the folder."""
    from keras_glimpse import registry

    monkeypatch.setitem(registry.BUILDERS, "toy", "toy_model:ToyGlimpseModel")
    folder = tmp_path / "presets"
    folder.mkdir(exist_ok=True)
    (folder / "toy.toml").write_text(text)
    if env:
        monkeypatch.setenv("KERAS_GLIMPSE_REGISTRY", str(folder))
    return folder


TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
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
