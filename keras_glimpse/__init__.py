"""keras_glimpse: active vision for Keras 3.

Models that look at an image through chosen glimpses or patches and learn
where to look with reinforcement learning.

    import keras_glimpse
    model = keras_glimpse.build("ram_cluttered60")
    model.fit(...)
    keras_glimpse.export.export_saved_model(model, "/tmp/ram")
"""

__version__ = "0.1.0"

from keras_glimpse.registry import build, get_preset, list_models  # noqa: E402,F401
