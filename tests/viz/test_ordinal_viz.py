"""Pictures of the ordinal-embedding localizer (`keras_glimpse.viz.ordinal`)."""

import os

import numpy as np
import pytest

from keras_glimpse import viz
from keras_glimpse.models.ordinal import OrdinalLocalizer

# Tiny model: 44x44 images (backbone 44 -> 20 -> 9 -> 7 -> 5), small heads.
TINY = dict(image_shape=(44, 44, 1), num_steps=3, hidden_units=4, embedding_dim=8,
            fc_units=16, pooling_size=2, min_side=12, seed=0)


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 44, 44, 1)).astype("float32")
    corner = rng.integers(0, 17, size=(n, 2))
    boxes = np.concatenate([corner, corner + 27], axis=1).astype("float32")
    return x, boxes


def test_visualize_writes_gifs_and_scatter(tmp_path):
    pytest.importorskip("matplotlib")
    model = OrdinalLocalizer(**TINY)
    x, gt = batch(2)
    written = viz.visualize(model, x, gt, str(tmp_path), max_gifs=2, boxes_per_image=4)
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["distance_vs_iou.png", "trajectory_0.gif", "trajectory_1.gif"]
    assert all(os.path.getsize(p) > 0 for p in written)
