"""`keras_glimpse.viz`: the dispatcher, the shared helpers, and models that draw nothing."""

import importlib
import inspect
import pathlib
import re

import numpy as np
import pytest

from keras_glimpse import viz

MODELS_DIR = pathlib.Path(viz.__file__).resolve().parent.parent / "models"


def _method_classes():
    from keras_glimpse.models.glimpse_model import GlimpseModel

    found = {}
    for path in sorted(MODELS_DIR.glob("*.py")):
        module = importlib.import_module(f"keras_glimpse.models.{path.stem}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, GlimpseModel) and cls is not GlimpseModel
                    and cls.__module__ == module.__name__ and not name.startswith("_")):
                found[name] = cls
    # Shared bases (RecurrentAttention under RAM and URAM) are not methods.
    return {n: c for n, c in found.items()
            if not any(o is not c and issubclass(o, c) for o in found.values())}


def test_every_method_model_has_a_visualizer_module():
    classes = _method_classes()
    assert set(classes) == set(viz.VISUALIZERS)
    for name, target in viz.VISUALIZERS.items():
        module = importlib.import_module(target)
        assert viz.visualizer(classes[name].__new__(classes[name])) is module.visualize
        params = list(inspect.signature(module.visualize).parameters)
        assert params[:4] == ["model", "images", "labels", "out_dir"]


def test_models_draw_nothing():
    for path in sorted(MODELS_DIR.glob("*.py")):
        source = path.read_text()
        assert not re.search(r"\bPIL\b|matplotlib|\bviz\b|def visualize\b", source), path.name
    for name, cls in _method_classes().items():
        assert not hasattr(cls, "visualize"), name


def test_dispatch_by_class_name_along_the_mro_and_fallback(monkeypatch):
    from toy_model import ToyGlimpseModel

    fake_ram = type("RAM", (), {})
    sub = type("MyRAM", (fake_ram,), {})
    from keras_glimpse.viz import ram

    assert viz.visualizer(fake_ram()) is ram.visualize
    assert viz.visualizer(sub()) is ram.visualize
    toy = ToyGlimpseModel.__new__(ToyGlimpseModel)
    assert viz.visualizer(toy) is viz.visualize_trajectories
    calls = []
    monkeypatch.setitem(viz.VISUALIZERS, "ToyGlimpseModel", type(
        "Custom", (), {"visualize": staticmethod(lambda *a, **k: calls.append((a, k)) or ["p"])}))
    assert viz.visualize(toy, "x", "y", "dir", num_images=1) == ["p"]
    assert calls == [((toy, "x", "y", "dir"), {"num_images": 1})]
    with pytest.raises(TypeError, match="not a GlimpseModel"):
        viz.visualizer(object())


def test_shared_helpers_stay_importable():
    for name in ("to_rgb_uint8", "locations_to_boxes", "draw_boxes", "overlay_mask", "upscale",
                 "trajectory_frames", "save_gif", "save_grid", "mosaic", "trajectory_images",
                 "visualize_trajectories", "_require", "PALETTE"):
        assert getattr(viz, name) is getattr(viz.common, name)


def test_draw_boxes_unclipped_matches_pillow_rectangles():
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for _ in range(50):
        y1, x1 = rng.integers(-10, 30, 2)
        y2, x2 = y1 + rng.integers(4, 25), x1 + rng.integers(4, 25)  # sides >= 2 lines
        width = int(rng.integers(1, 3))
        picture = Image.new("RGB", (30, 30))
        ImageDraw.Draw(picture).rectangle([int(x1), int(y1), int(x2) - 1, int(y2) - 1],
                                          outline=(255, 0, 0), width=width)
        drawn = viz.draw_boxes(np.zeros((30, 30, 3), np.uint8), [[y1, x1, y2, x2]],
                               colors=[[255, 0, 0]], thickness=width, clip=False)
        np.testing.assert_array_equal(drawn, np.asarray(picture))


def test_draw_boxes_clip_fill_dots_text_and_stack():
    image = np.zeros((8, 8, 3), np.uint8)
    clipped = viz.draw_boxes(image, [[-2, -2, 4, 4]], colors=[[9, 9, 9]])
    cut = viz.draw_boxes(image, [[-2, -2, 4, 4]], colors=[[9, 9, 9]], clip=False)
    assert clipped[0, 0, 0] == 9 and cut[0, 0, 0] == 0 and cut[3, 0, 0] == 9
    filled = viz.draw_boxes(image, [[1, 2, 3, 5]], colors=[[7, 7, 7]], fill=True)
    assert (filled[1:3, 2:5] == 7).all() and filled.sum() == 7 * 3 * 6
    dots = viz.draw_dots(np.zeros((9, 9, 3), np.uint8), [[4, 4]], radius=2, color=(1, 1, 1))
    assert dots[..., 0].sum() == 21 and dots[4, 2, 0] == 1 and dots[2, 2, 0] == 0
    text = viz.draw_text(np.full((16, 40, 3), 255, np.uint8), "t=1", (2, 2), (0, 0, 0))
    assert text.shape == (16, 40, 3) and (text < 128).any()
    a, b = np.zeros((2, 3, 3), np.uint8), np.zeros((4, 1, 3), np.uint8)
    row = viz.stack([a, b], axis=1, gap=2, fill=255)
    assert row.shape == (4, 6, 3) and (row[2:, :3] == 255).all() and (row[:, 3:5] == 255).all()
    col = viz.stack([a, b], axis=0, gap=1, fill=(1, 2, 3), end_gap=True)
    assert col.shape == (8, 3, 3) and (col[7] == [1, 2, 3]).all()


def test_save_image(tmp_path):
    from PIL import Image

    path = viz.save_image(np.ones((3, 5, 1), np.float32), str(tmp_path / "sub" / "x.png"))
    assert Image.open(path).size == (5, 3)
