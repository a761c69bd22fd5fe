"""Analytic compute of the greedy inference path: multiply-accumulates per step and per image.

    report = keras_glimpse.flops.count(keras_glimpse.build("ram_mnist28"))
    report.per_step            # {component: MACs of one call}, the glimpse loop
    report.per_image_macs      # everything one image costs; per_image_flops = 2x
    print(report.as_table())

Two general pieces, and one short plan per model family:

- `layer_macs(layer, input_shape)`: the multiply-accumulates (MACs) of one call
  of a built Keras layer, keyed on the layer's type (`register`): `Dense`,
  `EinsumDense`, `Conv1D/2D/3D`, the RNN cells (`SimpleRNNCell` 1, `GRUCell` 3,
  `LSTMCell` 4 gates of `(inputs + units) x units`) and the sequence RNNs,
  `MultiHeadAttention` (self-attention), and the project's layers that do
  matrix products (`GlimpseNetwork`, `PatchEncoder`, `ViTBlock`, `ElasticViT`,
  the decoders, `GlimpseActorCritic`, the ResNets, ...). A layer with no
  counter of its own is the sum of its direct sublayers, each applied once to
  the layer's input (a `Dense` sublayer to its leading axes), which is exact
  for the MLP heads (`GaussianLocationHead`, `ValueHead`, `CategoricalHead`,
  `TanhNormalHead`, `BernoulliPatchHead`, `GatedAttentionPooling`,
  `SequenceSummarizer`). A functional `keras.Model` (the `keras.applications`
  ResNet-50) is the sum of its layers at their recorded input shapes.
- `FlopsReport`: the components of one rollout, each with its MACs per call and
  how often it runs per image (`calls_per_step * num_steps + extra_calls`), so
  `per_step`, `per_image_macs` and `macs_for_steps(k)` follow from one list.
- One plan per family says which sublayers run how often in
  `model.rollout(images, mode="greedy")` of one image (batch 1): RAM and URAM
  (glimpse network + core per glimpse, location head and baseline for the
  `T - 1` policy steps, the classifier once / URAM's decoder per glimpse),
  RECAP (encoder + LSTM memory + value and policy heads per step, summarizer,
  gate and classifier once; the pretrain stage encodes every grid cell),
  PatchDrop (policy network and head on the low-resolution view, then the HR
  classifier once: a ResNet on the whole masked image, or the sparse
  `SparsePatchViT` on the K kept patches, `count(..., patches_kept=K)`; plus
  the LR classifier in `finetune2stream`), the
  ordinal localiser (backbone map once, box embedding for the first box and
  every step, ReLU RNN and policy per step) and AdaGlimpse (the encoder,
  its attention rollout and the task head re-run on all `T g^2` padded slots
  at every one of the `T + 1` encodings, the actor for the `T` glimpses).

What is counted: the MACs of matrix products and convolutions (dense layers,
recurrent cells, attention projections, `Q K^T` and `A V`, the attention
rollout's products, convolutions). FLOPs are reported as `2 x MACs`. Biases,
normalisation, activations, softmax, pooling, residual adds and every
elementwise op are **ignored** (what TensorFlow's profiler counts of them adds
0.4-4 % to these models' matrix FLOPs), and so are the sensors: the
retina's, the grid's and the elastic glimpse's crop-and-resize, PatchDrop's
mask and low-resolution view and the position encodings are gathers and
elementwise blends, not counted. (ROI-Align is counted: it is two products.)
What is not skipped: padded work. AdaGlimpse encodes its empty slots and
the dense PatchDrop's HR classifier runs on the whole (masked) image, so their
counts do not fall with the glimpses or patches kept, and neither does
AdaGlimpse's masking-only early stop. The plans are of the plain greedy
rollout with the learned policy (a random or grid policy may skip the policy
head; `rollout(..., stop_threshold=p)` runs other loops); `macs_for_steps(k)`
re-counts a plan for k glimpse steps.

`profiler_flops(model)` is TensorFlow's own count for comparison: the
`tf.compat.v1` profiler's FLOPs of a traced greedy rollout, per op type
(`graph_flops` does the same for any function). `matmul_flops` sums the
`MATMUL_OPS`, the matrix products and convolutions the analytic count models.
"""

