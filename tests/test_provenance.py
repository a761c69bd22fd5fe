"""keras_glimpse.provenance: which code trained a run."""

import json

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
