"""Pictures of AdaGlimpse (`keras_glimpse.viz.adaglimpse`)."""

import os

import numpy as np
import tensorflow as tf

from keras_glimpse import viz
from keras_glimpse.models.adaglimpse import AdaGlimpse

TINY = dict(image_shape=(16, 16, 1), num_glimpses=2, grid_size=1, patch_size=8,
            backbone_size="tiny", decoder_dim=16, decoder_depth=1, decoder_heads=2,
            hidden_units=16, rl_batch_size=4, replay_capacity=32, init_random_steps=0,
            freeze_backbone_epochs=1, seed=0)


def _model(**kw):
    return AdaGlimpse(**{**TINY, **kw}).build_from_image_shape()


def _images(b=4):
    return tf.random.stateless_uniform((b, 16, 16, 1), [1, 2])


def test_visualize_writes_one_gif_per_image(tmp_path):
    from PIL import Image

    paths = viz.visualize(_model(), _images(2), None, str(tmp_path))
    assert len(paths) == 2 and all(os.path.getsize(p) > 0 for p in paths)
    assert Image.open(paths[0]).n_frames == 3
    assert [os.path.basename(p) for p in paths] == ["adaglimpse_000.gif", "adaglimpse_001.gif"]


def test_visualize_classification_draws_class_bars(tmp_path):
    from PIL import Image

    paths = viz.visualize(_model(task="classification", num_classes=3), _images(1),
                          np.array([2]), str(tmp_path), duration_ms=100)
    gif = Image.open(paths[0])
    assert gif.n_frames == 3 and gif.size == (2 * 16 * 12 + 4, 16 * 12 + 14)
    frame = np.asarray(gif.convert("RGB"))
    right = frame[14:, 16 * 12 + 4:]
    colours = {tuple(c) for c in right.reshape(-1, 3)}
    assert (0, 160, 0) in colours and (80, 80, 200) in colours  # the label's bar, the others
