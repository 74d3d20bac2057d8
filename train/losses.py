"""Losses for `SiteDetector`: center focal loss, box terms, direction, region masks.

All terms are computed in float32 (safe under autocast) and are finite, and
zero where they have nothing to learn from, when a batch holds no objects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def heatmap_focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """Penalty-reduced focal loss of CenterNet, normalized by the object count.

    Args:
        logits: `(B, C, h, w)` raw heatmap logits.
        target: `(B, C, h, w)` Gaussian heatmaps, exactly 1 at object centers.
        alpha: focusing exponent on the prediction error.
        beta: exponent of the penalty reduction `(1 - target)**beta` that
            forgives confident predictions near (not at) a center.

    Returns a scalar: the summed loss divided by max(number of centers, 1).
    """
    logits, target = logits.float(), target.float()
    # log(p) and log(1 - p) straight from the logits: no clamping, no log(0).
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    positive = target.eq(1.0).float()
    pos_loss = (1 - p).pow(alpha) * log_p * positive
    neg_loss = (1 - target).pow(beta) * p.pow(alpha) * log_not_p * (1 - positive)
    num_pos = positive.sum().clamp_min(1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


def _weighted_mean(per_cell: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    # Each object's weights sum to 1, so this is a mean over objects.
    return (per_cell * weight).sum() / weight.sum().clamp_min(1.0)


def box_losses(
    box: torch.Tensor, target: torch.Tensor, box_weight: torch.Tensor, dir_weight: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Box regression terms at the weighted cells.

    Args:
        box: `(B, 7, h, w)` predicted `[dx, dy, log_length, log_width, cos2t,
            sin2t, dir_logit]`.
        target: `(B, 7, h, w)` from `encode_targets` (`dir` in {0, 1}).
        box_weight: `(B, h, w)` regression weights; `dir_weight` `(B, h, w)`
            the same for objects with a known heading only.

    Returns `offset` (L1 on dx, dy), `size` (L1 on log sizes), `angle` (L1 on
    the `(cos 2theta, sin 2theta)` pair: theta and theta + pi have the same
    pair, so the 180-degree symmetry costs nothing, and there is no wrap-around
    jump at 0/pi) and `direction` (BCE of `dir_logit` against `dir`).
    """
    box, target = box.float(), target.float()
    box_weight, dir_weight = box_weight.float(), dir_weight.float()
    error = (box[:, :6] - target[:, :6]).abs()
    direction = F.binary_cross_entropy_with_logits(box[:, 6], target[:, 6], reduction="none")
    return {
        "offset": _weighted_mean(error[:, 0:2].sum(1), box_weight),
        "size": _weighted_mean(error[:, 2:4].sum(1), box_weight),
        "angle": _weighted_mean(error[:, 4:6].sum(1), box_weight),
        "direction": _weighted_mean(direction, dir_weight),
    }


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Mean over images and classes of `1 - soft Dice`; `(B, R, H, W)` inputs.

    `smooth` keeps empty masks finite and rewards predicting them empty.
    """
    p = torch.sigmoid(logits.float()).flatten(2)
    t = target.float().flatten(2)
    dice = (2 * (p * t).sum(-1) + smooth) / (p.sum(-1) + t.sum(-1) + smooth)
    return (1 - dice).mean()


class DetectionLoss(nn.Module):
    """Weighted sum of all training terms.

    `forward(outputs, targets)` takes `outputs` from
    `SiteDetector.forward_train` (`heatmap_logits`, `box`, `mask_logits`) and
    batched `targets` from `encode_targets` (`heatmap`, `box`, `box_weight`,
    `dir_weight`, `mask`) and returns a dict of scalar tensors: the unweighted
    terms `heatmap`, `offset`, `size`, `angle`, `direction` (with object
    classes), `mask_bce`, `mask_dice` (with region classes), and `loss`, their
    weighted sum (the one to backpropagate).

    `mask_pos_weight`, one factor per region class, weighs that class's mask
    pixels in the BCE term (`pos_weight` of `binary_cross_entropy_with_logits`):
    above 1 a missed pixel of the class costs more than a false one, for thin
    regions whose few pixels the background outvotes.
    """

    def __init__(
        self,
        heatmap_weight: float = 1.0,
        offset_weight: float = 1.0,
        size_weight: float = 1.0,
        angle_weight: float = 1.0,
        direction_weight: float = 0.5,
        mask_bce_weight: float = 1.0,
        mask_dice_weight: float = 1.0,
        focal_alpha: float = 2.0,
        focal_beta: float = 4.0,
        mask_pos_weight: list[float] | None = None,
    ) -> None:
        super().__init__()
        pos_weight = None if mask_pos_weight is None else torch.tensor(mask_pos_weight, dtype=torch.float32)[:, None, None]
        self.register_buffer("mask_pos_weight", pos_weight, persistent=False)
        self.weights: dict[str, float] = {
            "heatmap": heatmap_weight,
            "offset": offset_weight,
            "size": size_weight,
            "angle": angle_weight,
            "direction": direction_weight,
            "mask_bce": mask_bce_weight,
            "mask_dice": mask_dice_weight,
        }
        self.focal_alpha = focal_alpha
        self.focal_beta = focal_beta

    def forward(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        if "heatmap_logits" in outputs:  # a model without object classes has no object head
            terms["heatmap"] = heatmap_focal_loss(outputs["heatmap_logits"], targets["heatmap"], self.focal_alpha,
                                                  self.focal_beta)
            terms.update(box_losses(outputs["box"], targets["box"], targets["box_weight"], targets["dir_weight"]))
        if "mask_logits" in outputs:
            mask_logits = outputs["mask_logits"].float()
            terms["mask_bce"] = F.binary_cross_entropy_with_logits(mask_logits, targets["mask"].float(),
                                                                   pos_weight=self.mask_pos_weight)
            terms["mask_dice"] = soft_dice_loss(mask_logits, targets["mask"])
        terms["loss"] = sum((self.weights[name] * value for name, value in terms.items()),
                            start=torch.zeros((), device=next(iter(outputs.values())).device))
        return terms


__all__ = ["DetectionLoss", "box_losses", "heatmap_focal_loss", "soft_dice_loss"]
