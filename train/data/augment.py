"""Augmentation with albumentations, applied to image, object corners and region masks together.

Objects travel as keypoints (their four corners, front edge first), so flips,
90° rotations and scale jitter move them exactly; the rectangle and heading
are rebuilt from the moved corners afterwards.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


class BandSaturation(A.ImageOnlyTransform):
    """Saturation for any number of bands: each pixel moves away from the mean of its bands (factor above 1)
    or toward it (below 1, grey at 0) by a factor drawn from [1 - limit, 1 + limit], and stays in [0, 1]
    (the gamma that follows turns a negative value into NaN)."""

    def __init__(self, limit: float = 0.5, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.limit = limit

    def get_params(self) -> dict[str, float]:
        return {"factor": self.py_random.uniform(1 - self.limit, 1 + self.limit)}

    def apply(self, img: np.ndarray, factor: float, **params) -> np.ndarray:
        grey = img.mean(axis=-1, keepdims=True)
        return np.clip(grey + factor * (img - grey), 0, 1).astype(img.dtype)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("limit",)


class BandGrey(A.ImageOnlyTransform):
    """Every band replaced by the mean of the pixel's bands: the chip without its colours, so that the
    network has to find objects by shape and texture as well (any number of bands)."""

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        return np.broadcast_to(img.mean(axis=-1, keepdims=True), img.shape).astype(img.dtype)


def training_augmentation(scale_jitter: float = 0.1, brightness_contrast: float = 0.15,
                          saturation: float = 0.0, grey: float = 0.0) -> A.Compose:
    """Flips, 90° rotations, scale (GSD) jitter, photometric changes, blur, noise.

    `brightness_contrast` bounds the relative change of each; `saturation`, that of the bands' spread
    around their mean (`BandSaturation`, 0: off); `grey`, the share of chips shown without colour
    (`BandGrey`, 0: off). The defaults suit imagery like the training set's;
    scenes of another site or season need wider ones (docs/your-own-data.md). Works on float32 images
    in [0, 1] with any number of bands.
    """
    recolor = [BandSaturation(saturation, p=0.7)] if saturation else []
    recolor += [BandGrey(p=grey)] if grey else []
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.Affine(scale=(1 - scale_jitter, 1 + scale_jitter), border_mode=cv2.BORDER_CONSTANT, fill=0,
                     fill_mask=0, p=0.5),
            A.RandomBrightnessContrast(brightness_limit=brightness_contrast, contrast_limit=brightness_contrast,
                                       p=0.7),
            *recolor,
            A.RandomGamma(gamma_limit=(85, 115), p=0.3),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 0.9)),
                     A.GaussNoise(std_range=(0.005, 0.03))], p=0.3),
        ],
        keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
        seed=None,
    )


def apply(transform: A.Compose, image: np.ndarray, corners: np.ndarray, masks: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Augment one sample.

    image: (C, H, W) float32 in [0, 1]; corners: (N, 4, 2) pixels; masks: (K, H, W) uint8.
    Returns them in the same layouts.

    Our corners are continuous (pixel i spans [i, i+1)); albumentations moves
    keypoints as pixel indices (a flip maps x to W - 1 - x), hence the half
    pixel shift in and out.
    """
    out = transform(
        image=np.ascontiguousarray(np.moveaxis(image, 0, -1)),
        masks=list(masks),
        keypoints=corners.reshape(-1, 2) - 0.5 if len(corners) else np.zeros((0, 2), np.float32),
    )
    moved = np.asarray(out["keypoints"], dtype=np.float64).reshape(-1, 4, 2) + 0.5
    new_masks = np.stack(out["masks"]) if len(masks) else masks
    return np.moveaxis(out["image"], -1, 0).astype(np.float32), moved, new_masks.astype(np.uint8)
