"""RECAP's sequence summarizer: self-attention block followed by an LSTM."""

import keras

from keras_glimpse.validation import positive_int


@keras.saving.register_keras_serializable(package="keras_glimpse")
class SequenceSummarizer(keras.layers.Layer):
    """Summarises a sequence of glimpse embeddings (attention + RNN).

    For an input `x` of shape `(B, T, D)`:

        a = MultiHeadAttention(num_heads, key_dim=D // num_heads, dropout)(x, x)
        y = ReLU(LayerNorm(x + a))
        out = LSTM(D, return_sequences=True)(y)        -> (B, T, D)

    as RECAP's `SequenceSummarizer` (one head, dropout 0.1 on the attention
    weights). With `mask` (True = valid step) the attention only attends to
    valid keys. Because the LSTM is causal, the outputs at steps `<= t` of a
    sequence whose keys are masked to `<= t` equal the outputs of the prefix
    `x[:, :t+1]` alone: RECAP's per-step rewards (a classification of every
    prefix) can therefore be computed in one call on the tiled sequence with
    prefix masks (see `SequenceSummarizer.prefix_masks`). The pooling over steps is a separate
    layer, `GatedAttentionPooling`.

    Args:
        num_heads: attention heads (1 in RECAP); must divide D.
        dropout: dropout rate on the attention weights (0.1 in RECAP).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        sequence: `(B, T, D)` float tensor.
        mask: optional `(B, T)` bool tensor, True = the step may be attended to.
        training: Python bool (attention dropout).

    Returns:
        `(B, T, D)` float tensor.

    Example:
    >>> import numpy as np
    >>> from keras_glimpse.layers.sequence_summarizer import SequenceSummarizer
    >>> tuple(SequenceSummarizer()(np.ones((2, 6, 16), "float32")).shape)
    (2, 6, 16)

    Reference:
        RECAP / RLVC, "Reinforcement Learning for Visual Comprehension"
        (`networks.py::SequenceSummarizer`), spec `ordinal-uram-recap-ram.md` 3.4.
    """

    def __init__(self, num_heads=1, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # `mask` is an explicit call argument
        positive_int("num_heads", num_heads)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); received dropout={dropout!r}.")
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.attention = None
        self.layer_norm = keras.layers.LayerNormalization(name="layer_norm")
        self.lstm = None

    def build(self, sequence_shape, mask_shape=None):
        sequence_shape = tuple(sequence_shape)
        if len(sequence_shape) != 3 or sequence_shape[-1] is None:
            raise ValueError(
                "SequenceSummarizer expects a sequence of shape (batch, steps, features) with a "
                f"known feature width; received shape {sequence_shape}."
            )
        dim = int(sequence_shape[-1])
        if dim % self.num_heads:
            raise ValueError(
                f"The feature width {dim} must be divisible by num_heads={self.num_heads}."
            )
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads, key_dim=dim // self.num_heads, dropout=self.dropout,
            name="attention")
        self.attention.build(sequence_shape, sequence_shape)
        self.layer_norm.build(sequence_shape)
        self.lstm = keras.layers.LSTM(dim, return_sequences=True, name="lstm")
        self.lstm.build(sequence_shape)
        self.built = True

    def call(self, sequence, mask=None, training=None):
        attention_mask = None
        if mask is not None:
            steps = keras.ops.shape(sequence)[1]
            valid = keras.ops.cast(mask, "bool")
            attention_mask = keras.ops.broadcast_to(
                valid[:, None, :], (keras.ops.shape(sequence)[0], steps, steps))
        attended = self.attention(sequence, sequence, attention_mask=attention_mask,
                                  training=training)
        x = keras.ops.relu(self.layer_norm(sequence + attended))
        return self.lstm(x, training=training)

    @staticmethod
    def prefix_masks(num_steps):
        """`(T, T)` bool: row t is True for the steps `<= t` (the prefix of length t + 1)."""
        steps = keras.ops.arange(num_steps)
        return steps[None, :] <= steps[:, None]

    def compute_mask(self, sequence, mask=None):
        # The step mask is an explicit argument; nothing is propagated.
        return None

    def compute_output_shape(self, sequence_shape, mask_shape=None):
        return tuple(sequence_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "dropout": self.dropout})
        return config

