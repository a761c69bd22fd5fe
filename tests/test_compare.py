"""keras_glimpse.compare and apps.compare: budgets, curves, the comparison app."""

import json

import numpy as np
import pytest
import tensorflow as tf

import keras_glimpse
from keras_glimpse import compare, flops, training
from keras_glimpse.models.ram import RAM


def _ram(**kw):
    model = RAM(image_shape=(16, 16, 1), num_glimpses=4, glimpse_size=4, num_scales=2,
                hidden_units=16, glimpse_units=8, location_units=8, location_hidden_units=8,
                std=0.2, seed=3, **kw)
    model.build_from_image_shape()
    return model


def _data(n=24, seed=0, size=16):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, size, size, 1)).astype("float32"), rng.integers(0, 10, n)


def test_pixels_read_by_hand_for_each_sensor():
    # RAM: scales x g^2 per glimpse (2 x 16 of 256), over the glimpses used.
    ram = _ram()
    assert compare.pixels_read(ram) == pytest.approx(4 * 2 * 16 / 256)
    assert compare.pixels_read(ram, glimpses=np.array([1, 3])) == pytest.approx(2 * 32 / 256)
    # RECAP: p^2 per glimpse (12 x 12 of 60 x 60, 8 steps).
    recap = keras_glimpse.build("recap_cluttered60")
    assert compare.pixels_read(recap) == pytest.approx(8 * 144 / 3600)
    # PatchDrop: the 15 x 15 view plus each kept 12 x 12 patch.
    pd = keras_glimpse.build("patchdrop_cluttered60")
    assert compare.pixels_read(pd, patches_kept=np.array([4, 6])) == pytest.approx(
        (225 + 5 * 144) / 3600)
    assert compare.pixels_read(pd) == pytest.approx((225 + 25 * 144) / 3600)
    # AdaGlimpse: grid^2 patches of p^2 per glimpse (4 x 36, 8 glimpses of 3600).
    ada = keras_glimpse.build("adaglimpse_cluttered60")
    assert compare.pixels_read(ada, glimpses=np.array([2, 4])) == pytest.approx(3 * 144 / 3600)
    with pytest.raises(ValueError, match="does not know the sensor"):
        compare.pixels_read(keras_glimpse.build("ordinal_cluttered84"))


def test_early_exit_curve_at_threshold_one_is_the_full_rollout(monkeypatch):
    model = _ram()
    x, y = _data()
    greedy = np.argmax(model.rollout(tf.constant(x))["predictions"], -1)
    policies, rollout = [], model.rollout

    def spy(*args, **kwargs):
        policies.append(kwargs.get("policy"))
        return rollout(*args, **kwargs)

    monkeypatch.setattr(model, "rollout", spy)
    points = compare.budget_curve(model, x, y, thresholds=(1.0, 0.3), batch_size=10)
    learned = [p for p in points if p["policy"] == "learned"]
    assert [p["threshold"] for p in learned] == [1.0, 0.3]
    full = learned[0]
    assert full["accuracy"] == pytest.approx(np.mean(greedy == y))
    assert full["glimpses"] == 4.0 and full["pixels"] == pytest.approx(compare.pixels_read(model))
    assert full["macs"] == pytest.approx(flops.count(model).per_image_macs)
    # A lower threshold never uses more glimpses, pixels or MACs.
    assert learned[1]["glimpses"] <= 4.0 and learned[1]["macs"] <= full["macs"]
    assert learned[1]["pixels"] == pytest.approx(
        compare.pixels_read(model, glimpses=learned[1]["glimpses"]))
    # The random policy runs the same sweep.
    assert [p["threshold"] for p in points if p["policy"] == "random"] == [1.0, 0.3]
    assert set(policies) == {"learned", "random"}  # each traced with its own policy
    assert compare.budget_curve(model, x, y, thresholds=(1.0,), random=False)[0]["policy"] \
        == "learned"


def test_patch_curve_at_one_half_is_the_greedy_policy(monkeypatch):
    from keras_glimpse.models import patchdrop

    masks, random_mask_like = [], patchdrop.random_mask_like

    def spy(actions, seed=None):
        masks.append(seed)
        return random_mask_like(actions, seed=seed)

    monkeypatch.setattr(patchdrop, "random_mask_like", spy)
    model = keras_glimpse.build("patchdrop_cluttered60", cifar_widths=(4, 8, 8))
    x, y = _data(12, size=60)
    out = model.rollout(tf.constant(x))
    greedy = np.argmax(out["predictions"], -1)
    kept = np.asarray(out["actions"]).sum(-1)
    points = compare.budget_curve(model, x, y, thresholds=(0.5, 0.0), batch_size=5)
    learned = {p["threshold"]: p for p in points if p["policy"] == "learned"}
    assert learned[0.5]["accuracy"] == pytest.approx(np.mean(greedy == y))
    assert learned[0.5]["glimpses"] == pytest.approx(kept.mean())
    assert learned[0.0]["glimpses"] == 25.0  # every probability >= 0: all patches
    random = {p["threshold"]: p for p in points if p["policy"] == "random"}
    assert random[0.5]["glimpses"] == learned[0.5]["glimpses"]  # same count per image
    assert masks  # the random policy's masks came from random_mask_like
    # All patches: the random mask is the full mask, so the accuracies agree.
    assert random[0.0]["accuracy"] == learned[0.0]["accuracy"]
    with pytest.raises(ValueError, match="policy stage"):
        compare.budget_curve(keras_glimpse.build("patchdrop_cluttered60", stage="classifier"),
                             x, y)


