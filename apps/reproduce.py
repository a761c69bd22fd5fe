"""Runs a preset's whole paper protocol and writes results/<model>.json.

    python -m apps.reproduce --model=NAME [--data_dir=DIR] [--seeds=0,1,2]
        [--runs_dir=runs] [--results_dir=results] [--epochs=N] [--nobaselines]
        [--stage_epochs=STAGE=N,...] [--ship_weights]

Every stage and seed trains in its own model_dir under --runs_dir; running the
same command again after a crash or a stopped session resumes where it
stopped (finished runs are reused). Models are selected on the validation
split; the test split is read once per run, by the selected checkpoint.
"""

import os

from absl import app, flags

from apps import quiet
from apps.flags import FLAGS

flags.DEFINE_string("seeds", "0", "Comma-separated seeds, one run each.")
flags.DEFINE_string("results_dir", "results", "Where <model>.json and curves/ go.")
flags.DEFINE_bool("baselines", True, "Also train the preset's same-budget baselines.")
flags.DEFINE_bool("ship_weights", False, "Copy the selected run's weights into the package.")
flags.DEFINE_string("stage_epochs", None, "STAGE=N[,STAGE=N]: shorten (or lengthen) named "
                    "stages of a staged protocol, e.g. agent=10; recorded in the results.")
flags.DEFINE_bool("report_only", False, "Train nothing: write the results of the runs so far "
                  "(runs in progress by their validation curves only).")


def main(argv):
    del argv
    from keras_glimpse import reproduce

    if not FLAGS.model:
        raise ValueError("--model is required; see keras_glimpse.list_models().")
    seeds = [int(s) for s in FLAGS.seeds.split(",") if s.strip()]
    if not seeds:
        raise ValueError(f"--seeds must list at least one integer; received {FLAGS.seeds!r}.")
    stage_epochs = {}
    for item in (FLAGS.stage_epochs or "").split(","):
        if not item.strip():
            continue
        stage, sep, n = item.partition("=")
        if not sep or not n.strip().isdigit():
            raise ValueError(f"--stage_epochs takes STAGE=N[,STAGE=N] (e.g. agent=10); "
                             f"received {FLAGS.stage_epochs!r}.")
        stage_epochs[stage.strip()] = int(n)
    result = reproduce.reproduce(FLAGS.model, data_dir=FLAGS.data_dir, seeds=seeds,
                                 runs_dir=FLAGS.runs_dir, results_dir=FLAGS.results_dir,
                                 epochs=FLAGS.epochs, baselines=FLAGS.baselines,
                                 ship_weights=FLAGS.ship_weights, verbose=FLAGS.verbose,
                                 report_only=FLAGS.report_only, stage_epochs=stage_epochs)
    print(reproduce.format_result(result))
    print(f"wrote {os.path.join(FLAGS.results_dir, FLAGS.model + '.json')}")
    return 0


if __name__ == "__main__":
    app.run(quiet.wrap(main))
