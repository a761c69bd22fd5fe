"""Reusable Keras layers of keras_glimpse, one public class per file.

Sensors (what the agent sees for an action):
    RetinaSensor (RAM multi-scale retina), GridGlimpse (RECAP discrete grid),
    PatchMask (PatchDrop kept patches + low-resolution view), ElasticGlimpse
    (AdaGlimpse position + scale), RoiAlign (ordinal embedding boxes).
Encoders and cores:
    GlimpseNetwork, PatchEncoder, RecurrentCore, SequenceSummarizer,
    GatedAttentionPooling, BoxEmbedding, ElasticPositionEncoding, ViTBlock.
Heads (TFP distributions inside, tensors out):
    GaussianLocationHead, BernoulliPatchHead, CategoricalHead, TanhNormalHead,
    ValueHead, GlimpseActorCritic.
Task decoders:
    ReconstructionDecoder, SegmentationDecoder.
"""

from keras_glimpse.layers.bernoulli_patch_head import BernoulliPatchHead
from keras_glimpse.layers.box_embedding import BoxEmbedding
from keras_glimpse.layers.categorical_head import CategoricalHead
from keras_glimpse.layers.elastic_glimpse import ElasticGlimpse
from keras_glimpse.layers.elastic_position_encoding import ElasticPositionEncoding
from keras_glimpse.layers.gated_attention_pooling import GatedAttentionPooling
from keras_glimpse.layers.gaussian_location_head import GaussianLocationHead
from keras_glimpse.layers.glimpse_actor_critic import GlimpseActorCritic
from keras_glimpse.layers.glimpse_network import GlimpseNetwork
from keras_glimpse.layers.grid_glimpse import GridGlimpse
from keras_glimpse.layers.patch_encoder import PatchEncoder
from keras_glimpse.layers.patch_mask import PatchMask
from keras_glimpse.layers.reconstruction_decoder import ReconstructionDecoder
from keras_glimpse.layers.recurrent_core import RecurrentCore
from keras_glimpse.layers.retina_sensor import RetinaSensor
from keras_glimpse.layers.roi_align import RoiAlign
from keras_glimpse.layers.segmentation_decoder import SegmentationDecoder
from keras_glimpse.layers.sequence_summarizer import SequenceSummarizer
from keras_glimpse.layers.tanh_normal_head import TanhNormalHead
from keras_glimpse.layers.value_head import ValueHead
from keras_glimpse.layers.vit_block import ViTBlock

__all__ = [
    "BernoulliPatchHead", "BoxEmbedding", "CategoricalHead", "ElasticGlimpse",
    "ElasticPositionEncoding", "GatedAttentionPooling", "GaussianLocationHead",
    "GlimpseActorCritic", "GlimpseNetwork", "GridGlimpse", "PatchEncoder", "PatchMask",
    "ReconstructionDecoder", "RecurrentCore", "RetinaSensor", "RoiAlign",
    "SegmentationDecoder", "SequenceSummarizer", "TanhNormalHead", "ValueHead", "ViTBlock",
]
