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

    A kind without classes has no head and no outputs: an objects-only model
    gives `(heatmap, box)`, a regions-only one `(mask,)`.

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
        head_norm: str = "group",
    ) -> None:
        super().__init__()
        if num_object_classes < 0 or num_region_classes < 0 or num_object_classes + num_region_classes < 1:
            raise ValueError(f"needs at least one object or region class, got {num_object_classes} and "
                             f"{num_region_classes}")
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
        self.fusion = SemanticFusion(fpn_channels, head_channels, norm=head_norm)
        self.object_head = (ObjectHead(head_channels, head_channels, num_object_classes, object_stride, head_norm)
                            if num_object_classes else None)
        self.region_head = (RegionHead(head_channels, head_channels, num_region_classes, head_norm)
                            if num_region_classes else None)

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs for training.

        Returns a dict:
            `heatmap_logits` `(B, num_object_classes, H/s, W/s)`: center logits
            (no peak suppression);
            `box` `(B, 7, H/s, W/s)`: as in `forward`;
            `mask_logits` `(B, num_region_classes, H, W)`: region logits already
            upsampled to the input size, so `sigmoid(mask_logits)` is the
            `mask` output of `forward`.
        The keys of a kind without classes are absent.
        """
        features = self.backbone(x)
        pyramid = self.fpn(OrderedDict((key, features[key]) for key in FEATURE_KEYS))
        fused = self.fusion(list(pyramid.values()))
        raw = {}
        if self.object_head is not None:
            raw["heatmap_logits"], raw["box"] = self.object_head(fused)
        if self.region_head is not None:
            raw["mask_logits"] = self.region_head(fused)
        return raw

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Inference/export outputs `(heatmap, box, mask)`, those of absent kinds left out; see the class
        docstring."""
        return tuple(t for t in self.inference_outputs(self.forward_train(x)) if t is not None)

    @staticmethod
    def inference_outputs(raw: dict[str, torch.Tensor]
                          ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """`forward_train`'s dict → `(heatmap, box, mask)` as `forward` and the ONNX graph give them, None for
        a kind without classes."""
        objects = "heatmap_logits" in raw
        return (suppress_peaks(raw["heatmap_logits"]) if objects else None, raw["box"] if objects else None,
                torch.sigmoid(raw["mask_logits"]) if "mask_logits" in raw else None)
