"""Draws what a trained model looks at on a few test images.

Calls `keras_glimpse.viz.visualize(model, images, labels, out_dir)`: the
pictures of the model's method (`keras_glimpse.viz.<method>`), or for other
models the greedy trajectory from `export_outputs` drawn generically
(locations -> boxes, boxes, patch masks).

    python -m apps.visualize --model_dir=DIR [--out_dir=DIR] [--num_images=N]
"""

import os

from absl import app

from apps import quiet
from apps.flags import FLAGS, overrides


def main(argv):
    del argv
    from keras_glimpse import training, viz

    num_images = training.count_flag("num_images", FLAGS.num_images)
    model, config = training.restore_model(FLAGS.model_dir, FLAGS.model, FLAGS.checkpoint,
                                           overrides(), weights=FLAGS.weights)
    if FLAGS.data_dir is not None:
        config["data_dir"] = FLAGS.data_dir
    config["training"]["batch_size"] = num_images
    images, labels = next(iter(training.make_data(config, "test")))
    out_dir = FLAGS.out_dir or os.path.join(FLAGS.model_dir or ".", "viz")
    os.makedirs(out_dir, exist_ok=True)
    written = viz.visualize(model, images, labels, out_dir)
    for path in written or ():
        print(path)
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
