"""fMoW (functional Map of the World, 62 classes) from PatchDrop's CSV files.

`<data_dir>/train.csv` and `<data_dir>/test.csv` (default `data/fMoW`) have
**no header**; each row is `label,image_path` with the integer class id
(0..61) and the path of an image crop (absolute, or relative to `data_dir`,
then to the working directory as the reference code opens it). The crops
are cut from the fMoW tiles with the bounding boxes of the `.json`
metadata plus context (see the fMoW instructions). A malformed row raises a
`ValueError` naming the file and line.

Preprocessing (spec A2): resize the shorter side to 224, random 224 crop
(training, **no flip**) or centre crop (test), ImageNet mean/std.
"""

import csv
import os
import pathlib

from keras_glimpse.data.image_folder import files_dataset

NUM_CLASSES = 62


def read_csv(path, num_classes=NUM_CLASSES, base_dir=None):
    """Parses a header-less `label,path` CSV -> `(paths, labels)`.

    Raises:
        FileNotFoundError: no such CSV.
        ValueError: a malformed row; the message names the file and line.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No fMoW CSV at '{path}'. Create train.csv / test.csv (no header; rows "
            "'label,image_path') as the PatchDrop README describes and pass their folder "
            "as --data_dir.")
    paths, labels = [], []
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{path}, line {line_no}"
            if len(row) < 2:
                raise ValueError(f"{where}: expected 'label,image_path', got {row!r}.")
            label_text, image = row[0].strip(), row[1].strip()
            try:
                label = int(label_text)
            except ValueError:
                raise ValueError(
                    f"{where}: the label {label_text!r} is not an integer class id "
                    "(the CSV must have no header row).") from None
            if not 0 <= label < num_classes:
                raise ValueError(f"{where}: label {label} is outside 0..{num_classes - 1}.")
            if not image:
                raise ValueError(f"{where}: empty image path.")
            if not os.path.isabs(image) and base_dir is not None:
                candidate = pathlib.Path(base_dir) / image
                if candidate.exists() or not pathlib.Path(image).exists():
                    image = str(candidate)
            paths.append(image)
            labels.append(label)
    if not paths:
        raise ValueError(f"{path}: no rows.")
    return paths, labels


def make_dataset(split, batch_size, seed=0, data_dir=None, image_size=224, num_classes=NUM_CLASSES,
                 csv_path=None, shuffle=None, drop_remainder=None):
    """Batched `(images (B, S, S, 3) ImageNet-normalised, labels (B,) int32)`.

    Args:
        split: `"train"` or `"test"` (reads `<split>.csv`).
        batch_size: batch size.
        seed: shuffle / crop seed.
        data_dir: folder of the CSVs (default `data/fMoW`).
        image_size: crop size, also the shorter side after resizing (224).
        num_classes: valid labels are 0..num_classes-1.
        csv_path: explicit CSV path (overrides `data_dir/<split>.csv`).
        shuffle: default: training split.
        drop_remainder: drop the last partial batch (default: the training
            split does, so its batches have a static size; see `pipeline.batched`).
    """
    root = pathlib.Path(data_dir or "data/fMoW").expanduser()
    path = pathlib.Path(csv_path) if csv_path else root / f"{split}.csv"
    paths, labels = read_csv(path, num_classes, base_dir=root)
    return files_dataset(paths, labels, split, batch_size, seed, int(image_size), int(image_size),
                         flip=False, shuffle=shuffle, drop_remainder=drop_remainder)
