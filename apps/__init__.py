"""Command-line apps: `python -m apps.train|evaluate|export|visualize|demo`.

Importing `apps` quiets TensorFlow for people at a terminal (apps only; the
library never changes the environment): `TF_CPP_MIN_LOG_LEVEL=3` (TensorFlow's
C++ runtime logs harmless ERROR lines on CPU-only machines, e.g. a failed
cuInit and Grappler MLIR-hook notices; real failures still raise Python
exceptions), and the C++
lines TensorFlow 2.21 prints while it is imported (CUDA and oneDNN notices,
written before its logging reads that variable) are dropped. Set
`KERAS_GLIMPSE_VERBOSE_TF=1` to see them.
"""

import os
import sys

if not os.environ.get("KERAS_GLIMPSE_VERBOSE_TF"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly():
    if "tensorflow" in sys.modules or os.environ.get("KERAS_GLIMPSE_VERBOSE_TF"):
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401  (Python errors still surface after the restore)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()
