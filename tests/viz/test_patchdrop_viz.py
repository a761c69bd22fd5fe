"""Pictures of PatchDrop (`keras_glimpse.viz.patchdrop`)."""

import numpy as np
import pytest

import keras_glimpse
from keras_glimpse import viz

TINY = dict(hr_backbone="cifar_resnet8", policy_backbone="cifar_resnet8",
            cifar_widths=(4, 8, 8))


def _batch(b=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(b, 32, 32, 3)).astype("float32"),
            (np.arange(b) % 10).astype("int32"))


def test_visualize_writes_figures_and_heatmap(tmp_path):
    pytest.importorskip("matplotlib")
    model = keras_glimpse.build("patchdrop_r32_c10", stage="finetune", **TINY)
    x, y = _batch(3)
    paths = viz.visualize(model, x, y, str(tmp_path), max_images=2)
    assert len(paths) == 3 and paths[-1].endswith("patch_heatmap.png")
    for p in paths:
        assert (tmp_path / p.split("/")[-1]).stat().st_size > 1000
