"""Bazel `py_test` entry point: runs pytest on the files given as arguments.

Bazel sets up the runfiles tree (the sources and tests) and runs this with the
Python found on PATH (the venv's, see `make bazel-test`).
"""

import os
import sys

import pytest

if __name__ == "__main__":
    os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Bazel's sandbox may have no writable HOME; keep caches under the test tmpdir.
    tmp = os.environ.get("TEST_TMPDIR")
    if tmp:
        os.environ.setdefault("KERAS_HOME", os.path.join(tmp, "keras"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(tmp, "mpl"))
    workspace = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(workspace)
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-m", "not slow", *sys.argv[1:]]))
