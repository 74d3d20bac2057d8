"""Validation metrics: box mAP for every class (torchmetrics) and IoU of region masks.

Objects are scored by the axis-aligned boxes of their oriented rectangles;
regions by the boxes of their connected pieces, each scored by its mean
probability (docs/design.md, decision 1). Decoding is `infer`'s, the same code
deployment runs.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.classification import BinaryJaccardIndex, MultilabelJaccardIndex
from torchmetrics.detection import MeanAveragePrecision

from infer.contract.codec import ObjectDetections, ObjectLabels, decode_objects, decode_regions
from infer.contract.defaults import MASK_THRESHOLD
from infer.contract.geometry import rbox_to_corners
from infer.contract.regions import RegionPieces, region_pieces


def rbox_aabb(rboxes: np.ndarray) -> np.ndarray:
    """(N, 5) oriented boxes → (N, 4) axis-aligned `[x1, y1, x2, y2]`."""
    if len(rboxes) == 0:
        return np.zeros((0, 4), np.float32)
    corners = rbox_to_corners(rboxes)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)


def _tensors_on(device: torch.device, records: list[dict[str, np.ndarray]]) -> list[dict[str, torch.Tensor]]:
    return [{key: torch.from_numpy(value).to(device) for key, value in record.items()} for record in records]


class DetectionMetrics(torch.nn.Module):
    """Accumulates predictions and truth over a validation epoch.

    class_names: all classes, objects first then regions (metric class ids follow this order).
    """

    def __init__(self, object_names: list[str], region_names: list[str], score_threshold: float = 0.05,
                 stride: int = 4, region_closing_px: float = 0.0, axis_aligned: tuple[bool, ...] = ()) -> None:
        super().__init__()
        self.axis_aligned = axis_aligned  # per object class, as `decode_objects` takes it
        self.stride = stride
        self.region_closing_px = region_closing_px
        self.object_names, self.region_names = object_names, region_names
        self.score_threshold = score_threshold
        self.box_map = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True,
                                            backend="pycocotools", max_detection_thresholds=[1, 10, 100],
                                            extended_summary=True)
        self.register_buffer("truth_count", torch.zeros(len(object_names) + len(region_names), dtype=torch.long))
        # torchmetrics' multilabel IoU wants at least two labels; one region class is the binary case
        self.region_iou = (None if not region_names else BinaryJaccardIndex(threshold=MASK_THRESHOLD)
                           if len(region_names) == 1 else
                           MultilabelJaccardIndex(num_labels=len(region_names), average="none", threshold=MASK_THRESHOLD))

    @property
    def class_names(self) -> list[str]:
        return self.object_names + self.region_names

    def update(self, heatmap: torch.Tensor | None, box: torch.Tensor | None, mask: torch.Tensor | None,
               objects: list[ObjectLabels], mask_target: torch.Tensor) -> None:
        """heatmap, box, mask: the model's inference outputs for a batch (None for a kind without classes);
        truth per image."""
        n_obj = len(self.object_names)
        hm, bx, probs = (None if t is None else t.detach().float().cpu().numpy() for t in (heatmap, box, mask))
        truth_masks = mask_target.detach().cpu().numpy() > 0.5
        preds, targets = [], []
        for i, truth in enumerate(objects):
            with np.errstate(over="ignore"):
                det = (ObjectDetections.empty() if hm is None else
                       decode_objects(hm[i], bx[i], score_threshold=self.score_threshold, stride=self.stride,
                                      axis_aligned=self.axis_aligned))
            # A box whose exp(log size) overflowed (a diverging model, or batch norm statistics not yet
            # settled after --model.init_weights from a group-norm model) is no answer: it counts as missing.
            finite = np.isfinite(det.rboxes).all(axis=1)
            det = ObjectDetections(det.rboxes[finite], det.scores[finite], det.classes[finite])
            pieces = (RegionPieces.empty() if probs is None else
                      region_pieces(decode_regions(probs[i], MASK_THRESHOLD, self.region_closing_px), probs[i]))
            gt_pieces = region_pieces(truth_masks[i])
            preds.append({
                "boxes": np.concatenate([rbox_aabb(det.rboxes), pieces.boxes]),
                "scores": np.concatenate([det.scores, pieces.scores]),
                "labels": np.concatenate([det.classes, pieces.classes + n_obj]),
            })
            targets.append({
                "boxes": np.concatenate([rbox_aabb(truth.rboxes), gt_pieces.boxes]),
                "labels": np.concatenate([truth.classes, gt_pieces.classes + n_obj]),
            })
        # The metrics' states live where Lightning moved this module (the GPU when training on one).
        device = self.truth_count.device
        preds, targets = _tensors_on(device, preds), _tensors_on(device, targets)
        self.box_map.update(preds, targets)
        for t in targets:
            self.truth_count += torch.bincount(t["labels"], minlength=len(self.truth_count))
        if self.region_iou is None or mask is None:
            return
        probabilities, truth = mask.detach().float().to(device), mask_target.detach().long().to(device)
        if len(self.region_names) == 1:
            probabilities, truth = probabilities[:, 0], truth[:, 0]
        self.region_iou.update(probabilities, truth)

    def compute(self) -> dict[str, float]:
        """`map`, `map_50` overall; `ap50/<class>`, `ap/<class>` per class; `iou/<region class>`."""
        result = self.box_map.compute()
        if result["precision"].ndim != 5:  # nothing to score this epoch
            return {"map": 0.0, "map_50": 0.0}
        out = {"map": max(0.0, float(result["map"])), "map_50": max(0.0, float(result["map_50"]))}
        present = result["classes"].tolist()
        present = [present] if isinstance(present, int) else present
        per_ap = result["map_per_class"].reshape(-1).tolist()
        per_50 = self._ap50_per_class(result["precision"].numpy(), present)
        for name_id, name in enumerate(self.class_names):
            if name_id in present and self.truth_count[name_id] > 0:
                # COCO says -1 for a class it saw no detection of: with truth present, that is AP 0.
                out[f"ap/{name}"] = max(0.0, per_ap[present.index(name_id)])
                out[f"ap50/{name}"] = max(0.0, per_50[name_id])
        ious = [] if self.region_iou is None else self.region_iou.compute().reshape(-1).tolist()
        for name, iou in zip(self.region_names, ious, strict=True):
            out[f"iou/{name}"] = iou
        return out

    @staticmethod
    def _ap50_per_class(precision: np.ndarray, present: list[int]) -> dict[int, float]:
        """AP at IoU 0.5 per class from COCO's precision array (iou, recall, class, area, max dets)."""
        out = {}
        for k, c in enumerate(present):
            curve = precision[0, :, k, 0, -1]
            out[c] = float(curve[curve > -1].mean()) if (curve > -1).any() else float("nan")
        return out

    def reset(self) -> None:
        self.truth_count.zero_()
        self.box_map.reset()
        if self.region_iou is not None:
            self.region_iou.reset()
