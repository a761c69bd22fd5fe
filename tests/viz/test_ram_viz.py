"""Pictures of RAM and URAM (`keras_glimpse.viz.ram`)."""

import numpy as np

from keras_glimpse import viz
from keras_glimpse.models.ram import RAM, URAM

SMALL = dict(num_glimpses=3, glimpse_size=4, num_scales=2, glimpse_units=8, location_units=8,
             hidden_units=16, location_hidden_units=8)


def small_ram(**kw):
    model = RAM(**{**dict(image_shape=(16, 16, 1), num_classes=3, seed=1, **SMALL), **kw})
    return model.build_from_image_shape()


def small_uram(**kw):
    model = URAM(**{**dict(image_shape=(12, 12, 3), seed=1, **SMALL), **kw})
    return model.build_from_image_shape()


def images(shape=(4, 16, 16, 1), seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


def test_visualize_writes_gif_and_png(tmp_path):
    from PIL import Image

    paths = viz.visualize(small_ram(), images(), np.array([0, 1, 2, 1]), str(tmp_path),
                          num_images=2)
    assert [p.split("/")[-1] for p in paths] == ["ram_glimpses.gif", "ram_glimpses.png"]
    gif = Image.open(paths[0])
    assert gif.n_frames == 3  # one frame per glimpse
    assert Image.open(paths[1]).size[0] > gif.size[0]
    paths = viz.visualize(small_uram(), images((2, 12, 12, 3)), None, str(tmp_path))
    assert all(p.endswith((".gif", ".png")) for p in paths)
    assert [p.split("/")[-1] for p in paths] == ["uram_glimpses.gif", "uram_glimpses.png"]
