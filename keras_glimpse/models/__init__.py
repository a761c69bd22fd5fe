"""One module per method; each model subclasses `GlimpseModel`.

Import a method from its module (e.g. `keras_glimpse.models.ram.RAM`) or build
a registered preset with `keras_glimpse.build(name)`.
"""

from keras_glimpse.models.glimpse_model import GlimpseModel  # noqa: F401