import dataclasses
import math

import keras

# The op types whose FLOPs the analytic count models (the rest of the
# profiler's count is elementwise work it ignores).
MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum",
              "Conv2D", "Conv3D", "DepthwiseConv2dNative")

_COUNTERS = {}
_PLANS = {}


# --------------------------------------------------------------------------- per layer
def register(*layer_classes):
    """Registers `fn(layer, input_shape) -> MACs` as the counter of `layer_classes`
    (and their subclasses without a counter of their own)."""
    def decorator(fn):
        for cls in layer_classes:
            _COUNTERS[cls] = fn
        return fn
    return decorator


def _dims(shape):
    """A shape as a tuple of ints, unknown (None) axes counted as 1."""
    return tuple(1 if d is None else int(d) for d in shape)


def layer_macs(layer, input_shape):
    """Multiply-accumulates of one call of a built Keras `layer`.

    Args:
        layer: a built `keras.layers.Layer` (or functional `keras.Model`).
        input_shape: the shape of the layer's first call argument, batch axis
            included (`None` axes count as 1): `(B, D)` for a dense layer or a
            cell, `(B, H, W, C)` for a convolution, `(B, T, D)` for a sequence
            layer, the glimpse `(B, k, g, g, C)` for `GlimpseNetwork`, the
            patches `(B, N, p, p, C)` for `ElasticViT` and `GlimpseActorCritic`.

    Returns:
        int, the MACs (FLOPs are twice that).

    Raises:
        TypeError: a layer with weights, no counter and no sublayers.
    """
    shape = _dims(input_shape)
    for cls in type(layer).__mro__:
        if cls in _COUNTERS:
            return int(_COUNTERS[cls](layer, shape))
    if isinstance(layer, keras.Model) and getattr(layer, "inputs", None):  # functional
        return _functional_macs(layer, shape)
    return _sublayer_macs(layer, shape)


def _sublayer_macs(layer, shape):
    """The default: every direct sublayer applied once to the layer's input."""
    sublayers = list(layer._flatten_layers(include_self=False, recursive=False))
    if not sublayers:
        if layer.weights:
            raise TypeError(
                f"No MAC counter for {type(layer).__name__} (a layer with weights): "
                "register one with keras_glimpse.flops.register.")
        return 0  # activations, dropout, pooling, reshapes, sensors: no matmul
    total = 0
    for sub in sublayers:
        if isinstance(sub, keras.layers.Dense):
            total += _dense(sub, *shape[:-1])
        else:
            total += layer_macs(sub, shape)
    return total


