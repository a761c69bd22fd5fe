"""FLOPs accounting (keras_glimpse.flops): single layers against hand formulas,
and every model family's analytic count of one greedy rollout against
TensorFlow's own profiler on the traced graph of that rollout.

Tolerance of the profiler comparison: **exact (0 %)** on the matrix-product
and convolution ops (`flops.MATMUL_OPS`: MatMul, BatchMatMul*, Conv2D, ...).
The profiler counts such an op as 2 x (output elements) x (contracted size),
the same definition as the analytic MACs x 2, and a batch-1 trace has fully
static shapes, so any difference is a miscount: a component counted once
instead of per step, a wrong gate factor, a missed attention product. An exact
match catches even RAM's 256-MAC baseline (0.1 % of its rollout), which a
10-15 % tolerance would not. The rest of the profiler's count (the
elementwise ops it has statistics for: bias adds, activations, softmax,
means; the analytic count ignores them) is bounded separately: at most
ELEMENTWISE_SHARE (5 %) on top of the matrix part (measured: 0.4 % RAM to
4 % AdaGlimpse reconstruction), which is the stated size of what the
analytic count leaves out. Two things are made visible to the profiler
first: RECAP's summarizer LSTM is traced unrolled so that it sees every step
(`flops.profiler_flops`), and Keras' multi-head attention's `Einsum` ops,
which TF has no statistics for, get TF's BatchMatMul rule
(`flops.graph_flops`). The sparse PatchDrop's ViT, sized at run time by the
patches kept, is checked at fixed sizes (the last test).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_glimpse
from keras_glimpse import flops
from keras_glimpse.backbones.resnet import ResNet
from keras_glimpse.layers.glimpse_actor_critic import GlimpseActorCritic
from keras_glimpse.layers.recurrent_core import RecurrentCore
from keras_glimpse.layers.vit_block import ViTBlock

ELEMENTWISE_SHARE = 0.05


def _built(layer, shape):
    layer.build(shape)
    return layer


# --------------------------------------------------------------------------- single layers
def test_dense_is_rows_times_inputs_times_units():
    dense = _built(keras.layers.Dense(7), (None, 5))
    assert flops.layer_macs(dense, (3, 5)) == 3 * 5 * 7
    assert flops.layer_macs(dense, (2, 4, 5)) == 2 * 4 * 5 * 7  # a dense layer on tokens
    assert flops.layer_macs(dense, (None, 5)) == 5 * 7  # an unknown batch counts as 1


@pytest.mark.parametrize("padding, out", [("same", 5), ("valid", 4)])
def test_conv2d_is_output_pixels_times_kernel_volume(padding, out):
    conv = _built(keras.layers.Conv2D(8, 3, strides=2, padding=padding), (None, 9, 9, 3))
    assert flops.layer_macs(conv, (2, 9, 9, 3)) == 2 * out * out * 8 * (3 * 3 * 3)


@pytest.mark.parametrize("cell_type, gates", [("lstm", 4), ("gru", 3), ("rnn", 1)])
def test_recurrent_cells_are_gates_times_inputs_plus_state(cell_type, gates):
    inputs, units = 5, 6
    core = RecurrentCore(units, cell_type=cell_type)
    core.build((None, inputs))
    per_row = gates * (inputs + units) * units  # [x, h] @ W for every gate
    assert flops.layer_macs(core, (3, inputs)) == 3 * per_row
    assert flops.layer_macs(core.cell, (1, inputs)) == per_row


def test_a_sequence_rnn_is_its_cell_at_every_step():
    lstm = _built(keras.layers.LSTM(6), (None, 7, 5))
    assert flops.layer_macs(lstm, (2, 7, 5)) == 2 * 7 * flops.layer_macs(lstm.cell, (1, 5))


def _profiled_matmul(fn, shape):
    return flops.matmul_flops(flops.graph_flops(fn, tf.TensorSpec(shape, tf.float32)))


def test_attention_layers_match_the_profiler():
    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)
    mha.build((None, 6, 16), (None, 6, 16))

    def self_attention(x):
        return mha(x, x)

    t, d = 6, 16  # 4 projections of d x d per token, then Q K^T and A V
    assert flops.layer_macs(mha, (1, t, d)) == 4 * t * d * d + 2 * t * t * d
    assert 2 * flops.layer_macs(mha, (1, t, d)) == _profiled_matmul(self_attention, (1, t, d))
    block = _built(ViTBlock(dim=16, num_heads=4), (None, None, 16))
    n, d = 9, 16
    assert flops.layer_macs(block, (1, n, d)) == (n * d * (3 * d + d + 4 * d + 4 * d)
                                                   + 2 * n * n * d)
    assert 2 * flops.layer_macs(block, (1, n, d)) == _profiled_matmul(block, (1, n, d))


def test_critic_and_resnets_match_the_profiler():
    """Layers no greedy rollout of a small preset runs: AdaGlimpse's critics, the
    ImageNet-style ResNet-18 and the functional keras.applications ResNet-50."""
    critic = GlimpseActorCritic("critic", hidden_units=32)
    state = {"patches": tf.zeros((1, 4, 16, 16, 3)), "importance": tf.zeros((1, 4, 1)),
             "coords": tf.zeros((1, 4, 4)), "latent": tf.zeros((1, 4, 8)),
             "mask": tf.zeros((1, 4, 1))}
    critic(state, tf.zeros((1, 3)))

    def q_value(patches):
        return critic(dict(state, patches=patches), tf.zeros((1, 3)))

    profiled = _profiled_matmul(q_value, (1, 4, 16, 16, 3))
    assert 2 * flops.layer_macs(critic, (1, 4, 16, 16, 3)) == profiled
    for net, shape in ((ResNet(depth=18, num_classes=5), (1, 56, 56, 3)),
                       (ResNet(depth=50, input_shape=(32, 32, 3)), (1, 32, 32, 3))):
        net.build(shape)
        assert 2 * flops.layer_macs(net, shape) == _profiled_matmul(net, shape), net.depth


def test_a_layer_with_weights_and_no_counter_is_an_error():
    class Opaque(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 3))

    with pytest.raises(TypeError, match="No MAC counter for Opaque"):
        flops.layer_macs(_built(Opaque(), (None, 4)), (1, 4))


# --------------------------------------------------------------------------- the report
def test_ram_report_by_hand():
    model = keras_glimpse.build("ram_mnist28", compile=False)
    t, h = model.num_glimpses, model.hidden_units
    glimpse = model.num_scales * model.glimpse_size ** 2 * model.image_shape[-1]
    glimpse_network = (glimpse * model.glimpse_units + 2 * model.location_units
                       + (model.glimpse_units + model.location_units) * h)
    core = 2 * h * h  # ReLU RNN: [g_t, h_{t-1}] @ W
    policy = h * model.location_hidden_units + model.location_hidden_units * 2
    report = flops.count(model)
    assert report.num_steps == t
    assert report.per_step == {"glimpse_network": glimpse_network, "core": core,
                               "location_head": policy, "baseline": h}
    # T glimpses; the policy and its baseline decide the T - 1 after the first.
    expected = t * (glimpse_network + core) + (t - 1) * (policy + h) + h * model.num_classes
    assert report.per_image_macs == expected
    assert report.per_image_flops == 2 * expected
    assert report.macs_for_steps(t) == expected
    assert report.macs_for_steps(1) == glimpse_network + core + h * model.num_classes
    table = report.as_table()
    assert "ram_mnist28" in table and f"{expected:,} MACs" in table
    assert table.count("\n") >= len(report.components) + 2


def test_count_names_the_families_it_knows():
    with pytest.raises(TypeError, match="No FLOPs plan for Sequential"):
        flops.count(keras.Sequential([keras.layers.Dense(2)]), image_shape=(4, 4, 1))


# --------------------------------------------------------------------------- every family
# The smallest preset of each family, plus the stages, tasks and backbones
# whose greedy path runs other layers (overrides of the same small presets).
FAMILIES = [
    ("ram_mnist28", {}),
    ("uram_mnist28", {}),
    ("recap_mnist28", {}),
    ("recap_mnist28", {"stage": "pretrain"}),
    ("patchdrop_digits64", {}),
    ("patchdrop_digits64", {"stage": "finetune2stream"}),
    ("patchdrop_digits64", {"stage": "classifier", "resolution": "lr"}),
    ("patchdrop_digits64", {"hr_backbone": "resnet10", "policy_backbone": "resnet10"}),
    ("ordinal_cluttered84", {}),
    ("adaglimpse_digits_classification", {}),
    # The other two task heads; 2 glimpses instead of 4 halve the trace time.
    ("adaglimpse_digits_reconstruction", {"num_glimpses": 2}),
    ("adaglimpse_digits_reconstruction", {"task": "segmentation", "num_classes": 10,
                                          "num_glimpses": 2}),
]


@pytest.mark.parametrize("preset, overrides", FAMILIES,
                         ids=[p + "".join(f"-{v}" for v in o.values()) for p, o in FAMILIES])
def test_analytic_count_equals_the_profiler(preset, overrides):
    model = keras_glimpse.build(preset, compile=False, **overrides)
    report = flops.count(model)
    profiled = flops.profiler_flops(model)
    matmul = flops.matmul_flops(profiled)
    assert report.per_image_flops == matmul, (
        f"{preset} {overrides}: analytic {report.per_image_flops:,} FLOPs, profiler "
        f"{matmul:,} ({ {k: v for k, v in profiled.items() if k in flops.MATMUL_OPS} })\n"
        + report.as_table())
    assert matmul <= sum(profiled.values()) <= (1 + ELEMENTWISE_SHARE) * matmul
    assert report.per_image_macs == sum(report.per_image.values())
    # The profiler traced the LSTM unrolled and left it as it was.
    assert not any(layer.unroll for layer in model._flatten_layers()
                   if isinstance(layer, keras.layers.RNN))


def test_one_more_glimpse_adds_one_step():
    short = flops.count(keras_glimpse.build("ram_mnist28", compile=False, num_glimpses=3))
    long = flops.count(keras_glimpse.build("ram_mnist28", compile=False, num_glimpses=4))
    assert long.per_image_macs - short.per_image_macs == long.per_step_macs
    assert long.macs_for_steps(3) == short.per_image_macs


def test_sparse_patchdrop_costs_what_it_keeps():
    """The sparse PatchDrop's HR classifier (`SparsePatchViT`) embeds and attends
    to the K kept patches only. K is computed at run time, so the profiler
    cannot size that ViT inside the rollout ("incomplete shapes"): it is
    checked at fixed K (constant actions make K static), and the rollout's
    profiler count is everything else, exactly."""
    model = keras_glimpse.build("patchdrop_digits64_sparse", compile=False)
    vit, n = model.hr_net, model.num_patches
    costs = []
    for k in (1, n // 4, n // 2, n):
        actions = tf.constant(np.arange(n)[None] < k, tf.float32)

        def classify(images):
            return vit(images, actions)

        costs.append(flops.sparse_vit_macs(vit, k))
        assert 2 * costs[-1] == _profiled_matmul(classify, (1,) + model.image_shape), k
        assert flops.count(model, patches_kept=k).per_image["hr_classifier"] == costs[-1]
    assert costs == sorted(costs) and costs[0] < costs[-1] / 4  # falls with the patches kept
    full = flops.count(model)  # default: every patch kept
    assert full.per_image["hr_classifier"] == costs[-1]
    encoder = flops.layer_macs(vit.encoder, (1, n, vit.patch, vit.patch, model.image_shape[-1]))
    profiled = flops.matmul_flops(flops.profiler_flops(model))
    assert profiled == 2 * (full.per_image_macs - encoder)
    with pytest.raises(ValueError, match="patches_kept"):
        flops.count(model, patches_kept=n + 1)
