"""apps.predict: one image file -> prediction, trajectory lines and the glimpse picture."""

import re

import numpy as np
import pytest
from PIL import Image

from apps import flags as app_flags
from apps import predict, quiet
from keras_glimpse import registry
from keras_glimpse.data import image_file, mnist


def _run(argv):
    app_flags.FLAGS(["predict", *argv])
    try:
        return quiet.wrap(predict.main)([])
    finally:
        app_flags.FLAGS.unparse_flags()


@pytest.fixture(scope="module")
def digit():
    """An embedded MNIST digit as uint8 (28, 28) and its label."""
    (x, y), _ = mnist.load_mnist(source="embedded")
    return x[0], int(y[0])


@pytest.fixture
def digit_png(tmp_path, digit):
    path = tmp_path / "digit.png"
    Image.fromarray(digit[0]).save(path)
    return path


def _weights(tmp_path, name, **overrides):
    """A .weights.h5 of the freshly built preset `name` (nothing trained)."""
    path = tmp_path / f"{name}.weights.h5"
    registry.build(name, compile=False, **overrides).save_weights(str(path))
    return path


def _glimpse_lines(out):
    return [ln for ln in out.splitlines() if re.match(r"glimpse \d+: ", ln)]


def _check_png(path):
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] >= 28 and im.size[1] >= 28


def test_predict_ram_preset_with_weights_file(tmp_path, digit_png, capsys):
    weights = _weights(tmp_path, "ram_mnist28")
    pic = tmp_path / "pics" / "ram.png"
    assert _run(["--model=ram_mnist28", f"--weights={weights}", f"--image={digit_png}",
                 f"--out={pic}"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"^prediction: class (\d) \(probability ([0-9.]+)\)$", out, re.M)
    assert m and 0.0 <= float(m.group(2)) <= 1.0, out
    tops = re.findall(r"^  top-\d: class (\d)  p=([0-9.]+)$", out, re.M)
    assert len(tops) == 3 and tops[0][0] == m.group(1)
    probs = [float(p) for _, p in tops]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-3
    lines = _glimpse_lines(out)
    assert len(lines) == 6 and all("location (y, x)" in ln and "8px" in ln for ln in lines)
    _check_png(pic)
    assert pic.with_suffix(".gif").is_file()
    assert f"wrote {pic}" in out


def test_rgb_and_wrong_size_images_are_converted(tmp_path, digit, capsys):
    rgb = np.repeat(np.asarray(Image.fromarray(digit[0]).resize((50, 40)))[..., None], 3, -1)
    rgb[..., 0] = 255 - rgb[..., 0]  # a colour picture, not a grey one
    png, jpg = tmp_path / "big_rgb.png", tmp_path / "big_rgb.jpg"
    Image.fromarray(rgb).save(png)
    Image.fromarray(rgb).save(jpg, quality=95)
    for path in (png, jpg):
        x = image_file.load_image(path, (28, 28, 1))
        assert x.shape == (28, 28, 1) and x.dtype == np.float32 and 0.0 <= x.min() <= x.max() <= 1.0
        assert image_file.load_image(path, (32, 32, 3)).shape == (32, 32, 3)
    gray = tmp_path / "digit_gray.png"
    Image.fromarray(digit[0]).save(gray)
    x = image_file.load_image(gray, (28, 28, 1))
    np.testing.assert_allclose(x[..., 0], digit[0] / 255.0, atol=1 / 255)  # the data contract
    # the presets' input scaling: PatchDrop CIFAR mean/std, the ordinal localizer's MNIST one
    norm = image_file.input_normalization({"name": "cifar_patchdrop"})
    assert norm is not None and image_file.input_normalization({"name": "mnist"}) is None
    ordinal = image_file.load_image(gray, (28, 28, 1), {"name": "ordinal_clutter"})
    np.testing.assert_allclose(ordinal, (x - 0.1307) / 0.3081, atol=1e-5)
    weights = _weights(tmp_path, "ram_mnist28")
    assert _run(["--model=ram_mnist28", f"--weights={weights}", f"--image={png}",
                 f"--out={tmp_path / 'rgb.png'}"]) == 0
    out = capsys.readouterr().out
    assert "big_rgb.png -> 28x28x1" in out and len(_glimpse_lines(out)) == 6
    _check_png(tmp_path / "rgb.png")


def test_predict_from_model_dir_writes_default_picture_in_cwd(toy, trained_dir, digit_png,
                                                              tmp_path, monkeypatch, capsys):
    model_dir, _ = trained_dir
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _run([f"--model_dir={model_dir}", f"--image={digit_png}", "--mode=sample",
                 "--seed=3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^prediction: class \d \(probability [0-9.]+\)$", out, re.M), out
    assert len(_glimpse_lines(out)) == 2  # the toy model's 2 glimpses
    _check_png(work / "digit_glimpses.png")


def test_predict_adaglimpse_reconstruction_summary(tmp_path, digit_png, capsys):
    weights = _weights(tmp_path, "adaglimpse_digits_reconstruction")
    pic = tmp_path / "ada.png"
    assert _run(["--model=adaglimpse_digits_reconstruction", f"--weights={weights}",
                 f"--image={digit_png}", f"--out={pic}"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"^prediction: reconstruction 64x64x1, RMSE vs the input ([0-9.]+)", out, re.M)
    assert m and np.isfinite(float(m.group(1))), out
    lines = _glimpse_lines(out)
    assert len(lines) == 4 and all(" box (" in ln for ln in lines)  # 4 glimpses
    _check_png(pic)  # the GIF's frames side by side
    assert pic.with_suffix(".gif").is_file()


def test_errors_are_one_line(tmp_path, digit_png, capsys):
    weights = _weights(tmp_path, "ram_mnist28")
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture\n")
    cases = [
        ([f"--image={tmp_path / 'missing.png'}"], "does not exist"),
        ([f"--image={not_image}"], "not a readable image"),
        ([f"--image={tmp_path}"], "is a folder"),
        ([], "--image"),
    ]
    for extra, message in cases:
        assert _run(["--model=ram_mnist28", f"--weights={weights}", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ERROR: ") and message in err[0], err
    assert _run(["--model=ram_mnist28", f"--image={digit_png}"]) == 2  # no weights
    assert "--weights=pretrained" in capsys.readouterr().err
    from keras_glimpse import weights as weights_lib

    if "ram_mnist28" not in weights_lib.available():
        assert _run(["--model=ram_mnist28", "--weights=pretrained", f"--image={digit_png}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "No pretrained weights" in err[0]
