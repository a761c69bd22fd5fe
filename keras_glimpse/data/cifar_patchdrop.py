"""CIFAR-10/100 with PatchDrop's preprocessing (spec A2): an alias module.

The pipeline lives in `keras_glimpse.data.cifar` (`make_patchdrop_dataset`,
registered as the `cifar_patchdrop` dataset); this module keeps the old
import path.
"""

from keras_glimpse.data.cifar import MEAN, STD, normalize_cifar, random_crop_flip  # noqa: F401
from keras_glimpse.data.cifar import make_patchdrop_dataset as make_dataset  # noqa: F401
