"""Augmentation moves image, objects and masks together, to the pixel."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.features import rasterize
from shapely.geometry import Polygon

from train.data.augment import BandGrey, BandSaturation, apply, training_augmentation
from train.data.labels import corners_to_labels


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.zeros((3, 96, 128), np.float32)
    corners = np.array([[[70.0, 20.0], [70.0, 30.0], [30.0, 30.0], [30.0, 20.0]]])  # front edge at x = 70
    image[:, 20:30, 30:70] = 1.0
    masks = np.zeros((1, 96, 128), np.uint8)
    masks[0, 60:80, 10:40] = 1
    image[0, 60:80, 10:40] = 0.5
    return image, corners, masks


@pytest.mark.parametrize("seed", range(12))
def test_objects_masks_and_pixels_move_together(seed):
    transform = training_augmentation()
    transform.set_random_seed(seed)
    image, corners, masks = _scene()
    out_image, out_corners, out_masks = apply(transform, image, corners, masks)
    drawn = rasterize([(Polygon(out_corners[0]), 1)], out_shape=out_image.shape[1:]).astype(bool)
    bright = out_image.mean(axis=0) > 0.6
    # Geometric transforms move the labels exactly where the pixels go (scale jitter blurs one pixel of edge).
    assert (drawn & bright).sum() / max(1, (drawn | bright).sum()) > 0.85
    region_pixels = np.abs(out_image[0] - out_image[1]) > 0.2
    assert (out_masks[0].astype(bool) & region_pixels).sum() / max(1, out_masks[0].sum()) > 0.85


def test_heading_follows_the_front_edge_through_flips():
    image, corners, masks = _scene()
    labels = corners_to_labels(corners, np.array([0]), np.array([True]), image.shape[1:])
    assert labels.headings[0] == pytest.approx(0.0, abs=1e-6)  # front faces +x
    flipped = corners.copy()
    flipped[..., 0] = image.shape[2] - flipped[..., 0]
    after = corners_to_labels(flipped, np.array([0]), np.array([True]), image.shape[1:])
    assert after.headings[0] == pytest.approx(np.pi, abs=1e-6)
    assert after.rboxes[0, 2:4] == pytest.approx([40.0, 10.0])


@pytest.mark.parametrize("seed", range(8))
def test_flips_and_rotations_are_exact_to_the_pixel(seed):
    import albumentations as A

    transform = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=1.0)],
                          keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))
    transform.set_random_seed(seed)
    image, corners, masks = _scene()
    out_image, out_corners, _ = apply(transform, image, corners, masks)
    drawn = rasterize([(Polygon(out_corners[0]), 1)], out_shape=out_image.shape[1:]).astype(bool)
    np.testing.assert_array_equal(drawn, out_image.mean(axis=0) > 0.6)


def test_band_saturation_moves_each_pixel_along_the_mean_of_its_bands():
    pixel = np.array([[[0.2, 0.5, 0.8, 0.5]]], np.float32)  # one pixel, four bands, mean 0.5
    saturation = BandSaturation(limit=0.5)
    np.testing.assert_allclose(saturation.apply(pixel, factor=0.0), 0.5)
    np.testing.assert_allclose(saturation.apply(pixel, factor=1.5), [[[0.05, 0.5, 0.95, 0.5]]], atol=1e-6)
    np.testing.assert_allclose(saturation.apply(pixel, factor=2.0), [[[0.0, 0.5, 1.0, 0.5]]], atol=1e-6)
    assert not any(isinstance(t, BandSaturation) for t in training_augmentation())
    assert any(isinstance(t, BandSaturation) for t in training_augmentation(saturation=0.7))


def test_band_grey_gives_every_band_the_mean_of_the_pixels_bands():
    pixels = np.array([[[0.2, 0.5, 0.8, 0.9], [0.0, 0.0, 0.3, 0.1]]], np.float32)  # two pixels, four bands
    np.testing.assert_allclose(BandGrey(p=1).apply(pixels), [[[0.6] * 4, [0.1] * 4]], atol=1e-6)
    assert not any(isinstance(t, BandGrey) for t in training_augmentation())
    assert [t.p for t in training_augmentation(grey=0.3) if isinstance(t, BandGrey)] == [0.3]


def test_the_widest_photometric_changes_keep_every_pixel_finite_and_in_range():
    transform = training_augmentation(scale_jitter=0.9, brightness_contrast=0.99, saturation=0.99, grey=0.5)
    transform.set_random_seed(0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        image = rng.random((3, 32, 32), dtype=np.float32)
        out = apply(transform, image, np.zeros((0, 4, 2)), np.zeros((0, 32, 32), np.uint8))[0]
        assert np.isfinite(out).all() and out.min() >= 0
