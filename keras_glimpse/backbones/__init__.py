"""Backbones: image and patch encoders shared by the methods.

- `CifarResNet`: the CIFAR ResNet family (ResNet-8/20/32/...), PatchDrop's
  CIFAR classifiers and policy.
- `ResNet`: ImageNet-style ResNet-10/18/34 (basic blocks) and ResNet-50
  (`keras.applications`), PatchDrop's 224 px classifiers and 56 px policy.
- `keras_glimpse.backbones.elastic_vit`: AdaGlimpse's elastic ViT (import it
  from its module).
- `keras_glimpse.backbones.sparse_patch_vit.SparsePatchViT`: the sparse
  PatchDrop classifier, a ViT over the kept patches only.
"""

from keras_glimpse.backbones.cifar_resnet import CifarResNet
from keras_glimpse.backbones.resnet import ResNet

__all__ = ["CifarResNet", "ResNet"]
