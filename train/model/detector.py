"""`SiteDetector`: backbone → FPN → stride-4 fusion → object and region heads."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

from train.model.backbone import FEATURE_KEYS, build_backbone
from train.model.heads import ObjectHead, RegionHead, SemanticFusion, suppress_peaks

#: ONNX names of the `forward` outputs, in order.
#: Default stride of the heatmap and box outputs relative to the input (see `ObjectHead`).
OUTPUT_STRIDE: int = 4


class SiteDetector(nn.Module):
    """Anchor-free detector of oriented objects plus region masks.

    Input `x`: float32 `(B, in_channels, H, W)`, already normalized, H and W
    multiples of 32. Works with channels_last tensors and under autocast.
    Object outputs come at `object_stride` s (4 or 2); below, H/s and W/s.

    `forward(x)` returns the export/inference tuple (names in `OUTPUT_NAMES`):

    1. `heatmap` `(B, num_object_classes, H/s, W/s)`: sigmoid center
       probabilities after 3x3 peak suppression (zero off local maxima).
    2. `box` `(B, 7, H/s, W/s)`: `[dx, dy, log_length, log_width, cos2t, sin2t,
       dir_logit]` for each cell. The cell at row i, col j has its center at
       pixel `((j + 0.5) * s, (i + 0.5) * s)` (x, y); the object center is
       that plus `s * (dx, dy)`; length = `s * exp(log_length)`, width =
       `s * exp(log_width)`; `(cos2t, sin2t)` encodes the axis angle theta in
       [0, pi) as `(cos 2theta, sin 2theta)` (not unit length: normalize);
       `dir_logit > 0` means the front points along +theta.
    3. `mask` `(B, num_region_classes, H, W)`: sigmoid region probabilities.

    `forward_train(x)` returns the raw tensors the losses need (see there).
    """

    def __init__(
        self,
        num_object_classes: int,
        num_region_classes: int,
        backbone: str = "resnet18",
        in_channels: int = 3,
        fpn_channels: int = 128,
        head_channels: int = 128,
        backbone_weights: str | None = None,
        object_stride: int = OUTPUT_STRIDE,
    ) -> None:
        super().__init__()
        if num_object_classes < 1:
            raise ValueError(f"num_object_classes must be >= 1, got {num_object_classes}")
        if num_region_classes < 1:
            raise ValueError(f"num_region_classes must be >= 1, got {num_region_classes}")
        if fpn_channels < 1 or head_channels < 1:
            raise ValueError(
                f"fpn_channels and head_channels must be >= 1, got {fpn_channels}, {head_channels}"
            )
        self.num_object_classes = num_object_classes
        self.num_region_classes = num_region_classes
        self.in_channels = in_channels
        self.object_stride = object_stride
        self.backbone = build_backbone(backbone, in_channels, backbone_weights)
        self.fpn = FeaturePyramidNetwork(list(self.backbone.channels), fpn_channels)
        self.fusion = SemanticFusion(fpn_channels, head_channels)
        self.object_head = ObjectHead(head_channels, head_channels, num_object_classes, object_stride)
        self.region_head = RegionHead(head_channels, head_channels, num_region_classes)

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs for training.

        Returns a dict:
            `heatmap_logits` `(B, num_object_classes, H/s, W/s)`: center logits
            (no peak suppression);
            `box` `(B, 7, H/s, W/s)`: as in `forward`;
            `mask_logits` `(B, num_region_classes, H, W)`: region logits already
            upsampled to the input size, so `sigmoid(mask_logits)` is the
            `mask` output of `forward`.
        """
        features = self.backbone(x)
        pyramid = self.fpn(OrderedDict((key, features[key]) for key in FEATURE_KEYS))
        fused = self.fusion(list(pyramid.values()))
        heatmap_logits, box = self.object_head(fused)
        mask_logits = self.region_head(fused)
        return {"heatmap_logits": heatmap_logits, "box": box, "mask_logits": mask_logits}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inference/export outputs `(heatmap, box, mask)`; see the class docstring."""
        return self.inference_outputs(self.forward_train(x))

    @staticmethod
    def inference_outputs(raw: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`forward_train`'s dict → the `(heatmap, box, mask)` that `forward` and the ONNX graph give."""
        return suppress_peaks(raw["heatmap_logits"]), raw["box"], torch.sigmoid(raw["mask_logits"])
