"""Trains a registered model: config -> strategy -> build -> fit -> evaluate -> export.

    python -m apps.train --model=NAME --model_dir=DIR [--data_dir=DIR] [--stage=S]
        [--init_from=<model_dir of the previous stage> | --init_from=PART=PATH ...]
        [--strategy=default|mirrored|multi_worker] [--epochs=N] [--batch_size=N]
        [--steps_per_epoch=N] [--override key=value ...] [--overwrite | --continue_run]

An interrupted run resumes when the same command is run again; a finished run
is refused unless --continue_run (train further, up to --epochs) or --overwrite
(replace it); a --model_dir holding a different run is refused.
"""

import sys

from absl import app

from apps import quiet
from apps.flags import FLAGS, init_from, overrides


def main(argv):
    del argv
    from keras_glimpse import training

    config = training.resolve_config(
        FLAGS.model, model_dir=FLAGS.model_dir, data_dir=FLAGS.data_dir, stage=FLAGS.stage,
        strategy=FLAGS.strategy, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        steps_per_epoch=FLAGS.steps_per_epoch, eval_steps=FLAGS.eval_steps,
        overrides=overrides(), seed=FLAGS.seed, verbose=FLAGS.verbose, init_from=init_from())
    try:
        result = training.run_training(config, overwrite=FLAGS.overwrite,
                                       continue_run=FLAGS.continue_run)
    except training.TrainingDivergedError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(training.format_metrics(result["metrics"], config["paper"]))
    if result["export_path"]:
        print(f"exported to {result['export_path']}")
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