def _functional_macs(model, shape):
    """A functional model: each layer at the input shape it was built with."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = layer.input
        first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        total += layer_macs(layer, (shape[0],) + _dims(first.shape[1:]))
    return total


def _dense(layer, *leading):
    """A `Dense` applied to `prod(leading)` rows."""
    rows = math.prod(leading)
    return rows * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])


@register(keras.layers.Dense)
def _dense_counter(layer, shape):
    return _dense(layer, *shape[:-1])


def _einsum_macs(equation, *operand_shapes):
    """MACs of a two-operand einsum: the product of the sizes of all its indices."""
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    if "." in equation or len(inputs) != len(operand_shapes):
        raise ValueError(f"Unsupported einsum equation {equation!r} for MAC counting.")
    sizes = {}
    for letters, shape in zip(inputs, operand_shapes):
        for letter, size in zip(letters, _dims(shape)):
            sizes[letter] = max(sizes.get(letter, 1), size)
    return math.prod(sizes.values())


@register(keras.layers.EinsumDense)
def _einsum_dense(layer, shape):
    return _einsum_macs(layer.equation, shape, layer.kernel.shape)


def conv_output_shape(layer, shape, padding=None):
    """Channels-last output shape of the convolution `layer` on `shape`
    (`padding` overrides the layer's, for layers that set it per call)."""
    if layer.data_format != "channels_last":
        raise ValueError(f"{layer.name}: only channels_last convolutions are counted.")
    padding = (padding or layer.padding).lower()
    spatial = []
    for n, k, s, d in zip(shape[1:-1], layer.kernel_size, layer.strides, layer.dilation_rate):
        spatial.append(-(-n // s) if padding == "same" else (n - d * (k - 1) - 1) // s + 1)
    return (shape[0],) + tuple(spatial) + (layer.filters,)


def _conv(layer, shape, padding=None):
    """`(MACs, output shape)` of a convolution on `shape`."""
    out = conv_output_shape(layer, shape, padding)
    return math.prod(out) * math.prod(int(d) for d in layer.kernel.shape[:-1]), out


@register(keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
def _conv_counter(layer, shape):
    return _conv(layer, shape)[0]


_GATES = {keras.layers.SimpleRNNCell: 1, keras.layers.GRUCell: 3, keras.layers.LSTMCell: 4}


@register(*_GATES)
def _rnn_cell(layer, shape):
    gates = next(g for cls, g in _GATES.items() if isinstance(layer, cls))
    rows, units = math.prod(shape[:-1]), layer.units
    return rows * gates * (int(layer.kernel.shape[0]) + units) * units


@register(keras.layers.RNN)
def _rnn_sequence(layer, shape):
    """A sequence RNN on `(B, T, D)`: the cell at each of the T steps."""
    b, t = shape[0], shape[1]
    return t * layer_macs(layer.cell, (b,) + shape[2:])


@register(keras.layers.MultiHeadAttention)
def _multi_head_attention(layer, shape):
    """Self-attention on `(B, T, D)`: q, k, v and output projections plus
    `Q K^T` and `A V` (`B x heads x T x T x key/value dim` each)."""
    b, t = shape[0], shape[1]
    heads = layer.num_heads
    value_dim = layer.value_dim or layer.key_dim
    macs = sum(layer_macs(d, shape) for d in (layer.query_dense, layer.key_dense,
                                                layer.value_dense))
    macs += layer_macs(layer.output_dense, (b, t, heads, value_dim))
    return macs + b * heads * t * t * (layer.key_dim + value_dim)


# Layers that only normalise or move pixels: no matrix product.
def _no_macs(layer, shape):
    return 0


def _register_zero_cost():
    from keras_glimpse.layers.elastic_glimpse import ElasticGlimpse
    from keras_glimpse.layers.elastic_position_encoding import ElasticPositionEncoding
    from keras_glimpse.layers.grid_glimpse import GridGlimpse
    from keras_glimpse.layers.patch_mask import PatchMask
    from keras_glimpse.layers.retina_sensor import RetinaSensor
    from keras_glimpse.layers.roi_align import RoiAlign

    register(keras.layers.LayerNormalization, keras.layers.BatchNormalization,
             keras.layers.GroupNormalization, RetinaSensor, GridGlimpse, ElasticGlimpse,
             PatchMask, RoiAlign, ElasticPositionEncoding)(_no_macs)


_register_zero_cost()


def _register_project_layers():
    """Counters of the project's layers whose sublayers are not all applied
    to the layer's own input (see `layer_macs`)."""
    from keras_glimpse.backbones.cifar_resnet import CifarResNet
    from keras_glimpse.backbones.elastic_vit import ElasticViT
    from keras_glimpse.backbones.residual_block import BasicBlock
    from keras_glimpse.backbones.resnet import ResNet
    from keras_glimpse.backbones.sparse_patch_vit import SparsePatchViT
    from keras_glimpse.layers.box_embedding import BoxEmbedding
    from keras_glimpse.layers.glimpse_actor_critic import GlimpseActorCritic
    from keras_glimpse.layers.glimpse_network import GlimpseNetwork
    from keras_glimpse.layers.patch_encoder import PatchEncoder
    from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder
    from keras_glimpse.layers.recurrent_core import RecurrentCore
    from keras_glimpse.layers.segmentation_decoder import SegmentationDecoder
    from keras_glimpse.layers.vit_block import ViTBlock

    @register(GlimpseNetwork)
    def _glimpse_network(layer, shape):
        b = shape[0]
        return (_dense(layer.glimpse_dense, b) + _dense(layer.location_dense, b)
                + _dense(layer.what_dense, b) + _dense(layer.where_dense, b))

    @register(RecurrentCore)
    def _recurrent_core(layer, shape):
        return layer_macs(layer.cell, shape)

    @register(PatchEncoder)
    def _patch_encoder(layer, shape):
        b = shape[0]
        macs, shape = _conv(layer.conv1, shape)
        macs += _conv(layer.conv2, shape)[0]
        return macs + sum(_dense(d, b) for d in (layer.location_dense, layer.hidden_dense,
                                                  layer.output_dense))

    @register(ViTBlock)
    def _vit_block(layer, shape):
        b, n = shape[0], shape[1]
        macs = sum(_dense(d, b, n) for d in (layer.qkv, layer.proj, layer.fc1, layer.fc2))
        return macs + 2 * b * n * n * layer.dim  # Q K^T and A V over all heads

    @register(ElasticViT)
    def _elastic_vit(layer, shape):
        b, n = shape[0], shape[1]
        macs = _dense(layer.patch_embed, b, n)
        return macs + sum(layer_macs(block, (b, n + 1, layer.embed_dim))
                          for block in layer.blocks)

    @register(ReconstructionDecoder)
    def _reconstruction_decoder(layer, shape):
        b, n = shape[0], shape[1]
        macs = _dense(layer.embed, b, n)
        tokens = (b, n + layer.num_cells, layer.decoder_dim)
        macs += sum(layer_macs(block, tokens) for block in layer.blocks)
        if not layer.return_tokens:
            macs += _dense(layer.pred, b, layer.num_cells)
        return macs

    @register(SegmentationDecoder)
    def _segmentation_decoder(layer, shape):
        macs = layer_macs(layer.decoder, shape)
        (h, w), c = layer.decoder.grid, layer.decoder_dim
        for i, conv in enumerate(layer.convs):
            conv_macs, (_, h, w, c) = _conv(conv, (shape[0], h, w, c))
            macs += conv_macs
            if i < len(layer.head_channels):
                h, w = 2 * h, 2 * w  # bilinear up-sampling: not counted
        return macs + _conv(layer.classifier, (shape[0], h, w, c))[0]

    @register(GlimpseActorCritic)
    def _actor_critic(layer, shape):
        b, slots, p = shape[0], shape[1], shape[2]
        padding = "valid" if p >= 16 else "same"  # as GlimpseActorCritic._patch_features
        macs = 0
        if "patches" in layer.parts:
            x = (b * slots,) + shape[2:]
            conv_macs, x = _conv(layer.conv1, x, padding)
            macs += conv_macs
            x = (x[0], x[1] // 2, x[2] // 2, x[3])  # 2x2 max-pool
            macs += _conv(layer.conv2, x, padding)[0]
        macs += sum(_dense(d, b, slots) for d in layer.projection_dense)
        macs += _dense(layer.pool_in[0], b, slots)
        macs += _dense(layer.logits_hidden, b, slots) + _dense(layer.logits_out, b, slots)
        macs += _dense(layer.pool_out[0], b)
        if layer.role == "actor":
            return macs + layer_macs(layer.head, (b, layer.hidden_units))
        return macs + sum(_dense(d, b) for d in (layer.action_embed[0], layer.q_hidden,
                                                  layer.q_out))

    @register(BasicBlock)
    def _basic_block(layer, shape):
        macs, mid = _conv(layer.conv1, shape)
        macs += _conv(layer.conv2, mid)[0]
        if layer.proj is not None:
            macs += _conv(layer.proj, shape)[0]
        return macs

    def _blocks(blocks, shape):
        macs = 0
        for block in blocks:
            macs += layer_macs(block, shape)
            shape = conv_output_shape(block.conv1, shape)
        return macs, shape

    @register(CifarResNet)
    def _cifar_resnet(layer, shape):
        macs, shape = _conv(layer.stem, shape)
        block_macs, shape = _blocks(layer.residual_blocks, shape)
        macs += block_macs
        if layer.classifier is not None:
            macs += _dense(layer.classifier, shape[0])
        return macs

    @register(ResNet)
    def _resnet(layer, shape):
        if layer.application is not None:
            macs = layer_macs(layer.application, shape)
        else:
            macs, shape = _conv(layer.stem, shape)
            if layer.stem_type == "imagenet":  # 3x3 stride-2 SAME max-pool
                shape = (shape[0], -(-shape[1] // 2), -(-shape[2] // 2), shape[3])
            macs += _blocks(layer.residual_blocks, shape)[0]
        if layer.classifier is not None:
            macs += _dense(layer.classifier, shape[0])
        return macs

    @register(SparsePatchViT)
    def _sparse_patch_vit(layer, shape):
        """On images `(B, H, W, C)` with every patch kept (`sparse_vit_macs` for K)."""
        return sparse_vit_macs(layer, layer.grid_size ** 2, shape[0])

    @register(BoxEmbedding)
    def _box_embedding(layer, shape):
        """The backbone map of the images plus the embedding of one box."""
        return box_feature_macs(layer, shape) + box_embed_macs(layer, shape[0], shape)


def attention_rollout_macs(num_layers, tokens, batch=1):
    """MACs of `layers.attention_rollout`: one `(N+1) x (N+1)` product per layer."""
    return num_layers * batch * tokens ** 3


def sparse_vit_macs(vit, kept, batch=1):
    """`SparsePatchViT` on `kept` patches per image: the encoder reads K tokens
    (+ CLS), the head the CLS token. Dropped patches cost nothing."""
    c = vit.image_shape[2]
    return (layer_macs(vit.encoder, (batch, kept, vit.patch, vit.patch, c))
            + _dense(vit.head, batch))


def _box_features(embedding, image_shape):
    """`(MACs, feature map shape)` of `BoxEmbedding.feature_map` on `image_shape`."""
    macs, shape = 0, _dims(image_shape)
    for conv in embedding.convs:
        conv_macs, shape = _conv(conv, shape)
        macs += conv_macs
    return macs, shape


def box_feature_macs(embedding, image_shape):
    """`BoxEmbedding.feature_map` (its linear conv backbone) on `image_shape`."""
    return _box_features(embedding, image_shape)[0]


def roi_align_macs(roi_align, features_shape, num_boxes=1):
    """`RoiAlign` of `num_boxes` boxes on a `(1, h, w, C)` map: its two
    products, the `P x h` row weights with the map (`P h w C`) and the
    `P x w` column weights with the result (`P P w C`), per box."""
    _, h, w, c = (int(d) for d in features_shape)
    p = roi_align.output_size
    return num_boxes * (p * h * w * c + p * p * w * c)


def box_embed_macs(embedding, num_boxes=1, image_shape=None):
    """`BoxEmbedding.embed_boxes` of `num_boxes` boxes: the MLP after
    ROI-Align, plus ROI-Align itself when `image_shape` (one image's, to size
    the feature map) is given."""
    macs = _dense(embedding.fc1, num_boxes) + _dense(embedding.fc2, num_boxes)
    if image_shape is not None:
        shape = _box_features(embedding, (1,) + tuple(image_shape)[-3:])[1]
        macs += roi_align_macs(embedding.roi_align, shape, num_boxes)
    return macs


_register_project_layers()


# --------------------------------------------------------------------------- the report
@dataclasses.dataclass(frozen=True)
class Component:
    """One part of a rollout: `macs` per call (one image), run
    `calls_per_step * num_steps + extra_calls` times per image."""

    name: str
    macs: int
    calls_per_step: int = 0
    extra_calls: int = 0

    def calls(self, num_steps):
        return max(self.calls_per_step * num_steps + self.extra_calls, 0)


@dataclasses.dataclass(frozen=True)
class FlopsReport:
    """Analytic MACs of one model's greedy rollout of one image.

    Attributes:
        model: the model's preset name, or its class name.
        num_steps: glimpse steps T of the rollout (PatchDrop: its one
            acquisition decision; RECAP pretrain: every grid cell).
        components: the `Component`s (per-step ones first).
        notes: what the family's plan assumes, in one line.
    """

    model: str
    num_steps: int
    components: tuple
    notes: str = ""

    @property
    def per_step(self):
        """`{component: MACs}` of one call of each component of the glimpse loop."""
        return {c.name: c.macs for c in self.components if c.calls_per_step}

    @property
    def per_step_macs(self):
        """MACs of one glimpse step (one call of every per-step component)."""
        return sum(self.per_step.values())

    @property
    def per_image(self):
        """`{component: MACs}` summed over the calls of one image's rollout."""
        return {c.name: c.macs * c.calls(self.num_steps) for c in self.components}

    @property
    def per_image_macs(self):
        return self.macs_for_steps(self.num_steps)

    @property
    def per_image_flops(self):
        return 2 * self.per_image_macs

    def macs_for_steps(self, num_steps):
        """Per-image MACs of the same plan with `num_steps` glimpse steps (the
        once-per-image components keep their cost: RECAP's summarizer, which
        reads every step, is counted at `self.num_steps`)."""
        return sum(c.macs * c.calls(num_steps) for c in self.components)

    def as_table(self):
        """The components, their calls and MACs as a fixed-width text table."""
        rows = [(c.name, f"{c.macs:,}", str(c.calls(self.num_steps)),
                 f"{c.macs * c.calls(self.num_steps):,}",
                 "step" if c.calls_per_step else "once") for c in self.components]
        header = ("component", "MACs/call", "calls", "MACs/image", "runs")
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]

        def line(cells):
            return "  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = [f"{self.model}: greedy rollout of one image, {self.num_steps} steps",
               line(header)] + [line(r) for r in rows]
        out.append(f"per step: {self.per_step_macs:,} MACs; per image: "
                   f"{self.per_image_macs:,} MACs = {self.per_image_flops:,} FLOPs")
        if self.notes:
            out.append(self.notes)
        return "\n".join(out)


# --------------------------------------------------------------------------- per family
def _plan(*model_classes):
    def decorator(fn):
        for cls in model_classes:
            _PLANS[cls] = fn
        return fn
    return decorator


def count(model, image_shape=None, patches_kept=None):
    """Analytic MACs of `model.rollout(images, mode="greedy")` for one image.

    Args:
        model: a built keras_glimpse model (`keras_glimpse.build(...)`).
        image_shape: `(H, W, C)` of the input (default: the model's). Only the
            convolutional backbones (PatchDrop's ResNets, the ordinal box
            embedding) scale with it; the glimpse methods see fixed-size glimpses.
        patches_kept: sparse PatchDrop (`hr_backbone="vit_*"`) only: the
            patches the policy keeps for this image, which its HR classifier's
            cost depends on (default: all `G^2`). Ignored by the other models,
            whose cost does not depend on what the policy picks.

    Returns:
        A `FlopsReport`.

    Raises:
        TypeError: a model class without a plan.
    """
    image_shape = _dims(image_shape if image_shape is not None else model.image_shape)
    for cls in type(model).__mro__:
        if cls in _PLANS:
            num_steps, components, notes = _PLANS[cls](model, image_shape,
                                                         patches_kept=patches_kept)
            name = getattr(model, "preset_name", None) or type(model).__name__
            return FlopsReport(name, int(num_steps), tuple(components), notes)
    raise TypeError(f"No FLOPs plan for {type(model).__name__}; the families with one are "
                    f"{sorted(c.__name__ for c in _PLANS)}.")


def _register_plans():
    from keras_glimpse.models.adaglimpse import AdaGlimpse
    from keras_glimpse.models.ordinal import OrdinalLocalizer
    from keras_glimpse.models.patchdrop import PatchDrop
    from keras_glimpse.models.ram import RAM
    from keras_glimpse.models.recap import RECAP
    from keras_glimpse.models.uram import URAM

    def recurrent_attention(model, image_shape):
        """RAM / URAM: T glimpses, the location policy decides the T - 1 after the first."""
        glimpse = (1, model.num_scales, model.glimpse_size, model.glimpse_size, image_shape[-1])
        hidden = (1, model.hidden_units)
        return [
            Component("glimpse_network", layer_macs(model.glimpse_network, glimpse), 1),
            Component("core", layer_macs(model.core, hidden), 1),
            Component("location_head", layer_macs(model.location_head, hidden), 1, -1),
            Component("baseline", layer_macs(model.baseline, hidden), 1, -1),
        ]

    @_plan(RAM)
    def _ram(model, image_shape, **_):
        parts = recurrent_attention(model, image_shape)
        parts.append(Component("classifier", _dense(model.classifier, 1), 0, 1))
        return model.num_glimpses, parts, "retina crops not counted"

    @_plan(URAM)
    def _uram(model, image_shape, **_):
        parts = recurrent_attention(model, image_shape)
        parts.append(Component("decoder", _dense(model.decoder, 1), 1))
        return model.num_glimpses, parts, "retina crops and the running sum not counted"

    @_plan(RECAP)
    def _recap(model, image_shape, **_):
        p, d = model.patch_size, model.embed_dim
        patch = (1, p, p, image_shape[-1])
        if model.stage == "pretrain":  # the classifier reads every cell, no agent
            steps = model.num_actions
            parts = [Component("encoder", layer_macs(model.encoder, patch), 1)]
        else:
            steps = model.num_steps
            parts = [Component("encoder", layer_macs(model.encoder, patch), 1),
                     Component("memory", layer_macs(model.memory, (1, d)), 1),
                     Component("value_head", layer_macs(model.value_head, (1, d)), 1),
                     Component("policy_head", layer_macs(model.policy_head, (1, d + 2)), 1)]
        parts += [Component("summarizer", layer_macs(model.summarizer, (1, steps, d)), 0, 1),
                  Component("gate", layer_macs(model.gate, (1, steps, d)), 0, 1),
                  Component("classifier", _dense(model.classifier, 1), 0, 1)]
        return steps, parts, "grid crops not counted"

    @_plan(PatchDrop)
    def _patchdrop(model, image_shape, patches_kept=None):
        f = model.lr_factor
        lr = (1, -(-image_shape[0] // f), -(-image_shape[1] // f), image_shape[2])
        hr = (1,) + image_shape
        if model.stage == "classifier":  # every patch, or the LR view
            net, shape = (model.hr_net, hr) if model.resolution == "hr" else (model.lr_net, lr)
            part = Component(f"{model.resolution}_classifier", layer_macs(net, shape), 0, 1)
            return 0, [part], "the classifier stage: no policy"
        if getattr(model.hr_net, "takes_actions", False):  # sparse: the kept patches only
            kept = model.num_patches if patches_kept is None else int(patches_kept)
            if not 0 <= kept <= model.num_patches:
                raise ValueError(f"`patches_kept` must be in [0, {model.num_patches}]; "
                                 f"received patches_kept={patches_kept!r}.")
            hr_macs = sparse_vit_macs(model.hr_net, max(kept, 1))  # an empty image pads to 1
            notes = (f"one acquisition decision; the sparse HR classifier counted at {kept} "
                     f"of {model.num_patches} patches kept (count(..., patches_kept=K))")
        else:
            hr_macs = layer_macs(model.hr_net, hr)
            notes = ("one acquisition decision; the HR classifier runs on the whole masked "
                     "image, so its cost does not fall with the patches kept")
        parts = [
            Component("policy_backbone", layer_macs(model.policy_net, lr), 1),
            Component("policy_head", _dense(model.policy_head.logits_dense, 1), 1),
            Component("hr_classifier", hr_macs, 0, 1),
        ]
        if model.stage == "finetune2stream":
            parts.append(Component("lr_classifier", layer_macs(model.lr_net, lr), 0, 1))
        return 1, parts, notes

    @_plan(OrdinalLocalizer)
    def _ordinal(model, image_shape, **_):
        emb = model.embedding
        return model.num_steps, [
            Component("box_embedding", box_embed_macs(emb, 1, image_shape), 1, 1),  # + 1st box
            Component("core", layer_macs(model.core, (1, model.embedding_dim)), 1),
            Component("policy", layer_macs(model.policy, (1, model.hidden_units)), 1),
            Component("feature_map", box_feature_macs(emb, (1,) + image_shape), 0, 1),
        ], "box moves not counted"

    @_plan(AdaGlimpse)
    def _adaglimpse(model, image_shape, **_):
        n, p = model.num_slots, model.patch_size
        patches = (1, n, p, p, image_shape[-1])
        tokens = (1, n + 1, model.encoder.embed_dim)
        head_input = (1, tokens[-1]) if model.task == "classification" else tokens
        return model.num_glimpses, [
            Component("encoder", layer_macs(model.encoder, patches), 1, 1),
            Component("attention_rollout",
                      attention_rollout_macs(model.encoder.depth, n + 1), 1, 1),
            Component(f"{model.task}_head", layer_macs(model.task_head, head_input), 1, 1),
            Component("actor", layer_macs(model.actor, patches), 1),
        ], (f"the encoder and head run T + 1 times on all {n} padded slots; "
            "elastic glimpse crops not counted")


_register_plans()


# --------------------------------------------------------------------------- the profiler
def _einsum_flops(graph, node):
    from tensorflow.python.framework import graph_util, ops

    shapes = []
    for name in node.input:
        shape = graph_util.tensor_shape_from_node_def_name(graph, name)
        shape.assert_is_fully_defined()  # else the profiler skips the op, as for MatMul
        shapes.append(shape.as_list())
    return ops.OpStats("flops", 2 * _einsum_macs(node.attr["equation"].s.decode(), *shapes))


def _register_einsum_statistics():
    """TensorFlow registers no FLOPs for `Einsum`, which Keras' multi-head
    attention uses for `Q K^T` and `A V`: give it the rule TF uses for
    `BatchMatMul` (2 x output elements x contracted size, i.e. 2 x the product
    of all index sizes). Registered once, the first time the profiler is used."""
    from tensorflow.python.framework import ops

    try:
        ops.RegisterStatistics("Einsum", "flops")(_einsum_flops)
    except KeyError:  # registered already
        pass


def graph_flops(fn, *input_specs):
    """TensorFlow's profiler FLOPs of `fn` traced on `input_specs`, per op type.

    `fn` is traced once as a `tf.function` concrete function on the (fully
    static) `tf.TensorSpec`s and its graph is profiled with
    `tf.compat.v1.profiler` (`ProfileOptionBuilder.float_operation()`);
    nothing runs. The profiler counts only ops with registered statistics
    (`MatMul`, `BatchMatMul*`, `Conv2D`, `BiasAdd`, many elementwise ops, and
    `Einsum` once `_register_einsum_statistics` has given it the matmul rule)
    and only the ops of the traced graph: the body of a `tf.while_loop` is a
    separate function it never sees (see `profiler_flops`).

    Returns:
        `{op_type: FLOPs}`; `matmul_flops` sums the part `count` models.
    """
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    _register_einsum_statistics()
    graph = tf.function(fn).get_concrete_function(*input_specs).graph
    options = (option_builder.ProfileOptionBuilder(
        option_builder.ProfileOptionBuilder.float_operation())
        .with_max_depth(10 ** 6).with_empty_output().build())
    root = model_analyzer.profile(graph, cmd="scope", options=options)
    per_type = {}
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.float_ops:  # the node's own ops (a scope node holds none)
            op_type = graph.get_operation_by_name(node.name).type
            per_type[op_type] = per_type.get(op_type, 0) + int(node.float_ops)
    return per_type


def profiler_flops(model, image_shape=None, batch_size=1):
    """TensorFlow's profiler FLOPs of `model.rollout(images, mode="greedy")`.

    `graph_flops` of the greedy rollout on a `(batch_size, H, W, C)` input,
    with every Keras sequence RNN of the model (RECAP's summarizer LSTM)
    traced unrolled (`unroll=True` while tracing, restored after), so that
    its steps are ops of the graph rather than an unseen loop body. The
    computation is the same.

    Returns:
        `{op_type: FLOPs}`; `matmul_flops` sums the part `count` models.
    """
    import tensorflow as tf

    image_shape = tuple(image_shape if image_shape is not None else model.image_shape)
    rnns = [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.RNN) and not layer.unroll]

    def greedy(images):
        return model.rollout(images, mode="greedy")["predictions"]

    for layer in rnns:
        layer.unroll = True
    try:
        return graph_flops(greedy, tf.TensorSpec((batch_size,) + image_shape,
                                                 model.compute_dtype))
    finally:
        for layer in rnns:
            layer.unroll = False


def matmul_flops(per_type):
    """The matrix-product and convolution part of a `profiler_flops` result."""
    return sum(v for k, v in per_type.items() if k in MATMUL_OPS)


__all__ = ["Component", "FlopsReport", "MATMUL_OPS", "attention_rollout_macs",
           "box_embed_macs", "box_feature_macs", "conv_output_shape", "count", "graph_flops",
           "layer_macs", "matmul_flops", "profiler_flops", "register", "roi_align_macs",
           "sparse_vit_macs"]
