"""The training protocol's callbacks: selection and schedules survive a restart."""

import json

import keras
import numpy as np
import pytest

from keras_glimpse import callbacks


def _model(lr=1e-2):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def _epoch(cb, model, epoch, **logs):
    cb.set_model(model)
    cb.on_epoch_end(epoch, dict(logs))


def _mark(model, value):
    model.layers[0].kernel.assign(np.full((2, 1), value, "float32"))


def _saved_mark(path):
    return float(keras.saving.load_model(str(path)).layers[0].kernel.numpy()[0, 0])


def test_best_checkpoint_keeps_the_best_across_a_restart(tmp_path):
    path = tmp_path / "best.keras"
    model = _model()
    cb = callbacks.BestCheckpoint(path, "val_accuracy", "max")
    for epoch, (acc, mark) in enumerate([(0.5, 1.0), (0.7, 2.0), (0.6, 3.0)]):
        _mark(model, mark)
        _epoch(cb, model, epoch, val_accuracy=acc)
    assert _saved_mark(path) == 2.0
    state = json.loads((tmp_path / "best.keras.json").read_text())
    assert state == {"monitor": "val_accuracy", "mode": "max", "best": 0.7, "epoch": 1}
    # A restarted run (new callback object, as after BackupAndRestore) whose next
    # epoch is worse than the best so far must not replace best.keras ...
    restarted = callbacks.BestCheckpoint(path, "val_accuracy", "max")
    _mark(model, 4.0)
    _epoch(restarted, model, 3, val_accuracy=0.65)
    assert _saved_mark(path) == 2.0
    # ... and a better one must.
    _mark(model, 5.0)
    _epoch(restarted, model, 4, val_accuracy=0.8)
    assert _saved_mark(path) == 5.0 and restarted.best_epoch == 4


def test_keras_own_checkpoint_forgets_the_best_on_restart(tmp_path):
    """The control that shows why BestCheckpoint exists: Keras' callback,
    recreated as after a restart, overwrites the best with a worse epoch."""
    path = tmp_path / "best.keras"
    model = _model()
    first = keras.callbacks.ModelCheckpoint(str(path), monitor="val_accuracy", mode="max",
                                            save_best_only=True, verbose=0)
    _mark(model, 2.0)
    _epoch(first, model, 0, val_accuracy=0.7)
    restarted = keras.callbacks.ModelCheckpoint(str(path), monitor="val_accuracy", mode="max",
                                                save_best_only=True, verbose=0)
    _mark(model, 4.0)
    _epoch(restarted, model, 1, val_accuracy=0.65)
    assert _saved_mark(path) == 4.0


def test_best_checkpoint_minimises_and_ignores_nan(tmp_path):
    path = tmp_path / "best.keras"
    model = _model()
    cb = callbacks.BestCheckpoint(path, "val_rmse", "min")
    _mark(model, 1.0)
    _epoch(cb, model, 0, val_rmse=3.0)
    _mark(model, 2.0)
    _epoch(cb, model, 1, val_rmse=float("nan"))
    _mark(model, 3.0)
    _epoch(cb, model, 2, val_rmse=4.0)
    assert _saved_mark(path) == 1.0 and cb.best == 3.0
    with pytest.raises(KeyError, match="val_rmse.*validation"):
        _epoch(cb, model, 3, loss=1.0)
    with pytest.raises(ValueError, match="mode"):
        callbacks.BestCheckpoint(path, "val_rmse", "lowest")


def test_plateau_schedule_reduces_then_stops_and_resumes(tmp_path):
    state = tmp_path / "schedule_state.json"
    model = _model(lr=1e-2)

    def make():
        cb = callbacks.PlateauSchedule("val_accuracy", "max", factor=0.1, patience=2,
                                       min_learning_rate=1e-4, stop_patience=5,
                                       state_path=state)
        cb.set_model(model)
        return cb

    def lr():
        return float(np.asarray(model.optimizer.learning_rate))

    cb = make()
    cb.on_epoch_end(0, {"val_accuracy": 0.9})
    cb.on_epoch_end(1, {"val_accuracy": 0.8})
    assert lr() == pytest.approx(1e-2)
    cb.on_epoch_end(2, {"val_accuracy": 0.85})  # two epochs without improvement
    assert lr() == pytest.approx(1e-3)
    cb = make()  # restart: the waits come back from the state file
    cb.on_epoch_end(3, {"val_accuracy": 0.8})
    assert cb.state["stop_wait"] == 3 and cb.state["lr_wait"] == 1
    cb.on_epoch_end(4, {"val_accuracy": 0.8})
    assert lr() == pytest.approx(1e-4)
    assert not model.stop_training
    cb.on_epoch_end(5, {"val_accuracy": 0.8})  # 5 epochs since the best (epoch 0)
    assert model.stop_training and cb.state["stopped_epoch"] == 5
    cb.on_epoch_end(6, {"val_accuracy": 0.8})
    assert lr() == pytest.approx(1e-4)  # never below min_learning_rate
    model.stop_training = False
    cb.on_epoch_end(7, {"val_accuracy": 0.95})  # an improvement resets both waits
    assert cb.state["best"] == 0.95 and cb.state["lr_wait"] == 0 and cb.state["stop_wait"] == 0


