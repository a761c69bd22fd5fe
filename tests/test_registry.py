import pathlib

import keras
import numpy as np
import pytest

from keras_glimpse import registry
from toy_model import ToyGlimpseModel
from toy_registry import install_toy


@pytest.fixture
def toy(monkeypatch, tmp_path):
    return install_toy(monkeypatch, tmp_path)


def test_list_models_includes_extra_folder(toy):
    models = registry.list_models()
    assert models["toy_mnist"].startswith("Toy 2-glimpse")
    assert list(models) == sorted(models)


def test_registry_dirs_order_and_missing_folder(toy, monkeypatch, tmp_path):
    assert registry.registry_dirs()[-1] == toy
    monkeypatch.setenv("KERAS_GLIMPSE_REGISTRY", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="nope"):
        registry.list_models()


def test_later_folder_overrides_earlier(toy, monkeypatch, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    (second / "x.toml").write_text('[toy_mnist]\nbuilder = "toy"\ndescription = "override"\n')
    monkeypatch.setenv("KERAS_GLIMPSE_REGISTRY", f"{toy}{__import__('os').pathsep}{second}")
    assert registry.list_models()["toy_mnist"] == "override"


def test_build_returns_compiled_built_model(toy):
    model = registry.build("toy_mnist", units=4)
    assert isinstance(model, ToyGlimpseModel)
    assert model.built and model.compiled
    assert model.units == 4 and model.image_shape == (28, 28, 1)
    assert model.preset_name == "toy_mnist"
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.01, rtol=1e-6)


def test_get_preset_is_a_copy(toy):
    p = registry.get_preset("toy_mnist")
    p["model"]["units"] = 999
    assert registry.get_preset("toy_mnist")["model"]["units"] == 8
    assert p["source"].endswith("toy.toml")


def test_unknown_name_lists_closest(toy):
    with pytest.raises(LookupError) as e:
        registry.build("toy_mnst")
    assert "toy_mnist" in str(e.value) and "toy_mnst" in str(e.value)


def test_unknown_override_lists_valid_keys(toy):
    with pytest.raises(TypeError) as e:
        registry.build("toy_mnist", num_glimpse=3)
    msg = str(e.value)
    assert "num_glimpse" in msg and "num_glimpses" in msg and "units" in msg


@pytest.mark.parametrize("text, key", [
    ('[bad]\ndescription = "no builder"\n', "builder"),
    ('[bad]\nbuilder = "nosuch"\n', "builder"),
    ('[bad]\nbuilder = "toy"\nmodle = {}\n', "modle"),
    ('[bad]\nbuilder = "toy"\nmodel = 3\n', "model"),
    ('[bad]\nbuilder = "toy"\ndescription = 3\n', "description"),
    ('[bad\nbuilder = "toy"\n', "TOML"),
])
def test_malformed_preset_names_file_and_key(monkeypatch, tmp_path, text, key):
    folder = install_toy(monkeypatch, tmp_path)
    (folder / "broken.toml").write_text(text)
    with pytest.raises(registry.PresetError) as e:
        registry.list_models()
    assert "broken.toml" in str(e.value) and key in str(e.value)


def test_build_loads_weights_and_reports_missing_file(toy, tmp_path):
    trained = registry.build("toy_mnist")
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    trained.fit(x, np.array([1, 2]), epochs=1, verbose=0)
    for name in ("m.keras", "m.weights.h5"):
        path = tmp_path / name
        trained.save(path) if name.endswith(".keras") else trained.save_weights(path)
        loaded = registry.build("toy_mnist", weights=path)
        np.testing.assert_allclose(loaded(x), trained(x), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        registry.build("toy_mnist", weights=tmp_path / "missing.keras")


def test_packaged_presets_are_valid():
    # Every preset shipped in registry/ validates and names a known builder.
    models = registry.list_models()
    for name in models:
        preset = registry.get_preset(name)
        assert preset["builder"] in registry.BUILDERS, name
    src = pathlib.Path(registry.__file__).resolve().parent.parent / "registry"
    assert src in registry.registry_dirs() or not src.is_dir()


def test_readme_table_generator_lists_every_model(toy):
    import importlib.util

    path = pathlib.Path(__file__).resolve().parent.parent / "tools" / "update_readme.py"
    spec = importlib.util.spec_from_file_location("update_readme", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "intro\n<!-- models:begin -->\nSTALE_ROW\n<!-- models:end -->\nrest\n"
    rendered = module.render(text)
    assert rendered.startswith("intro\n<!-- models:begin -->\n| name |")
    assert rendered.endswith("<!-- models:end -->\nrest\n") and "STALE_ROW" not in rendered
    for name in registry.list_models():
        assert f"| `{name}` |" in rendered
    assert "| `toy_mnist` | toy |" in rendered and "test_error 50.0" in rendered


def test_a_preset_name_defined_twice_in_one_folder_is_an_error(monkeypatch, tmp_path):
    from keras_glimpse import registry

    folder = tmp_path / "presets"
    folder.mkdir()
    for stem in ("a", "b"):
        (folder / f"{stem}.toml").write_text('[twin]\nbuilder = "ram"\n')
    monkeypatch.setenv("KERAS_GLIMPSE_REGISTRY", str(folder))
    with pytest.raises(registry.PresetError, match=r"'twin' is defined twice.*a\.toml.*b\.toml"):
        registry.list_models()


def test_extends_takes_the_other_presets_tables_with_its_own_keys_over_them(monkeypatch,
                                                                             tmp_path):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "p.toml").write_text(
        '[base]\nbuilder = "ram"\ndescription = "base"\n[base.model]\nnum_glimpses = 6\n'
        'glimpse_size = 8\n[base.training]\nepochs = 5\n[base.training.stages.a]\nepochs = 2\n'
        'learning_rate = 0.1\n'
        '[child]\nextends = "base"\ndescription = "child"\n[child.model]\nglimpse_size = 4\n'
        '[child.training.stages.a]\nepochs = 3\n'
        '[grandchild]\nextends = "child"\n[grandchild.training]\nepochs = 9\n')
    monkeypatch.setenv("KERAS_GLIMPSE_REGISTRY", str(folder))
    child = registry.get_preset("child")
    assert child["builder"] == "ram" and child["description"] == "child"
    assert child["model"] == {"num_glimpses": 6, "glimpse_size": 4}
    assert child["training"] == {"epochs": 5, "stages": {"a": {"epochs": 3,
                                                               "learning_rate": 0.1}}}
    grand = registry.get_preset("grandchild")
    assert grand["model"]["glimpse_size"] == 4 and grand["training"]["epochs"] == 9
    assert registry.get_preset("base")["model"]["glimpse_size"] == 8  # base untouched
    (folder / "p.toml").write_text('[a]\nextends = "b"\n[b]\nextends = "a"\n')
    with pytest.raises(registry.PresetError, match="cycle"):
        registry.list_models()
    (folder / "p.toml").write_text('[a]\nextends = "nope"\n')
    with pytest.raises(registry.PresetError, match="unknown preset 'nope'"):
        registry.list_models()
