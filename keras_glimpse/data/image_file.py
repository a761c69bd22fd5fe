"""One image file -> one model-ready array, as the preset's data pipeline makes them.

`load_image(path, image_shape, data=None)` decodes a PNG / JPEG / BMP / GIF
(first frame) with the decoder of `keras_glimpse.data.image_folder`, converts
it to the model's channels (grayscale or RGB), resizes it to the model's
`(H, W)` (no aspect-preserving crop: the whole picture is squeezed in) and
scales it like the preset's dataset does (`input_normalization`): float32 in
`[0, 1]` for the MNIST-based datasets, CIFAR's or ImageNet's mean/std for the
PatchDrop presets, MNIST's mean/std for the ordinal localizer.

Used by `python -m apps.predict`.
"""

import pathlib

import numpy as np


def input_normalization(data=None):
    """`(mean, std)` that the preset's dataset applies after scaling pixels to
    `[0, 1]`, or `None` when it feeds `[0, 1]` pixels as they are.

    Args:
        data: the preset's `data` table (`config["data"]`), e.g.
            `{"name": "cifar_patchdrop", "normalize": "patchdrop"}`; None: `[0, 1]`.
    """
    data = dict(data or {})
    name = str(data.get("name") or "")
    normalize = data.get("normalize")
    if name in ("cifar", "cifar_patchdrop"):
        default = "patchdrop" if name == "cifar_patchdrop" else "none"
        if (default if normalize is None else normalize) in (True, "patchdrop"):
            from keras_glimpse.data import cifar

            return cifar.MEAN, cifar.STD
        return None
    if name in ("image_folder", "fmow"):
        from keras_glimpse.data import image_folder

        return image_folder.IMAGENET_MEAN, image_folder.IMAGENET_STD
    if name == "ordinal_clutter":
        from keras_glimpse.data import ordinal_clutter

        return (np.float32(ordinal_clutter.MEAN), np.float32(ordinal_clutter.STD))
    return None


def load_image(path, image_shape, data=None):
    """Reads the image file `path` as the model with `image_shape` takes it.

    Args:
        path: a PNG, JPEG, BMP or GIF file.
        image_shape: the model's `(H, W, C)`; `C` must be 1 (grayscale) or 3 (RGB).
        data: the preset's `data` table, for its input scaling
            (`input_normalization`); None: float32 pixels in `[0, 1]`.

    Returns:
        float32 `(H, W, C)` numpy array (add a batch axis to feed the model).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is a folder or not a decodable image, or the model's
            channels are neither 1 nor 3.
    """
    import tensorflow as tf

    from keras_glimpse.data.image_folder import decode_image

    path = pathlib.Path(path).expanduser()
    height, width, channels = (int(d) for d in image_shape)
    if not path.exists():
        raise FileNotFoundError(f"Image file '{path}' does not exist.")
    if path.is_dir():
        raise ValueError(f"'{path}' is a folder; pass one image file (PNG or JPEG).")
    if channels not in (1, 3):
        raise ValueError(f"Cannot convert '{path.name}' for a model with {channels} input "
                         "channels: only 1 (grayscale) or 3 (RGB) are supported.")
    try:
        image = decode_image(str(path))  # (h, w, 3) float32 in [0, 1]
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError) as e:
        message = str(getattr(e, "message", e)).splitlines()[0][:120] if str(e) else ""
        raise ValueError(f"'{path}' is not a readable image (PNG, JPEG, BMP or GIF)"
                         f"{': ' + message if message else ''}.") from None
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"'{path}' is an empty image ({image.shape[0]}x{image.shape[1]}).")
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    if tuple(image.shape[:2]) != (height, width):
        image = tf.image.resize(image, (height, width), method="bilinear", antialias=True)
    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    norm = input_normalization(data)
    if norm is not None:
        mean, std = norm
        image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return image.astype(np.float32)
