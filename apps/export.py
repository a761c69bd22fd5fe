"""Exports a trained model as a SavedModel with `serve` and `sample` endpoints.

    python -m apps.export --model_dir=DIR [--export_dir=DIR] [--num_samples=M] [--overwrite]

The destination must be new or an earlier export (replaced with --overwrite);
a training model_dir or any other non-empty folder is refused.
"""

import os

from absl import app

from apps import quiet
from apps.flags import FLAGS, overrides


def main(argv):
    del argv
    from keras_glimpse import export, training

    if not FLAGS.model_dir and not FLAGS.export_dir:
        raise app.UsageError("Pass --model_dir (a trained model) and/or --export_dir.")
    path = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export")
    export.check_destination(path, FLAGS.overwrite)  # before the slow restore below
    model, _ = training.restore_model(FLAGS.model_dir, FLAGS.model, FLAGS.checkpoint,
                                      overrides(), weights=FLAGS.weights)
    path = export.export_saved_model(model, path, num_samples=FLAGS.num_samples,
                                     overwrite=FLAGS.overwrite)
    print(f"exported to {path}")
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
