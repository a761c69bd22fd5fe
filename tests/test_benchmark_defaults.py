"""The benchmarks' default workloads name presets and stages that exist (a
wrong one crashes a benchmark after minutes of measuring the others)."""

import importlib.util
import pathlib

import pytest

from keras_glimpse import training

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("entry", _module("end_to_end").DEFAULT.split(","))
def test_end_to_end_defaults_resolve(entry):
    preset, _, stage = entry.partition(":")
    config = training.resolve_config(preset, stage=stage or None)
    assert config["training"]["batch_size"] > 0
