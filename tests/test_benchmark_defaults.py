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


@pytest.mark.parametrize("entry", _module("step_profile").DEFAULT.split(","))
def test_step_profile_defaults_resolve(entry):
    preset, _, stage = entry.partition(":")
    assert training.resolve_config(preset, stage=stage or None)["training"]["batch_size"] > 0


def test_step_profile_reads_kernels_and_busy_time_off_a_trace(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # step_profile imports its sibling harness
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    step_profile = _module("step_profile")
    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    names = {1: ("ExecutorState::Process", ""), 2: ("dense/MatMul:_MklMatMul", "_MklMatMul"),
             3: ("conv/grad:Conv2DBackpropFilter", "_MklNativeConv2DBackpropFilterWithBias"),
             4: ("add:AddV2", "AddV2")}
    for i, (name, display) in names.items():
        plane.event_metadata[i].id = i
        plane.event_metadata[i].name = name
        plane.event_metadata[i].display_name = display
    ms = 10 ** 9  # picoseconds
    for line_name, events in (("tf_Compute/1", [(1, 8), (2, 5), (4, 1)]),
                              ("tf_Compute/2", [(1, 6), (3, 4), (4, 1)]),
                              ("python", [(2, 100)])):  # not an executor thread
        line = plane.lines.add(name=line_name)
        for meta, dur in events:
            line.events.add(metadata_id=meta, duration_ps=dur * ms)
    row = step_profile.summarize_trace(space, steps=2)
    assert row["threads"] == 2 and row["kernels"] == 2.0  # 4 kernels over 2 steps
    assert row["busy_ms"] == pytest.approx(7.0) and row["kernel_ms"] == pytest.approx(5.5)
    assert row["dense_ms"] == pytest.approx(4.5)
    assert row["by_type"]["_MklMatMul"] == pytest.approx(2.5)
    assert not step_profile.is_dense_kernel("AddV2")


def test_timed_uses_the_steps_own_time_when_the_run_keeps_it(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    harness = _module("harness")

    def run(n):  # like fit_steps: the steps took 0.25 s of a longer call
        run.inner_s = 0.25 if n == 10 else 9.0
        return None

    run.inner_s = None
    timing = harness.timed(run, 10, warmup=2)
    assert timing["seconds"] == 0.25 and timing["steps_per_s"] == 40.0
    assert timing["call_s"] < 1.0
    plain = harness.timed(harness.call_steps(lambda: None), 5)  # no inner_s: the call's time
    assert plain["seconds"] == plain["call_s"]
