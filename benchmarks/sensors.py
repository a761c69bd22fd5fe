"""Throughput of the vectorised glimpse sensors against naive per-sample loops.

For each sensor the same batch is processed by (1) a naive per-sample Python
loop written here (NumPy inside the loop, the way the reference
implementations crop one image at a time), (2) the Keras layer called eagerly,
(3) the layer under `tf.function(jit_compile=True)`. Prints a Markdown table
of glimpses per second and the speed-up over the loop. Times are the best of
the calls made in `--min_time` seconds (each including the copy of the result
to NumPy); the minimum is the least noisy estimate on a shared machine.

    python benchmarks/sensors.py               # default: well under a minute on CPU
    python benchmarks/sensors.py --min_time 3 --only retina
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_glimpse.layers.patch_mask import PatchMask  # noqa: E402
from keras_glimpse.layers.retina_sensor import RetinaSensor  # noqa: E402
from keras_glimpse.layers.roi_align import RoiAlign  # noqa: E402


# --------------------------------------------------------------- naive loops
def naive_retina(images, locations, g, k, s):
    """One image at a time: pad, slice around floor(0.5(l+1)n), average-pool."""
    out = []
    for image, loc in zip(images, locations):
        h, w, _ = image.shape
        scales = []
        for i in range(k):
            size = g * s**i
            half = size // 2
            padded = np.pad(image, ((half, half + 1), (half, half + 1), (0, 0)))
            cy = int(np.floor(0.5 * (loc[0] + 1) * h))
            cx = int(np.floor(0.5 * (loc[1] + 1) * w))
            win = padded[cy : cy + size, cx : cx + size]
            kk = size // g
            scales.append(win.reshape(g, kk, g, kk, -1).mean(axis=(1, 3)))
        out.append(np.stack(scales))
    return np.stack(out)


def naive_patch_mask(images, actions, grid):
    """One image at a time: build the mask patch by patch, then multiply."""
    out = np.empty_like(images)
    _, h, w, _ = images.shape
    ph, pw = h // grid, w // grid
    for b in range(images.shape[0]):
        mask = np.zeros((h, w, 1), images.dtype)
        for i in range(grid * grid):
            if actions[b, i]:
                r, c = ph * (i // grid), pw * (i % grid)
                mask[r : r + ph, c : c + pw] = 1.0
        out[b] = images[b] * mask
    return out


def _naive_axis(start, end, size, p, r, scale):
    start = start * scale
    length = max(end * scale - start, 1.0)
    pos = start + (np.arange(p * r) + 0.5) * length / (p * r)
    valid = (pos >= -1.0) & (pos <= size)
    pos = np.maximum(pos, 0.0)
    lo = np.floor(pos).astype(int)
    edge = lo >= size - 1
    lo = np.where(edge, size - 1, lo)
    frac = np.where(edge, 0.0, pos - lo)
    hi = np.minimum(lo + 1, size - 1)
    return lo, hi, frac, valid


def naive_roi_align(features, boxes, p, scale, r):
    """One ROI at a time (NumPy-vectorised over its bins and samples)."""
    bsz, h, w, c = features.shape
    out = np.empty((bsz, boxes.shape[1], p, p, c), np.float32)
    for b in range(bsz):
        for k, (x1, y1, x2, y2) in enumerate(boxes[b]):
            ylo, yhi, fy, vy = _naive_axis(y1, y2, h, p, r, scale)
            xlo, xhi, fx, vx = _naive_axis(x1, x2, w, p, r, scale)
            fm = features[b]
            fy, fx = fy[:, None, None], fx[None, :, None]
            val = (
                (1 - fy) * (1 - fx) * fm[ylo][:, xlo]
                + (1 - fy) * fx * fm[ylo][:, xhi]
                + fy * (1 - fx) * fm[yhi][:, xlo]
                + fy * fx * fm[yhi][:, xhi]
            ) * (vy[:, None] & vx[None, :])[..., None]
            out[b, k] = val.reshape(p, r, p, r, c).mean(axis=(1, 3))
    return out


# ------------------------------------------------------------------- timing
def _time(fn, min_time, max_repeats=500, warmup=2):
    """Best time of repeated calls, repeating for about `min_time` seconds."""
    for _ in range(warmup):
        fn()
    times, total = [], 0.0
    while total < min_time and len(times) < max_repeats or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        total += times[-1]
    # The minimum is the least noisy estimate on a shared machine (timeit's rule).
    return float(np.min(times)), len(times)


def bench(name, glimpses, naive_fn, layer_fn, args, min_time, check_atol=1e-4, floor_fn=None):
    tf_args = [tf.constant(a) for a in args]
    jitted = tf.function(layer_fn, jit_compile=True)
    ref = naive_fn()
    for variant in (layer_fn, jitted):
        np.testing.assert_allclose(np.asarray(variant(*tf_args)), ref, atol=check_atol)
    rows = [(name, "naive per-sample loop (NumPy)", *_time(naive_fn, min_time, warmup=1))]
    rows.append((name, "layer, eager", *_time(lambda: layer_fn(*tf_args).numpy(), min_time)))
    rows.append((name, "layer, tf.function(jit_compile=True)",
                 *_time(lambda: jitted(*tf_args).numpy(), min_time)))
    if floor_fn is not None:
        floor = tf.function(floor_fn, jit_compile=True)
        rows.append((name, "reference floor: jit `images * 1.0` (one read + write)",
                     *_time(lambda: floor(*tf_args).numpy(), min_time)))
    t_naive = rows[0][2]
    return [(n, v, t, r, glimpses / t, t_naive / t) for n, v, t, r in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--min_time", type=float, default=1.0,
                        help="seconds of timed calls per variant (at least 3 calls)")
    parser.add_argument("--only", choices=["retina", "patch_mask", "roi_align"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    results = []

    if args.only in (None, "retina"):
        b, g, k, s = 128, 12, 3, 2
        images = rng.uniform(size=(b, 60, 60, 1)).astype(np.float32)
        locs = rng.uniform(-1, 1, size=(b, 2)).astype(np.float32)
        layer = RetinaSensor(g, num_scales=k, scale_factor=s)
        results += bench(
            f"RetinaSensor 60x60x1, B={b}, {k} scales of {g}x{g}", b,
            lambda: naive_retina(images, locs, g, k, s), lambda x, l: layer(x, l),
            (images, locs), args.min_time,
        )

    if args.only in (None, "patch_mask"):
        b, grid = 256, 4
        images = rng.normal(size=(b, 32, 32, 3)).astype(np.float32)
        actions = (rng.uniform(size=(b, grid * grid)) < 0.5).astype(np.float32)
        layer = PatchMask(grid_size=grid)
        results += bench(
            f"PatchMask 32x32x3, B={b}, G={grid}", b,
            lambda: naive_patch_mask(images, actions, grid), lambda x, a: layer(x, a),
            (images, actions), args.min_time, floor_fn=lambda x, a: x * 1.0,
        )

    if args.only in (None, "roi_align"):
        b, nbox, p, scale = 64, 3, 5, 15 / 84
        features = rng.normal(size=(b, 15, 15, 128)).astype(np.float32)
        xy = rng.uniform(0, 56, size=(b, nbox, 2))
        wh = rng.uniform(28, 84, size=(b, nbox, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, 83)], axis=-1).astype(np.float32)
        layer = RoiAlign(output_size=p, spatial_scale=scale, sampling_ratio=2)
        results += bench(
            f"RoiAlign 15x15x128, B={b}, {nbox} boxes, {p}x{p}", b * nbox,
            lambda: naive_roi_align(features, boxes, p, scale, 2), lambda f, x: layer(f, x),
            (features, boxes), args.min_time,
        )

    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"\nDevice: {device}; TensorFlow {tf.__version__}; best time of repeated calls.\n")
    print("| sensor | variant | calls | ms / batch | glimpses / s | speed-up vs loop |")
    print("|---|---|---:|---:|---:|---:|")
    for name, variant, t, calls, rate, speedup in results:
        print(f"| {name} | {variant} | {calls} | {1e3 * t:.2f} | {rate:,.0f} | {speedup:.1f}x |")


if __name__ == "__main__":
    main()
