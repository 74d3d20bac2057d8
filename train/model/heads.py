"""Pieces between the backbone and the outputs: FPN fusion and the two heads."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from infer.contract.codec import BOX_CHANNELS

#: Initial heatmap bias, -log((1 - 0.1) / 0.1): every cell starts at p = 0.1,
#: so the focal loss of the many background cells does not swamp the first steps.
HEATMAP_PRIOR_BIAS: float = -2.19

#: Normalizations the fusion and heads can use (`conv_block`).
HEAD_NORMS: tuple[str, ...] = ("group", "batch")


def _norm(channels: int, kind: str) -> nn.Module:
    """GroupNorm takes its statistics over the whole input, so a network trained on 256 px chips sees other
    statistics on a 1024 px tile: long storehouses came out a quarter too long (docs/design.md, decision 13).
    BatchNorm in eval mode uses fixed running statistics, so a tile's outputs do not depend on its size;
    it needs batches of several chips in training."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    raise ValueError(f"head norm must be one of {', '.join(HEAD_NORMS)}, got {kind!r}")


def conv_block(in_channels: int, out_channels: int, norm: str = "group") -> nn.Sequential:
    """3x3 conv → norm (`HEAD_NORMS`) → ReLU, same spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        _norm(out_channels, norm),
        nn.ReLU(inplace=True),
    )


class SemanticFusion(nn.Module):
    """Fuse FPN levels P2..P5 into one stride-4 map (semantic-FPN style).

    Level k (stride 2**k) goes through `k - 2` rounds of conv block + bilinear
    x2 upsampling (one conv block for P2), then the four maps are summed.

    Input: list of `(B, in_channels, H / 2**k, W / 2**k)` for k = 2..5.
    Output: `(B, out_channels, H / 4, W / 4)`.
    """

    def __init__(self, in_channels: int, out_channels: int, num_levels: int = 4, norm: str = "group") -> None:
        super().__init__()
        branches = []
        for level in range(num_levels):
            layers: list[nn.Module] = [conv_block(in_channels, out_channels, norm)]
            for _ in range(level):
                layers.append(nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False))
                layers.append(conv_block(out_channels, out_channels, norm))
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        fused = self.branches[0](features[0])
        for branch, feature in zip(self.branches[1:], features[1:], strict=True):
            fused = fused + branch(feature)
        return fused


#: Output strides the object head can give.
OBJECT_STRIDES: tuple[int, ...] = (2, 4)


class ObjectHead(nn.Module):
    """Center heatmap logits and box regression at stride 4 or 2.

    Input `(B, in_channels, h, w)` at stride 4; outputs heatmap logits
    `(B, num_classes, s*h, s*w)` and raw box values `(B, 7, s*h, s*w)` in
    `BOX_CHANNELS` order, with s = 4 / `stride`.

    Stride 2 upsamples the input x2 and refines it with a conv block before the
    two branches. Vehicles 5 px wide side by side are under two cells apart at
    stride 4: their peaks nearly touch and their regression areas overlap, so
    cells between them are taught one vehicle's box next to the other's.
    """

    def __init__(self, in_channels: int, head_channels: int, num_classes: int, stride: int = 4,
                 norm: str = "group") -> None:
        super().__init__()
        if stride not in OBJECT_STRIDES:
            raise ValueError(f"object stride must be one of {OBJECT_STRIDES}, got {stride}")
        self.upsample: nn.Module = nn.Identity()
        if stride == 2:
            self.upsample = nn.Sequential(
                nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=False),
                conv_block(in_channels, head_channels, norm),
            )
            in_channels = head_channels
        self.heatmap = nn.Sequential(
            conv_block(in_channels, head_channels, norm), nn.Conv2d(head_channels, num_classes, 1)
        )
        self.box = nn.Sequential(
            conv_block(in_channels, head_channels, norm),
            nn.Conv2d(head_channels, len(BOX_CHANNELS), 1),
        )
        # Small output weights: the heatmap starts at its prior everywhere and
        # exp(log size) stays sane in the first steps.
        for last, bias in ((self.heatmap[-1], HEATMAP_PRIOR_BIAS), (self.box[-1], 0.0)):
            assert isinstance(last, nn.Conv2d) and last.bias is not None
            nn.init.normal_(last.weight, std=0.01)
            nn.init.constant_(last.bias, bias)

    def set_size_prior(self, length_px: float, width_px: float, stride: int) -> None:
        """Start the size outputs at a typical object's length and width (input pixels) instead of one cell.

        Sizes are regressed as log(size / stride) from a bias of 0, i.e. one cell: for 35 px tree crowns at
        stride 2 the log size must climb to 2.9 before any box overlaps its crown, which a few hundred steps
        on a few real labels do not achieve (predicted crowns stayed near 0.2 m). The data's median is
        where boxes start, as anchor priors do in anchor-based detectors.
        """
        last = self.box[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        with torch.no_grad():
            last.bias[BOX_CHANNELS.index("log_length")] = math.log(max(length_px, 1e-3) / stride)
            last.bias[BOX_CHANNELS.index("log_width")] = math.log(max(width_px, 1e-3) / stride)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.upsample(x)
        return self.heatmap(x), self.box(x)


class RegionHead(nn.Module):
    """Region mask logits, predicted at stride 4 and upsampled x4 (bilinear).

    Input `(B, in_channels, h, w)`; output `(B, num_classes, 4h, 4w)` logits.
    """

    def __init__(self, in_channels: int, head_channels: int, num_classes: int, norm: str = "group") -> None:
        super().__init__()
        self.mask = nn.Sequential(
            conv_block(in_channels, head_channels, norm), nn.Conv2d(head_channels, num_classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.mask(x), scale_factor=4.0, mode="bilinear", align_corners=False)


def suppress_peaks(heatmap_logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid probabilities, zero except at 3x3 local maxima.

    Comparing logits (not probabilities) with their 3x3 max-pool avoids ties
    where the sigmoid saturates to 1.0 in float32. Sigmoid is monotone, so the
    kept cells are those whose probability equals the 3x3 max-pool of the
    output. Shape-preserving: `(B, C, h, w)` → `(B, C, h, w)`.
    """
    pooled = F.max_pool2d(heatmap_logits, kernel_size=3, stride=1, padding=1)
    keep = (heatmap_logits == pooled).to(heatmap_logits.dtype)
    return torch.sigmoid(heatmap_logits) * keep
