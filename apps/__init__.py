"""Command-line apps: `python -m apps.train|evaluate|export|visualize`.

Importing `apps` quiets TensorFlow's C++ logging (apps only; the library never
changes the environment).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
