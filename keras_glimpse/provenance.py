"""Which code trained a run: one line per training command in `model_dir/provenance.jsonl`.

Every `apps.train` command that trains (or resumes, continues, evaluates) a run
appends `{"mode", "initial_epoch", "started", "commit", "dirty", "version"}` to
the run's `provenance.jsonl`, so a result reported later (`apps.reproduce
--report_only`, shipped weights) names the commits that trained it, not the
checkout that happened to write the report. A run from before this file
existed has none; it reports its commits as unknown.

`commit` is the git HEAD of the checkout the package was imported from (None
for an installed wheel, which has no git checkout); `dirty` says whether its
tracked code (`CODE_PATHS`) differed from that commit. Shipped weights and
results are not code: `apps.reproduce --ship_weights` rewrites
`keras_glimpse/pretrained/` in the checkout it trains in, and the next run
trained there is no less the commit's.
"""

import datetime
import json
import pathlib
import subprocess

FILE = "provenance.jsonl"
CODE_PATHS = ("keras_glimpse", "apps", "registry", "setup.py", ":(exclude)keras_glimpse/pretrained")
_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _git(*args):
    out = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True,
                         timeout=10, check=True)
    return out.stdout.strip()


def git_commit():
    """`(commit, dirty)` of the checkout this package runs from; `(None, None)` outside one."""
    if not (_ROOT / ".git").exists():  # an installed wheel: site-packages is no checkout
        return None, None
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def record(work_dir, mode, initial_epoch=0):
    """Appends this command's line to `work_dir/provenance.jsonl`; returns it."""
    from keras_glimpse import __version__

    commit, dirty = git_commit()
    line = {"mode": mode, "initial_epoch": int(initial_epoch),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit, "dirty": dirty, "version": __version__}
    path = pathlib.Path(work_dir) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")
    return line


def read(work_dir):
    """The run's lines, oldest first; `[]` for a run without provenance (or unreadable lines skipped)."""
    path = pathlib.Path(work_dir) / FILE
    if not path.is_file():
        return []
    lines = []
    for text in path.read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue  # a line cut short by a crash
    return lines


def commits(work_dir):
    """The distinct commits that trained the run, in order (`"<sha>+dirty"` for a
    checkout with changes, `"unknown"` where a command recorded none); `["unknown"]`
    for a run from before provenance was recorded."""
    out = []
    for line in read(work_dir) or [{}]:
        commit = line.get("commit") or "unknown"
        if line.get("dirty"):
            commit += "+dirty"
        if commit not in out:
            out.append(commit)
    return out
