"""The detector network: backbones, heads and `SiteDetector` (no Lightning here)."""

from infer.contract.codec import BOX_CHANNELS
from infer.contract.schema import OUTPUT_NAMES
from train.model.backbone import BACKBONE_NAMES, Backbone, build_backbone
from train.model.detector import OUTPUT_STRIDE, SiteDetector
from train.model.heads import HEATMAP_PRIOR_BIAS, suppress_peaks

__all__ = [
    "BACKBONE_NAMES",
    "BOX_CHANNELS",
    "HEATMAP_PRIOR_BIAS",
    "OUTPUT_NAMES",
    "OUTPUT_STRIDE",
    "Backbone",
    "SiteDetector",
    "build_backbone",
    "suppress_peaks",
]
