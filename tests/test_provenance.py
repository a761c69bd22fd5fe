"""keras_glimpse.provenance: which code trained a run."""

import json
import shutil
import subprocess

import pytest

from keras_glimpse import provenance


def test_lines_accumulate_and_commits_are_distinct_in_order(tmp_path, monkeypatch):
    shas = iter([("aaa", False), ("aaa", False), ("bbb", True), (None, None)])
    monkeypatch.setattr(provenance, "git_commit", lambda: next(shas))
    for mode, epoch in (("fresh", 0), ("resume", 3), ("resume", 5), ("continue", 9)):
        provenance.record(tmp_path, mode, epoch)
    lines = provenance.read(tmp_path)
    assert [(x["mode"], x["initial_epoch"]) for x in lines] == [
        ("fresh", 0), ("resume", 3), ("resume", 5), ("continue", 9)]
    assert all(x["started"] and x["version"] for x in lines)
    assert provenance.commits(tmp_path) == ["aaa", "bbb+dirty", "unknown"]


def test_a_run_without_provenance_and_a_truncated_line(tmp_path):
    assert provenance.read(tmp_path) == [] and provenance.commits(tmp_path) == ["unknown"]
    (tmp_path / provenance.FILE).write_text(json.dumps({"commit": "ccc"}) + "\n{\"comm")
    assert provenance.commits(tmp_path) == ["ccc"]


def test_outside_a_checkout_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_ROOT", tmp_path)  # like site-packages of a wheel
    assert provenance.git_commit() == (None, None)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dirty_means_changed_code_not_changed_weights(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "keras_glimpse" / "pretrained").mkdir(parents=True)
    (tmp_path / "keras_glimpse" / "model.py").write_text("x = 1\n")
    (tmp_path / "keras_glimpse" / "pretrained" / "index.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(provenance, "_ROOT", tmp_path)
    commit, dirty = provenance.git_commit()
    assert len(commit) == 40 and dirty is False
    (tmp_path / "keras_glimpse" / "pretrained" / "index.json").write_text('{"shipped": 1}\n')
    assert provenance.git_commit() == (commit, False)  # weights shipped in the checkout
    (tmp_path / "keras_glimpse" / "model.py").write_text("x = 2\n")
    assert provenance.git_commit() == (commit, True)
