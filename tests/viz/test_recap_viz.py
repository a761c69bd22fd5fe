"""Pictures of RECAP (`keras_glimpse.viz.recap`)."""

import os

import numpy as np

from keras_glimpse import viz
from keras_glimpse.models.recap import RECAP

# A tiny configuration: 16x16 images, 4x4 patches, stride 4 -> a 4x4 grid.
TINY = dict(image_size=16, patch_size=4, stride=4, num_steps=3, embed_dim=8, gate_units=8,
            policy_units=8, value_units=8, attention_dropout=0.0, seed=3)


def _data(b=4, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((b, size, size, 1)).astype("float32"),
            rng.integers(0, 10, size=(b,)).astype("int32"))


def test_visualize_writes_gifs_and_heatmaps(tmp_path):
    from PIL import Image

    model = RECAP(**TINY)
    x, y = _data(b=2)
    files = viz.visualize(model, x, y, tmp_path)
    assert sorted(os.path.basename(f) for f in files) == [
        "glimpse_0.gif", "glimpse_1.gif", "heatmap_0.png", "heatmap_1.png"]
    gif = Image.open(os.path.join(tmp_path, "glimpse_0.gif"))
    assert gif.n_frames == 3
