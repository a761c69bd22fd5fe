import pathlib
import types

import numpy as np
from PIL import Image

from apps import flags as app_flags
from apps import visualize
from keras_glimpse import viz
from toy_model import ToyGlimpseModel


def _run(argv):
    app_flags.FLAGS(["visualize", *argv])
    try:
        return visualize.main([])
    finally:
        app_flags.FLAGS.unparse_flags()


def test_generic_trajectory_visualisation(toy, trained_dir, tmp_path, capsys):
    model_dir, _ = trained_dir
    out = tmp_path / "viz"
    assert _run([f"--model_dir={model_dir}", f"--out_dir={out}", "--num_images=3"]) == 0
    png = Image.open(out / "trajectories.png")
    assert png.size[0] > 100
    gif = Image.open(out / "trajectory_0.gif")
    assert gif.n_frames == 2  # one frame per glimpse
    assert str(out / "trajectories.png") in capsys.readouterr().out


def test_registered_visualizer_is_used(toy, trained_dir, tmp_path, monkeypatch):
    model_dir, _ = trained_dir
    calls = []

    def hook(model, images, labels, out_dir):
        assert isinstance(model, ToyGlimpseModel)
        calls.append((tuple(images.shape), tuple(labels.shape), out_dir))
        return [pathlib.Path(out_dir) / "custom.png"]

    monkeypatch.setitem(viz.VISUALIZERS, "ToyGlimpseModel", types.SimpleNamespace(visualize=hook))
    assert _run([f"--model_dir={model_dir}", f"--out_dir={tmp_path}", "--num_images=2"]) == 0
    assert calls == [((2, 28, 28, 1), (2,), str(tmp_path))]


def test_draw_boxes_and_locations_to_boxes():
    image = np.zeros((8, 8), np.float32)
    boxes = viz.locations_to_boxes(np.array([[0.0, 0.0], [-1.0, -1.0]]), (8, 8), 4)
    np.testing.assert_allclose(boxes, [[2, 2, 6, 6], [-2, -2, 2, 2]])
    drawn = viz.draw_boxes(image, boxes[:1], colors=[[255, 0, 0]])
    assert drawn.shape == (8, 8, 3) and drawn.dtype == np.uint8
    assert (drawn[2, 2:6] == [255, 0, 0]).all() and (drawn[5, 2:6] == [255, 0, 0]).all()
    assert (drawn[3:5, 3:5] == 0).all()  # outline only
    mask = viz.overlay_mask(np.ones((4, 4, 1), np.float32), np.array([[1, 0], [0, 0]]))
    assert mask[0, 0, 0] == 255 and mask[3, 3, 0] < 255


def test_missing_viz_extra_is_a_clear_error(monkeypatch, tmp_path):
    import sys

    import pytest

    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"keras_glimpse\[viz\]"):
        viz.save_gif([np.zeros((4, 4, 3), np.uint8)], tmp_path / "x.gif")
