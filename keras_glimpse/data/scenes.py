"""Readers for the AdaGlimpse scene datasets (local folders only; no downloads).

Layouts (spec B11):
- `imagenet`: `<data_dir>/{train,val}/<class>/*.JPEG` (class folders, sorted -> label).
- `coco`: flat `<data_dir>/{train2014,val2014,test2014}/*.jpg` (reconstruction).
- `ade20k`: `<data_dir>/images/{training,validation}/*.jpg` and, for segmentation,
  `<data_dir>/annotations/{training,validation}/*.png`; label 0 (unlabelled) -> 255
  (ignored), labels 1..150 -> 0..149.
- `sun360`: `<data_dir>/<list file>` of relative panorama paths (first 10% of
  lines = val, the rest train); the class is the first two path components.
- `folder`: any folder of images (reconstruction, test only in the original).

Evaluation images are squash-resized to `image_size` (no crop, aspect ratio not
kept), as the original; training adds a horizontal flip. Images are float32 in
[0, 1]; normalise in the model (`pixel_mean`/`pixel_std`). Every reader raises
`FileNotFoundError` naming the missing folder and what to put there.
"""

import pathlib

import tensorflow as tf

from keras_glimpse.data import pipeline

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SUN360_LIST = "sun360-dataset26-random.txt"


def _require(path, what):
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"'{path}' does not exist: {what}")
    return path


def _images_in(folder):
    files = sorted(str(p) for p in pathlib.Path(folder).rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under '{folder}'.")
    return files


def _load(path, size, channels=3):
    img = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    img = tf.image.resize(tf.cast(img, tf.float32) / 255.0, size, method="bicubic")
    return tf.clip_by_value(img, 0.0, 1.0)


def list_files(layout, data_dir, split):
    """`(image_paths, labels_or_mask_paths_or_None)` for a layout and split."""
    root = _require(data_dir, f"pass --data_dir pointing at the {layout} dataset root.")
    if layout == "imagenet":
        folder = _require(root / ("train" if split == "train" else "val"),
                          "expected ImageNet class folders train/<wnid>/ and val/<wnid>/.")
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        paths, labels = [], []
        for i, c in enumerate(classes):
            files = _images_in(folder / c)
            paths += files
            labels += [i] * len(files)
        return paths, labels
    if layout == "coco":
        name = {"train": "train2014", "val": "val2014", "test": "test2014"}[split]
        return _images_in(_require(root / name, "expected COCO 2014 folders train2014/, val2014/.")), None
    if layout == "ade20k":
        name = "training" if split == "train" else "validation"
        images = _images_in(_require(root / "images" / name,
                                     "expected ADEChallengeData2016/images/{training,validation}."))
        ann = root / "annotations" / name
        masks = [str(ann / (pathlib.Path(p).stem + ".png")) for p in images] if ann.exists() else None
        return images, masks
    if layout == "sun360":
        listing = _require(root / SUN360_LIST, "expected the SUN360 list file "
                           f"{SUN360_LIST} of relative panorama paths.")
        lines = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        n_val = len(lines) // 10
        lines = lines[:n_val] if split != "train" else lines[n_val:]
        classes = sorted({"/".join(line.split("/")[:2]) for line in lines})
        index = {c: i for i, c in enumerate(classes)}
        return [str(root / line) for line in lines], [index["/".join(line.split("/")[:2])]
                                                       for line in lines]
    if layout == "folder":
        return _images_in(_require(root, "expected a folder of images.")), None
    raise ValueError(f"`layout` must be imagenet, coco, ade20k, sun360 or folder; received {layout!r}.")


def make_dataset(split, batch_size, seed=0, data_dir=None, layout="folder", image_size=(224, 224),
                 task="reconstruction"):
    """Batched `(images, targets)`: targets are the images (reconstruction), int labels
    (classification) or `(H, W)` int32 masks with 255 = ignore (ADE20K segmentation)."""
    if data_dir is None:
        raise FileNotFoundError(f"The {layout} dataset needs --data_dir (no download).")
    paths, extra = list_files(layout, data_dir, split)
    size = tuple(int(s) for s in image_size)
    train = split == "train"
    if task == "segmentation":
        if extra is None:
            raise FileNotFoundError(f"No annotations/ folder next to images/ under '{data_dir}'.")

        def load_pair(p, m):
            img = _load(p, size)
            mask = tf.io.decode_png(tf.io.read_file(m), channels=1)
            mask = tf.image.resize(mask, size, method="nearest")[..., 0]
            mask = tf.cast(mask, tf.int32)
            mask = tf.where(mask == 0, 255, mask - 1)
            if train:
                flip = tf.random.stateless_uniform([], [seed, 0]) < 0.5
                img = tf.where(flip, img[:, ::-1], img)
                mask = tf.where(flip, mask[:, ::-1], mask)
            return img, mask

        ds = tf.data.Dataset.from_tensor_slices((paths, extra)).map(load_pair, tf.data.AUTOTUNE)
    elif task == "classification":
        if extra is None:
            raise ValueError(f"Layout {layout!r} has no class labels.")
        ds = tf.data.Dataset.from_tensor_slices((paths, extra)).map(
            lambda p, y: (_load(p, size), tf.cast(y, tf.int32)), tf.data.AUTOTUNE)
    else:
        ds = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda p: (_load(p, size),) * 2, tf.data.AUTOTUNE)
    if train and task != "segmentation":
        ds = ds.map(lambda x, y: (tf.image.random_flip_left_right(x, seed=seed), y))
    return pipeline.batched(ds, split, batch_size, seed, shuffle_buffer=min(len(paths), 10000))


def make_ade20k_dataset(split, batch_size, seed=0, data_dir=None, **kwargs):
    """ADE20K segmentation (ADEChallengeData2016 layout)."""
    kwargs.setdefault("task", "segmentation")
    return make_dataset(split, batch_size, seed, data_dir, layout="ade20k", **kwargs)
