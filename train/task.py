"""The Lightning task: loss, optimizer, schedule and validation metrics around `SiteDetector`.

The network knows nothing of Lightning; the data module knows the data.
Checkpoints carry what export needs to rebuild the model without the data:
classes, kinds, colours, bands, normalization, GSD, chip size.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from infer.contract.defaults import REGION_CLOSING_M
from infer.errors import InputError
from train.checkpoint import CHECKPOINT_KEY, read_checkpoint
from train.data.config import load_dataset_config
from train.losses import DetectionLoss
from train.metrics import DetectionMetrics
from train.model.detector import SiteDetector
from train.schedule import RunProgress, warmup_cosine

#: Parts of `SiteDetector` that `freeze` may name, input to output.
NETWORK_PARTS: tuple[str, ...] = ("backbone", "fpn", "fusion", "object_head", "region_head")


def load_matching_weights(model: torch.nn.Module, checkpoint: str) -> int:
    """Load the tensors of a task checkpoint whose name and shape match `model`'s; returns how many."""
    path = Path(checkpoint)
    try:
        state = read_checkpoint(path, needs=())["state_dict"]
    except InputError as exc:
        raise InputError(f"init_weights: {exc}") from None
    own = model.state_dict()
    earlier = {name.removeprefix("model."): value for name, value in state.items() if name.startswith("model.")}
    taken = {name: value for name, value in earlier.items() if name in own and own[name].shape == value.shape}
    if not taken:
        raise InputError(f"init_weights: no tensor of {path} fits this model")
    model.load_state_dict(taken, strict=False)
    rank_zero_info(f"init_weights: {len(taken)} of {len(own)} tensors from {path}")
    return len(taken)


