"""Datasets by name: `keras_glimpse.data.load(name, split, batch_size, ...)`.

Each dataset module exposes `make_dataset(split, batch_size, seed=0,
data_dir=None, **kwargs)` returning a batched `tf.data.Dataset` of
`(images, targets)`. `load` dispatches on the preset's `data.name` and imports
the module only when it is used.
"""

import importlib

# dataset name -> "module:function"
DATASETS = {
    "mnist": "keras_glimpse.data.mnist:make_dataset",
    "translated_mnist": "keras_glimpse.data.cluttered_mnist:make_translated_dataset",
    "cluttered_mnist": "keras_glimpse.data.cluttered_mnist:make_dataset",
    "recap_clutter": "keras_glimpse.data.recap_clutter:make_dataset",
    "cifar": "keras_glimpse.data.cifar:make_dataset",
    "cifar_patchdrop": "keras_glimpse.data.cifar:make_patchdrop_dataset",  # cifar + PatchDrop's
    "fmow": "keras_glimpse.data.fmow:make_dataset",
    "image_folder": "keras_glimpse.data.image_folder:make_dataset",
    "cluttered_digits_canvas": "keras_glimpse.data.digits_canvas:make_dataset",
    "ordinal_clutter": "keras_glimpse.data.ordinal_clutter:make_dataset",
    "elastic_digits": "keras_glimpse.data.elastic_digits:make_dataset",
    "scenes": "keras_glimpse.data.scenes:make_dataset",
    "ade20k": "keras_glimpse.data.scenes:make_ade20k_dataset",
}


class _NameSet(frozenset):
    """A frozenset of names that also holds every `"tfds:<dataset>"` name."""

    def __contains__(self, name):
        return super().__contains__(name) or (isinstance(name, str) and name.startswith("tfds:"))


# Datasets that hold out a validation split (`split="validation"`, fixed by
# seed) from their training data; apps.train selects models on it.
WITH_VALIDATION = _NameSet({
    "mnist", "translated_mnist", "cluttered_mnist", "cluttered_digits_canvas",
    "elastic_digits", "recap_clutter", "ordinal_clutter",
})  # and every "tfds:<dataset>" (keras_glimpse.data.tfds holds out validation likewise)


def get_dataset_fn(name):
    """Returns the `make_dataset`-like function registered under `name`
    (`"tfds:<dataset>"`: `keras_glimpse.data.tfds.make_dataset` for that TFDS dataset)."""
    if isinstance(name, str) and name.startswith("tfds:"):
        from keras_glimpse.data import tfds

        return tfds.dataset_fn(name)
    if name not in DATASETS:
        import difflib

        close = difflib.get_close_matches(str(name), list(DATASETS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise LookupError(
            f"Unknown dataset '{name}'.{hint} Valid names: {', '.join(sorted(DATASETS))}."
        )
    module_name, attr = DATASETS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise NotImplementedError(
            f"Dataset '{name}' is registered but its module {module_name} is not "
            "available in this version of keras_glimpse."
        ) from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise NotImplementedError(
            f"Dataset '{name}': module {module_name} has no function {attr}()."
        ) from e


def load(name, split="train", batch_size=32, seed=0, data_dir=None, **kwargs):
    """Builds the dataset `name`.

    Args:
        name: a key of `DATASETS`, e.g. `"mnist"`, `"cluttered_mnist"`.
        split: `"train"`, `"test"`, and `"validation"` for the datasets in
            `WITH_VALIDATION` (and whatever else the dataset offers).
        batch_size: batch size.
        seed: seed for shuffling and generation.
        data_dir: local folder with the raw files, when the dataset needs one.
        **kwargs: dataset-specific arguments (the preset's `data` table).

    Returns:
        A batched `tf.data.Dataset` of `(images, targets)`.

    Raises:
        LookupError: unknown `name` (the message lists the valid names).
    """
    fn = get_dataset_fn(name)
    return fn(split=split, batch_size=batch_size, seed=seed, data_dir=data_dir, **kwargs)
