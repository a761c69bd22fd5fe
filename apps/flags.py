"""The flags of every app, defined once. All are optional at import time;
each app checks the ones it needs in `main()`."""

from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_string("model", None, "Registered model name (see keras_glimpse.list_models()).")
flags.DEFINE_string("model_dir", None, "Folder for config.json, checkpoints, logs and the export.")
flags.DEFINE_string("data_dir", None, "Folder with the dataset's raw files (optional).")
flags.DEFINE_string("stage", None, "Training stage (training.stages.<stage> of the preset).")
flags.DEFINE_multi_string(
    "init_from", [], "apps.train: start this stage from an earlier stage: its model_dir (best, "
    "else last checkpoint), a .keras or a .weights.h5 file; PART[,PART]=PATH takes only those "
    "parts (e.g. lr_classifier=runs/lr). Read once when training starts, never on resume.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "Distribution strategy; multi_worker reads TF_CONFIG.")
flags.DEFINE_integer("epochs", None, "Epochs (default: the preset's).")
flags.DEFINE_integer("batch_size", None, "Global batch size (default: the preset's).")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: one pass).")
flags.DEFINE_integer("eval_steps", None, "Evaluation batches (default: the whole test split).")
flags.DEFINE_multi_string("override", [], "key=value overriding a model argument; "
                          "training.<key>=value and data.<key>=value override those tables.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")
flags.DEFINE_string("weights", None, "With --model instead of --model_dir: 'pretrained' (the "
                    "weights shipped for the preset) or the path of a .keras / .weights.h5 file.")
flags.DEFINE_enum("checkpoint", "best", ["best", "last"], "Which checkpoint to load.")
flags.DEFINE_string("export_dir", None, "SavedModel destination (default: <model_dir>/export).")
flags.DEFINE_bool("overwrite", False, "apps.export: replace an earlier export at --export_dir; "
                  "apps.train: delete the run already in --model_dir and start afresh.")
flags.DEFINE_bool("continue_run", False, "apps.train: train the finished run in --model_dir "
                  "further, from its last checkpoint up to --epochs.")
flags.DEFINE_integer("num_samples", 10, "M, rollouts averaged by the export's `sample` endpoint.")
flags.DEFINE_string("runs_dir", "runs", "apps.reproduce / apps.compare: parent folder of "
                    "every reproduce run's model_dir.")
flags.DEFINE_string("out_dir", None, "Output folder (apps.visualize: default <model_dir>/viz; "
                    "apps.compare: default results/compare).")
flags.DEFINE_integer("num_images", 8, "Images to visualise.")


# PatchDrop stage checkpoints, kept for old command lines: --hr_classifier=PATH
# is --init_from=hr_classifier=PATH (see init_from()).
flags.DEFINE_string("hr_classifier", None, "PatchDrop: = --init_from=hr_classifier=PATH.")
flags.DEFINE_string("lr_classifier", None, "PatchDrop: = --init_from=lr_classifier=PATH.")
flags.DEFINE_string("policy", None, "PatchDrop: = --init_from=policy=PATH.")
STAGE_PATH_FLAGS = ("hr_classifier", "lr_classifier", "policy")


def overrides():
    """The `--override key=value` flags as a dict."""
    from keras_glimpse.training import parse_overrides

    return parse_overrides(FLAGS.override)


def init_from():
    """`--init_from` entries, plus the PatchDrop stage-path flags as `PART=PATH`."""
    result = list(FLAGS.init_from or ())
    for key in STAGE_PATH_FLAGS:
        if getattr(FLAGS, key, None):
            result.append(f"{key}={getattr(FLAGS, key)}")
    return result