class SiteDetectionTask(pl.LightningModule):
    """Train and validate a `SiteDetector` on the classes of a dataset definition.

    Args:
        dataset: dataset YAML; its classes and bands size the network (linked from the data module).
        backbone: torchvision backbone name (resnet18, resnet34, resnet50, mobilenet_v3_large, mobilenet_v3_small).
        backbone_weights: a local state_dict file or a torchvision weights enum name; None = random init.
        fpn_channels, head_channels: widths of the feature pyramid and the heads.
        lr, weight_decay: AdamW.
        warmup_fraction: share of the run spent warming the learning rate up linearly, followed by a
            cosine decay to `min_lr_ratio * lr`; the share is of the steps, or of `--trainer.max_time`
            when that ends the run first (`train.schedule`).
        score_threshold: lowest object score kept when decoding for mAP.
        channels_last: train in channels-last memory format (faster convolutions on GPU).
        object_stride: input pixels per cell of the object outputs, 4 or 2 (see `ObjectHead`);
            the data module encodes its targets at the same stride (linked by the CLI).
        init_weights: a checkpoint of an earlier run to start from (fine-tuning): its tensors whose
            name and shape match this model's are loaded, the rest keep their initialization.
            Unlike `--ckpt_path`, the optimizer, schedule and epoch count start afresh.
        region_pos_weight: region class name → weight of its mask pixels in the mask BCE
            (classes not named weigh 1); above 1 trades false pixels for fewer missed ones.
        freeze: parts of the network (backbone, fpn, fusion, object_head, region_head) kept as they are,
            usually as loaded by `init_weights`: no gradient, no optimizer state, and their batch-norm
            statistics held. Freezing all but `region_head` retrains the masks and leaves every object
            output as it was.
        head_norm: normalization of the fusion and heads, "group" or "batch". Batch norm's fixed statistics
            in inference make a tile's outputs independent of its size; group norm's are the input's own,
            so a model trained on small chips sees other statistics on large tiles (`heads._norm`).
        region_closing_m: radius of the disc that closes region masks before they are cut
            into scored pieces, as `infer run --region-closing` does (0: off); the logged
            mask IoU is of the masks as thresholded, the mask head's own quality.
    """

    def __init__(
        self,
        dataset: str = "datasets/synthetic.yaml",
        backbone: str = "resnet18",
        backbone_weights: str | None = None,
        fpn_channels: int = 128,
        head_channels: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_fraction: float = 0.05,
        min_lr_ratio: float = 0.02,
        score_threshold: float = 0.05,
        channels_last: bool = True,
        heatmap_weight: float = 1.0,
        box_weight: float = 1.0,
        mask_weight: float = 1.0,
        object_stride: int = 4,
        init_weights: str | None = None,
        region_pos_weight: dict[str, float] | None = None,
        region_closing_m: float = REGION_CLOSING_M,
        head_norm: str = "group",
        freeze: list[str] | None = None,
    ) -> None:
        super().__init__()
        for name, value, ok, rule in (
            ("lr", lr, lr > 0, "> 0"), ("weight_decay", weight_decay, weight_decay >= 0, ">= 0"),
            ("warmup_fraction", warmup_fraction, 0 <= warmup_fraction < 1, "in [0, 1)"),
            ("min_lr_ratio", min_lr_ratio, 0 <= min_lr_ratio <= 1, "in [0, 1]"),
            ("score_threshold", score_threshold, 0 <= score_threshold < 1, "in [0, 1)"),
            ("heatmap_weight", heatmap_weight, heatmap_weight >= 0, ">= 0"),
            ("box_weight", box_weight, box_weight >= 0, ">= 0"), ("mask_weight", mask_weight, mask_weight >= 0, ">= 0"),
            ("region_closing_m", region_closing_m, region_closing_m >= 0, ">= 0"),
        ):
            if not (math.isfinite(value) and ok):  # NaN fails every comparison, so it lands here too
                raise InputError(f"model: {name} must be a finite number {rule}, got {value:g}")
        self.save_hyperparameters()
        config = load_dataset_config(dataset)
        self.object_names = [c.name for c in config.object_classes]
        self.region_names = [c.name for c in config.region_classes]
        try:
            self.model = SiteDetector(len(self.object_names), len(self.region_names), backbone=backbone,
                                      in_channels=len(config.bands), fpn_channels=fpn_channels,
                                      head_channels=head_channels, backbone_weights=backbone_weights,
                                      object_stride=object_stride, head_norm=head_norm)
        except ValueError as exc:  # a bad model option: one line, as for any other bad config value
            raise InputError(f"model: {exc}") from None
        if init_weights:
            load_matching_weights(self.model, init_weights)
        self.frozen = self._freeze(freeze or [])
        self.loss = DetectionLoss(heatmap_weight=heatmap_weight, offset_weight=box_weight, size_weight=box_weight,
                                  angle_weight=box_weight, direction_weight=0.5 * box_weight,
                                  mask_bce_weight=mask_weight, mask_dice_weight=mask_weight,
                                  mask_pos_weight=self._mask_pos_weight(region_pos_weight))
        self.metrics = DetectionMetrics(self.object_names, self.region_names, score_threshold, object_stride,
                                        region_closing_px=region_closing_m / config.gsd_m,
                                        axis_aligned=tuple(not c.oriented for c in config.object_classes))
        self.data_info: dict = {}
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _freeze(self, parts: list[str]) -> list[torch.nn.Module]:
        if unknown := [part for part in parts if part not in NETWORK_PARTS]:
            raise InputError(f"freeze: unknown part {', '.join(unknown)} (parts: {', '.join(NETWORK_PARTS)})")
        if absent := [part for part in parts if getattr(self.model, part) is None]:
            raise InputError(f"freeze: this model has no {', '.join(absent)} (its dataset lacks that kind of class)")
        if set(parts) >= {part for part in NETWORK_PARTS if getattr(self.model, part) is not None}:
            raise InputError("freeze: that is the whole network, nothing would train")
        frozen = [getattr(self.model, part) for part in dict.fromkeys(parts)]
        for module in frozen:
            module.requires_grad_(False).eval()  # Lightning restores the modes it found, so set them here
        return frozen

    def train(self, mode: bool = True) -> SiteDetectionTask:
        """As `nn.Module.train`, but frozen parts stay in eval mode: batch norm would move their statistics."""
        super().train(mode)
        for module in getattr(self, "frozen", ()):  # nn.Module's own __init__ may call train()
            module.eval()
        return self

    def _mask_pos_weight(self, by_name: dict[str, float] | None) -> list[float] | None:
        if not by_name:
            return None
        if any(not (math.isfinite(value) and value > 0) for value in by_name.values()):
            raise InputError("region_pos_weight: weights must be positive finite numbers")
        if objects := sorted(set(by_name) & set(self.object_names)):
            raise InputError(f"region_pos_weight: {', '.join(objects)} is an object class, not a region class "
                             f"(region classes: {', '.join(self.region_names) or 'none'})")
        # A recipe serves any dataset: weights of classes this one lacks are said and left unused.
        if unknown := sorted(set(by_name) - set(self.region_names)):
            rank_zero_info(f"region_pos_weight: {', '.join(unknown)} is not a region class of this dataset "
                           f"(region classes: {', '.join(self.region_names) or 'none'}); not used")
        if not self.region_names:
            return None
        return [float(by_name.get(name, 1.0)) for name in self.region_names]

    def _image(self, batch: dict) -> torch.Tensor:
        image = batch["image"]
        return image.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last else image

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.loss(self.model.forward_train(self._image(batch)), batch)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_step=True, on_epoch=False,
                      batch_size=len(batch["image"]))
        self.log("train_loss", terms["loss"], prog_bar=True, batch_size=len(batch["image"]))
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _evaluate(self, batch: dict, stage: str) -> None:
        outputs = self.model.forward_train(self._image(batch))
        terms = self.loss(outputs, batch)
        self.log(f"{stage}/loss", terms["loss"], sync_dist=True, batch_size=len(batch["image"]))
        heatmap, box, mask = self.model.inference_outputs(outputs)
        self.metrics.update(heatmap, box, mask, batch["objects"], batch["mask"])

    def on_validation_epoch_end(self) -> None:
        self._report("val")

    def on_test_epoch_end(self) -> None:
        self._report("test")

    def _report(self, stage: str) -> None:
        values = self.metrics.compute()
        self.metrics.reset()
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, sync_dist=True)
        if self.trainer.sanity_checking:
            return
        rows = [f"{stage} epoch {self.current_epoch}: mAP@0.5 {values['map_50']:.3f}  mAP@[.5:.95] {values['map']:.3f}"]
        for name in self.object_names + self.region_names:
            ap50, ap = values.get(f"ap50/{name}", float("nan")), values.get(f"ap/{name}", float("nan"))
            iou = values.get(f"iou/{name}")
            rows.append(f"  {name:<14} AP@0.5 {ap50:.3f}  AP@[.5:.95] {ap:.3f}"
                        + (f"  mask IoU {iou:.3f}" if iou is not None else ""))
        rank_zero_info("\n".join(rows))

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": self.hparams.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=self.hparams.lr)
        progress = RunProgress(self.trainer)
        warmup, floor = self.hparams.warmup_fraction, self.hparams.min_lr_ratio

        def factor(step: int) -> float:
            return warmup_cosine(progress(step), warmup, floor)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_fit_start(self) -> None:
        self._take_data_info()
        self._fit_started = time.time()
        typical = self.data_info.get("typical_object_px")
        fresh = self.trainer.global_step == 0 and not self.hparams.init_weights
        if fresh and typical and self.model.object_head is not None:  # not on resume or fine-tuning
            self.model.object_head.set_size_prior(*typical, stride=self.model.object_stride)

    def on_validation_start(self) -> None:
        self._take_data_info()

    def _take_data_info(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "info"):
            self.data_info = datamodule.info()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Records the data description, the device and the training seconds, summed over resumes."""
        started = getattr(self, "_fit_started", None)
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
        seconds = getattr(self, "_seconds_before", 0.0) + time.time() - started if started else None
        checkpoint[CHECKPOINT_KEY] = {**self.data_info, "device": device,
                                      "train_seconds": round(seconds, 1) if seconds is not None else None}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.data_info = checkpoint.get(CHECKPOINT_KEY, {})
        self._seconds_before = float(self.data_info.get("train_seconds") or 0.0)
