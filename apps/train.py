"""Trains a registered model: config -> strategy -> build -> fit -> evaluate -> export.

    python -m apps.train --model=NAME --model_dir=DIR [--data_dir=DIR] [--stage=S]
        [--strategy=default|mirrored|multi_worker] [--epochs=N] [--batch_size=N]
        [--steps_per_epoch=N] [--override key=value ...]
"""

import sys

from absl import app

from apps import quiet
from apps.flags import FLAGS, overrides


def main(argv):
    del argv
    from keras_glimpse import training

    config = training.resolve_config(
        FLAGS.model, model_dir=FLAGS.model_dir, data_dir=FLAGS.data_dir, stage=FLAGS.stage,
        strategy=FLAGS.strategy, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        steps_per_epoch=FLAGS.steps_per_epoch, eval_steps=FLAGS.eval_steps,
        overrides=overrides(), seed=FLAGS.seed, verbose=FLAGS.verbose)
    try:
        result = training.run_training(config)
    except training.TrainingDivergedError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(training.format_metrics(result["metrics"], config["paper"]))
    if result["export_path"]:
        print(f"exported to {result['export_path']}")
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
