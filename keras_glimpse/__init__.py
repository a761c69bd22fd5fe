"""keras_glimpse: active vision for Keras 3.

Models that look at an image through chosen glimpses or patches and learn
where to look with reinforcement learning.

    import keras_glimpse
    model = keras_glimpse.build("ram_cluttered60")
    model.fit(...)
    keras_glimpse.export.export_saved_model(model, "/tmp/ram")
"""

__version__ = "0.1.0"

import json as _json  # noqa: E402
import os as _os  # noqa: E402
import sys as _sys  # noqa: E402


class BackendError(ImportError):
    """Keras is set to a backend other than TensorFlow."""


def _keras_backend():
    """The backend Keras will use (or uses), without importing another backend."""
    if "keras" in _sys.modules and hasattr(_sys.modules["keras"], "backend"):
        return _sys.modules["keras"].backend.backend()
    if _os.environ.get("KERAS_BACKEND"):
        return _os.environ["KERAS_BACKEND"]
    home = _os.environ.get("KERAS_HOME") or _os.path.join(_os.path.expanduser("~"), ".keras")
    try:
        with open(_os.path.join(home, "keras.json")) as f:
            return _json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


_backend = _keras_backend()
if _backend != "tensorflow":
    raise BackendError(
        f"keras_glimpse needs Keras' TensorFlow backend (it uses tf.GradientTape and "
        f"TensorFlow Probability), but Keras is set to '{_backend}': set "
        "KERAS_BACKEND=tensorflow (or \"backend\": \"tensorflow\" in ~/.keras/keras.json) "
        "before importing keras.")

from keras_glimpse.registry import build, get_preset, list_models  # noqa: E402,F401


def _register_model_classes():
    """Imports every model module, so that `keras.saving.load_model` finds the
    registered classes after `import keras_glimpse` alone (Keras imports the
    modules named in a `.keras` file only for its own packages)."""
    import importlib

    from keras_glimpse.registry import BUILDERS

    for module in sorted({target.split(":")[0] for target in BUILDERS.values()}):
        importlib.import_module(module)


_register_model_classes()