def test_classification_error_and_learning_rate_in_the_logs():
    model = _model(lr=3e-4)
    logs = {"accuracy": 0.9, "val_accuracy": 0.75, "loss": 1.0}
    for cb in (callbacks.ClassificationError(), callbacks.LearningRateLogger()):
        cb.set_model(model)
        cb.on_epoch_end(0, logs)
    assert logs["error"] == pytest.approx(10.0) and logs["val_error"] == pytest.approx(25.0)
    assert logs["learning_rate"] == pytest.approx(3e-4)


def test_policy_pictures_write_png_and_tensorboard_image(tmp_path):
    import sys

    import tensorflow as tf

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from toy_model import ToyGlimpseModel

    model = ToyGlimpseModel(image_shape=(28, 28, 1), units=4)
    model.build_from_image_shape()
    images = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    cb = callbacks.PolicyPictures(images, tmp_path / "pictures", log_dir=tmp_path / "logs",
                                  every=2)
    cb.set_model(model)
    for epoch in range(4):
        cb.on_epoch_end(epoch, {})
    written = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert written == ["epoch_1.png", "epoch_2.png", "epoch_4.png"]
    from PIL import Image

    picture = np.asarray(Image.open(tmp_path / "pictures" / "epoch_4.png"))
    assert picture.ndim == 3 and picture.shape[1] > 3 * 28  # three images side by side
    assert (picture != 255).any(axis=-1).mean() > 0.1  # not blank
    steps = []
    for event_file in (tmp_path / "logs").glob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                if value.tag == "policy":
                    steps.append(event.step)
    assert sorted(steps) == [1, 2, 4]


def test_stop_on_non_finite_watches_every_loss_not_only_loss():
    cb = callbacks.StopOnNonFinite()
    cb.set_model(_model())
    cb.on_train_batch_end(0, {"loss": 1.0, "policy_loss": 0.5, "accuracy": float("nan")})
    with pytest.raises(callbacks.NonFiniteError, match="policy_loss=nan"):
        cb.on_train_batch_end(1, {"loss": 1.0, "policy_loss": float("nan")})
    with pytest.raises(callbacks.NonFiniteError, match="val_value_loss=inf"):
        cb.on_epoch_end(0, {"loss": 1.0, "val_value_loss": float("inf")})


def test_stop_on_non_finite_checks_every_weight_at_epoch_end():
    model = _model()
    cb = callbacks.StopOnNonFinite()
    cb.set_model(model)
    cb.on_epoch_end(0, {"loss": 1.0})
    model.layers[0].bias.assign(np.array([np.nan], "float32"))
    with pytest.raises(callbacks.NonFiniteError, match="bias"):
        cb.on_epoch_end(1, {"loss": 1.0})


class NaNPolicyModel(keras.Model):
    """A finite `loss` beside a `policy_loss` and a weight that turn NaN at epoch 2."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.step = keras.Variable(0.0, trainable=False)

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        self.step.assign_add(1.0)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x) - y))
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.trainable_weights),
                                           self.trainable_weights))
        bad = self.step > 4.0
        policy_loss = tf.where(bad, float("nan"), 0.0)
        self.dense.bias.assign(tf.where(bad, float("nan"), self.dense.bias))
        return {"loss": loss, "policy_loss": policy_loss}


def test_nan_policy_stops_training_before_any_checkpoint_of_it(tmp_path):
    model = NaNPolicyModel()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    x = np.ones((8, 2), "float32")
    y = np.zeros((8, 1), "float32")
    last = tmp_path / "last.weights.h5"
    with pytest.raises(callbacks.NonFiniteError, match="policy_loss"):
        model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[
            callbacks.StopOnNonFinite(),
            keras.callbacks.ModelCheckpoint(str(last), save_weights_only=True)])
    assert last.is_file()  # written after epochs 1 and 2 (steps 1-4), finite
    model.load_weights(str(last))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
