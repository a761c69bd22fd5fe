"""tools/misuse_audit.py's verdicts on hand-written outputs (the tool itself
runs for minutes; see its docstring)."""

import importlib.util
import pathlib

_PATH = pathlib.Path(__file__).resolve().parents[1] / "tools" / "misuse_audit.py"
_spec = importlib.util.spec_from_file_location("misuse_audit", _PATH)
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

TRACEBACK = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
             "ValueError: --eval_steps must be at least 1\n")


def test_app_verdicts():
    app = audit.Case("c", "g", ["apps.train"], keyword="eval_steps")
    assert audit.classify(app, 2, "ERROR: --eval_steps must be at least 1", []) == "clear"
    assert audit.classify(app, 1, TRACEBACK, []) == "unclear"  # a traceback from an app
    assert audit.classify(app, 2, "ERROR: something else", []) == "unclear"  # not named
    assert audit.classify(app, 0, "done", []) == "silent"
    assert audit.classify(app, None, "(hung)", []) == "unclear"
    assert audit.classify(app, 2, "ERROR: --eval_steps", ["run/metrics.json"]) == "data lost"
    ok = audit.Case("c", "g", ["apps.train"], expect="ok")
    assert audit.classify(ok, 0, "", []) == "correct"
    assert audit.classify(ok, 1, TRACEBACK, []) == "wrong"


def test_python_api_verdicts_read_the_exception_message():
    api = audit.Case("c", "g", code="pass", keyword="eval_steps")
    assert audit.classify(api, 1, TRACEBACK, []) == "clear"
    assert audit.classify(api, 1, TRACEBACK.replace("--eval_steps", "x"), []) == "unclear"
    assert audit.classify(api, 1, "Segmentation fault", []) == "unclear"
    assert audit._summary_line(TRACEBACK) == "ValueError: --eval_steps must be at least 1"


def test_catalog_is_well_formed():
    names = [c.name for c in audit.cases()]
    assert len(names) == len(set(names)) >= 50
    for c in audit.cases():
        assert (c.argv is None) != (c.code is None) and c.expect in ("error", "ok")
