"""The wheel ships the registry TOML files and works from an installed copy."""

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

REPO = pathlib.Path(__file__).resolve().parent.parent

PROBE = """
[zz_wheel_probe]
builder = "ram"
description = "Probe preset written by tests/test_setup.py."
"""


def test_wheel_contains_registry_and_installed_copy_lists_models(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "README.md", "MANIFEST.in"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "keras_glimpse", src / "keras_glimpse",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "registry", src / "registry")
    (src / "registry" / "zz_wheel_probe.toml").write_text(PROBE)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, env=env, cwd=tmp_path, timeout=300, capture_output=True)
    wheel = next((tmp_path / "dist").glob("keras_glimpse-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tomls = sorted(n for n in names if n.startswith("keras_glimpse/registry/"))
    expected = sorted(f"keras_glimpse/registry/{p.name}" for p in (src / "registry").glob("*.toml"))
    assert tomls == expected and "keras_glimpse/registry/zz_wheel_probe.toml" in tomls
    assert "keras_glimpse/registry.py" in names and "keras_glimpse/data/mnist.py" in names
    shipped = sorted(f"keras_glimpse/pretrained/{p.name}"
                     for p in (src / "keras_glimpse" / "pretrained").glob("*")
                     if p.suffix in (".h5", ".json"))
    assert sorted(n for n in names if n.startswith("keras_glimpse/pretrained/")) == shipped

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, env=env, timeout=300, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import keras_glimpse.registry as r; print(r.__file__); "
            "print(sorted(r.list_models()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, timeout=120,
                         env=dict(env, PYTHONPATH=str(site), KERAS_GLIMPSE_REGISTRY=""),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    file_line, models_line = out.stdout.strip().splitlines()[-2:]
    assert file_line.startswith(str(site))
    assert "zz_wheel_probe" in models_line

    # The shipped weights load by name from the installed copy.
    from keras_glimpse import weights

    available = weights.available()
    code = ("from keras_glimpse import weights, build; print(weights.available()); "
            "import numpy as np; names = weights.available(); "
            "m = build(names[0], weights='pretrained') if names else None; "
            "print(None if m is None else m(np.zeros((1,) + m.image_shape, 'float32')).shape)")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, timeout=300,
                         env=dict(env, PYTHONPATH=str(site), KERAS_GLIMPSE_REGISTRY=""),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    names_line, shape_line = out.stdout.strip().splitlines()[-2:]
    assert names_line == str(available)
    assert shape_line == ("None" if not available else shape_line) and "Error" not in shape_line