def test_format_table_and_plot(tmp_path):
    points = [{"policy": "learned", "threshold": 1.0, "accuracy": 0.9, "glimpses": 8.0,
               "pixels": 0.96, "macs": 2.25e6},
              {"policy": "random", "threshold": 1.0, "accuracy": 0.7, "glimpses": 8.0,
               "pixels": 0.96, "macs": 2.25e6}]
    table = compare.format_table({"ram": points})
    assert "| ram | learned | 1 | 90.00 | 8.00 | 96.0 | 2.250 |" in table.splitlines()
    assert compare.plot({"ram": points}, tmp_path / "c.png").is_file()


def test_app_compares_the_trained_presets_and_lists_the_untrained(tmp_path, monkeypatch,
                                                                    capsys):
    from apps import compare as app
    from apps import flags as app_flags

    def run(*argv):
        app_flags.FLAGS(["app", *argv])
        try:
            return app.main([])
        finally:
            app_flags.FLAGS.unparse_flags()

    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "1")
    # ram_cluttered60 ships weights; recap_cluttered60 is taken as untrained.
    find = app.find_weights
    monkeypatch.setattr(app, "find_weights", lambda preset, runs_dir: (
        None if preset == "recap_cluttered60" else find(preset, runs_dir)))
    assert run("--presets=ram_cluttered60,recap_cluttered60", "--images=40",
               f"--out_dir={tmp_path}", f"--runs_dir={tmp_path / 'runs'}") == 0
    out = capsys.readouterr().out
    assert "recap_cluttered60: not trained for this task yet" in out
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["images"] == 40 and saved["not_trained"] == ["recap_cluttered60"]
    assert saved["data_source"] == "embedded"  # offline: never called a test result
    assert "not a test result" in (tmp_path / "compare.md").read_text()
    assert saved["weights"] == {"ram_cluttered60": "shipped weights"}
    full = saved["curves"]["ram_cluttered60"][0]
    assert full["threshold"] == 1.0 and full["accuracy"] > 0.5  # trained, far above chance
    assert (tmp_path / "compare.png").is_file() and (tmp_path / "compare.md").is_file()
    cache = json.loads((tmp_path / "curves" / "ram_cluttered60.json").read_text())
    assert cache["images"] == 40 and cache["curve"] == saved["curves"]["ram_cluttered60"]
    config = training.resolve_config("ram_cluttered60")
    assert cache["key"] == app.curve_key({"model": "ram_cluttered60"},
                                         *app.test_split(config, 40))
    with pytest.raises(ValueError, match="share one task"):
        run("--presets=ram_cluttered60,ram_mnist28")


def test_app_reuses_a_curve_only_for_the_same_weights_images_and_sweep(tmp_path, monkeypatch,
                                                                         capsys):
    from apps import compare as app
    from apps import flags as app_flags

    def run(*argv):
        app_flags.FLAGS(["app", "--presets=ram_cluttered60", f"--out_dir={tmp_path}",
                         f"--runs_dir={tmp_path / 'runs'}", *argv])
        try:
            return app.main([])
        finally:
            app_flags.FLAGS.unparse_flags()

    monkeypatch.setenv("KERAS_GLIMPSE_OFFLINE", "1")
    cache = tmp_path / "curves" / "ram_cluttered60.json"
    cache.parent.mkdir(parents=True)
    marker = [{"policy": "learned", "threshold": 1.0, "accuracy": 0.123, "glimpses": 1.0,
               "pixels": 0.1, "macs": 1.0}]
    images, labels = app.test_split(training.resolve_config("ram_cluttered60"), 20)
    key = app.curve_key({"model": "ram_cluttered60"}, images, labels)
    stored = {"key": key, "images": 20, "curve": marker}
    cache.write_text(json.dumps(stored))
    assert run("--images=20") == 0
    assert "reused" in capsys.readouterr().out
    assert json.loads((tmp_path / "compare.json").read_text())["curves"]["ram_cluttered60"] \
        == marker
    # Other weights: scored again (and the cache replaced).
    cache.write_text(json.dumps({**stored, "key": {**key, "weights_sha256": "0" * 64}}))
    assert run("--images=20") == 0
    assert "reused" not in capsys.readouterr().out
    assert json.loads(cache.read_text())["curve"] != marker
    # The same number of other images (say, the embedded digits against the test
    # split): scored again.
    other = app.curve_key({"model": "ram_cluttered60"}, images[::-1], labels[::-1])
    assert other["data_sha256"] != key["data_sha256"]
    cache.write_text(json.dumps({**stored, "key": other}))
    assert run("--images=20") == 0
    assert "reused" not in capsys.readouterr().out
    # Another sweep: scored again.
    cache.write_text(json.dumps({**stored, "key": {**key, "sweep": [[1.0], [0.5]]}}))
    assert run("--images=20") == 0
    assert "reused" not in capsys.readouterr().out
    # --recompute: scored again even when everything matches.
    cache.write_text(json.dumps(stored))
    assert run("--images=20", "--recompute") == 0
    assert "reused" not in capsys.readouterr().out
