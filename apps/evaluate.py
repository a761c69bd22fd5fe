"""Evaluates a trained model on the test split: Keras metrics, Monte Carlo
error with M=1 and M=10 sampled rollouts (classifiers), and the preset's
paper number beside ours.

    python -m apps.evaluate --model_dir=DIR [--checkpoint=best|last] [--eval_steps=N]
    python -m apps.evaluate --model=NAME --weights=pretrained [--data_dir=DIR]
"""

from absl import app

from apps import quiet
from apps.flags import FLAGS, overrides


def main(argv):
    del argv
    from keras_glimpse import training

    model, config = training.restore_model(FLAGS.model_dir, FLAGS.model, FLAGS.checkpoint,
                                           overrides(), compile=True, weights=FLAGS.weights)
    if FLAGS.data_dir is not None:
        config["data_dir"] = FLAGS.data_dir
    if FLAGS.batch_size is not None:
        config["training"]["batch_size"] = training.count_flag("batch_size", FLAGS.batch_size)
    result = training.evaluate_model(model, config, eval_steps=FLAGS.eval_steps)
    print(training.format_metrics(result, config.get("paper")))
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
