"""Analytic FLOPs of every preset's greedy rollout, beside TensorFlow's profiler count.

    python benchmarks/flops.py [--presets ram_mnist28,recap_mnist28] [--all]
        [--no_profile] [--components]

One row per preset (untrained weights: the count does not depend on them):
the glimpse steps of a greedy rollout of one image, the multiply-accumulates
of one step and of the whole image (`keras_glimpse.flops.count`), FLOPs =
2 x MACs, and the profiler's FLOPs of the traced rollout
(`flops.profiler_flops`): its matrix-product and convolution part, which the
analytic count should equal, and its total, which adds the elementwise ops the
analytic count ignores. The sparse PatchDrop presets also get their count at
25 / 50 / 100 % of the patches kept (their HR classifier reads only those).
The ViT-S/B/L AdaGlimpse presets (224 px, a slow build and trace on a CPU)
are left out unless `--all`. `--components` also prints each preset's table
of components.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # this script's own output only
os.environ.setdefault("KERAS_GLIMPSE_OFFLINE", "1")


def _expensive(preset):
    """Presets whose build and trace take minutes on a CPU: ViT-S/B/L AdaGlimpse."""
    model = preset.get("model", {})
    return preset["builder"] == "adaglimpse" and model.get("backbone_size") != "tiny"


def _run_time_sized(model):
    """MACs the profiler cannot see: the encoder of a sparse PatchDrop's HR
    classifier (`SparsePatchViT`), whose token count is the patches kept."""
    from keras_glimpse import flops

    net = getattr(model, "hr_net", None)
    if not getattr(net, "takes_actions", False) or model.stage == "classifier":
        return 0
    p = net.patch
    return flops.layer_macs(net.encoder, (1, model.num_patches, p, p, model.image_shape[-1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="", help="comma-separated names (default: all cheap)")
    parser.add_argument("--all", action="store_true", help="include the ViT-S/B/L AdaGlimpse")
    parser.add_argument("--no_profile", action="store_true", help="skip the profiler columns")
    parser.add_argument("--components", action="store_true", help="print each report's table")
    args = parser.parse_args()

    import keras_glimpse
    from keras_glimpse import flops, registry

    names = [n for n in args.presets.split(",") if n] or list(keras_glimpse.list_models())
    header = ("preset", "glimpses", "MACs/step", "MACs/image", "FLOPs/image",
              "profiler matmul", "profiler total", "match", "seconds")
    rows, skipped, tables, sparse = [], [], [], []
    for name in names:
        if not args.all and not args.presets and _expensive(registry.get_preset(name)):
            skipped.append(name)
            continue
        start = time.time()
        model = keras_glimpse.build(name, compile=False)
        report = flops.count(model)
        matmul = total = match = "-"
        unseen, mark = _run_time_sized(model), ""
        if unseen:  # sparse PatchDrop: FLOPs at 25 / 50 / 100 % of the patches kept
            mark = "*"
            n = model.num_patches
            for k in (n // 4, n // 2, n):
                kept = flops.count(model, patches_kept=k)
                sparse.append((name, f"{k} of {n}", f"{kept.per_image_macs:,}",
                               f"{kept.per_image_flops:,}"))
        if not args.no_profile:
            profiled = flops.profiler_flops(model)
            matmul_value = flops.matmul_flops(profiled)
            matmul, total = f"{matmul_value:,}", f"{sum(profiled.values()):,}"
            expected = report.per_image_flops - 2 * unseen
            match = ("exact" if matmul_value == expected
                     else f"{expected / matmul_value - 1:+.2%}") + mark
        rows.append((name, str(report.num_steps), f"{report.per_step_macs:,}",
                     f"{report.per_image_macs:,}", f"{report.per_image_flops:,}", matmul, total,
                     match, f"{time.time() - start:.1f}"))
        tables.append(report.as_table())
        print(f"{name}: {report.per_image_flops:,} FLOPs ({rows[-1][-1]} s)", flush=True)

    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print()
    for row in [header] + rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))
    if sparse:
        print("\n* sparse PatchDrop: its HR ViT reads the K patches the policy keeps, K known"
              " only at run time, so the profiler cannot size it ('incomplete shapes'); the"
              " match compares the rest. Rows above count every patch kept; per K:")
        head = ("preset", "patches kept", "MACs/image", "FLOPs/image")
        widths = [max(len(r[i]) for r in sparse + [head]) for i in range(len(head))]
        for row in [head] + sparse:
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths))))
    if skipped:
        print(f"\nskipped (slow to build on a CPU; --all includes them): {', '.join(skipped)}")
    print("\nMACs: multiply-accumulates of matrix products and convolutions (keras_glimpse.flops);"
          " FLOPs = 2 x MACs. 'profiler matmul': TensorFlow's profiler count of the MatMul,"
          " BatchMatMul, Einsum and Conv2D ops of the traced greedy rollout (batch 1);"
          " 'profiler total' adds the elementwise ops it has statistics for.")
    if args.components:
        print("\n" + "\n\n".join(tables))


if __name__ == "__main__":
    main()
