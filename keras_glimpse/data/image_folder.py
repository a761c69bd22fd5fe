"""Class-folder image datasets (ImageNet layout) with PatchDrop's preprocessing.

`<data_dir>/<split>/<class name>/<image>` with one sub-folder per class
(sorted names give the class ids), e.g. `data/ImageNet/train/n01440764/...`
and `data/ImageNet/test/...` (the validation images arranged into class
folders). Training: resize the shorter side to `resize_shorter` (256),
random `image_size` (224) crop, horizontal flip; test: resize, centre crop.
Normalised with the ImageNet mean/std. The image decode / resize / crop
helpers are shared with `keras_glimpse.data.fmow`.
"""

import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_glimpse.data import pipeline

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".JPEG", ".JPG", ".PNG")


def decode_image(path):
    """Reads an image file -> float32 (H, W, 3) in [0, 1]."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return tf.image.convert_image_dtype(image, tf.float32)


def resize_shorter(image, size):
    """Resizes (bilinear) so that the shorter side is `size`, keeping the aspect."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.reduce_min(shape)
    new = tf.cast(tf.round(shape * scale), tf.int32)
    new = tf.maximum(new, size)
    return tf.image.resize(image, new, method="bilinear")


def crop(image, size, seed=None):
    """Random (`seed` given) or centre `size x size` crop."""
    if seed is not None:
        return tf.image.stateless_random_crop(image, [size, size, 3], seed)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size, :]


def normalize_imagenet(image):
    return (image - IMAGENET_MEAN) / IMAGENET_STD


def preprocess(path, train, image_size, shorter, flip, seed=None):
    """decode -> resize shorter side -> crop (random when `train`) -> flip -> normalise."""
    image = resize_shorter(decode_image(path), shorter)
    if train:
        seeds = tf.random.experimental.stateless_split(seed, 2)
        image = crop(image, image_size, seeds[0])
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    else:
        image = crop(image, image_size)
    image.set_shape([image_size, image_size, 3])
    return normalize_imagenet(image)


def files_dataset(paths, labels, split, batch_size, seed, image_size, shorter, flip, shuffle=None,
                  drop_remainder=None):
    """The shared tf.data pipeline over `(paths, labels)`."""
    train = split == "train"

    def train_fn(pl, s):  # fresh crops and flips every epoch
        return preprocess(pl[0], True, image_size, shorter, flip, s), pl[1]

    def eval_fn(p, lab):
        return preprocess(p, False, image_size, shorter, flip), lab

    return pipeline.batched((np.asarray(paths), np.asarray(labels, np.int32)), split, batch_size,
                            seed, shuffle=shuffle, drop_remainder=drop_remainder,
                            map_fn=train_fn if train else eval_fn,
                            map_seeds=pipeline.random_seeds(seed) if train else None)


def list_class_folders(folder):
    """`(paths, labels, class_names)` of `<folder>/<class>/<image>` (sorted classes)."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No image folder '{folder}'. Arrange the images as <data_dir>/train/<class>/* "
            "and <data_dir>/test/<class>/* (ImageNet: the validation images sorted into "
            "class folders) and pass --data_dir.")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not classes:
        raise FileNotFoundError(f"'{folder}' has no class sub-folders.")
    paths, labels = [], []
    for i, name in enumerate(classes):
        for root, _, files in os.walk(folder / name):
            for f in sorted(files):
                if f.endswith(_EXTENSIONS):
                    paths.append(os.path.join(root, f))
                    labels.append(i)
    if not paths:
        raise FileNotFoundError(f"No images ({', '.join(_EXTENSIONS[:5])}) under '{folder}'.")
    return paths, labels, classes


def make_dataset(split, batch_size, seed=0, data_dir=None, image_size=224, resize_shorter=256,
                 flip=True, normalize="imagenet", shuffle=None, drop_remainder=None):
    """Batched `(images (B, S, S, 3) float32 ImageNet-normalised, labels (B,) int32)`.

    Args:
        split: a sub-folder of `data_dir` (`"train"`, `"test"`, `"val"`).
        batch_size: batch size.
        seed: shuffle / crop / flip seed.
        data_dir: folder holding `<split>/<class>/*` (default `data/ImageNet`).
        image_size: crop size (224).
        resize_shorter: shorter side before cropping (256).
        flip: random horizontal flip in training.
        normalize: `"imagenet"` (the only option).
        shuffle: default: training split.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).
    """
    if normalize != "imagenet":
        raise ValueError(f"`normalize` must be 'imagenet'; received normalize={normalize!r}.")
    root = pathlib.Path(data_dir or "data/ImageNet").expanduser()
    paths, labels, _ = list_class_folders(root / split)
    return files_dataset(paths, labels, split, batch_size, seed, int(image_size),
                         int(resize_shorter), bool(flip), shuffle, drop_remainder)
