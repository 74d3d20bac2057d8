import numpy as np
import pytest
import shapely
import torch
import torch.nn.functional as F
import torchvision

from infer.contract.codec import ObjectLabels, encode_targets
from infer.contract.geometry import rbox_to_corners
from train.losses import DetectionLoss
from train.model import BACKBONE_NAMES, SiteDetector, build_backbone, suppress_peaks
from train.model.backbone import adapt_stem_weight

SMALL = {"fpn_channels": 16, "head_channels": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34", "resnet50", "mobilenet_v3_large", "mobilenet_v3_small"])
@pytest.mark.parametrize("bands", [1, 3, 4])
def test_output_shapes(backbone, bands):
    assert backbone in BACKBONE_NAMES
    model = SiteDetector(2, 3, backbone=backbone, in_channels=bands, **SMALL).eval()
    with torch.no_grad():
        heatmap, box, mask = model(torch.randn(2, bands, 64, 96))
    assert heatmap.shape == (2, 2, 16, 24)
    assert box.shape == (2, 7, 16, 24)
    assert mask.shape == (2, 3, 64, 96)
    assert 0 <= heatmap.min() and heatmap.max() <= 1
    assert 0 <= mask.min() and mask.max() <= 1


def test_object_stride_2_doubles_the_object_grid_only():
    model = SiteDetector(2, 1, object_stride=2, **SMALL).eval()
    with torch.no_grad():
        heatmap, box, mask = model(torch.randn(1, 3, 64, 96))
    assert heatmap.shape == (1, 2, 32, 48) and box.shape == (1, 7, 32, 48)
    assert mask.shape == (1, 1, 64, 96)
    assert model.object_stride == 2
    pooled = F.max_pool2d(heatmap, 3, stride=1, padding=1)
    assert torch.all((heatmap == 0) | (heatmap == pooled))


def test_train_outputs_match_inference_outputs():
    model = SiteDetector(1, 1, **SMALL).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        raw = model.forward_train(x)
        heatmap, box, mask = model(x)
    assert raw["mask_logits"].shape == (1, 1, 64, 64)
    torch.testing.assert_close(mask, torch.sigmoid(raw["mask_logits"]))
    torch.testing.assert_close(box, raw["box"])
    kept = heatmap > 0
    torch.testing.assert_close(heatmap[kept], torch.sigmoid(raw["heatmap_logits"])[kept])
    # The focal prior: an untrained head starts near p = 0.1 everywhere.
    assert torch.sigmoid(raw["heatmap_logits"]).mean().item() == pytest.approx(0.1, abs=0.05)


def test_heatmap_output_is_peak_suppressed():
    model = SiteDetector(2, 1, **SMALL).eval()
    with torch.no_grad():
        heatmap, _, _ = model(torch.randn(2, 3, 128, 128))
    pooled = F.max_pool2d(heatmap, 3, stride=1, padding=1)
    kept = heatmap > 0
    assert kept.any() and (~kept).any()
    assert torch.equal(heatmap[kept], pooled[kept])


def test_suppress_peaks_keeps_only_local_maxima():
    # Distinct background values: an exactly flat plateau would be kept (it equals its max-pool).
    logits = -5.0 - 0.01 * torch.arange(25.0).reshape(1, 1, 5, 5)
    logits[0, 0, 1, 1], logits[0, 0, 1, 2], logits[0, 0, 4, 4] = 3.0, 2.0, 1.0
    out = suppress_peaks(logits)
    assert torch.nonzero(out[0, 0]).tolist() == [[1, 1], [4, 4]]
    assert out[0, 0, 1, 1] == torch.sigmoid(torch.tensor(3.0))


def test_channels_last_gives_the_same_output():
    model = SiteDetector(2, 2, **SMALL).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        got = model_cl(x.contiguous(memory_format=torch.channels_last))
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_autocast_bfloat16_runs_and_loss_is_finite():
    model = SiteDetector(1, 1, **SMALL)
    image, targets = synthetic_sample(64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model.forward_train(image)
        terms = DetectionLoss()(outputs, targets)
    assert outputs["box"].dtype == torch.bfloat16
    assert terms["loss"].dtype == torch.float32 and torch.isfinite(terms["loss"])


def synthetic_sample(size: int = 128) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Three rotated rectangles (two classes) and one region, drawn into 3 bands."""
    scale = size / 128
    rboxes = np.array([[40, 36, 40, 16, 0.4], [90, 80, 28, 10, 2.0], [30, 100, 24, 12, 1.1]])
    rboxes[:, :4] *= scale
    classes = np.array([0, 1, 1])
    labels = ObjectLabels(rboxes, classes, np.array([np.nan, 2.0, 1.1 + np.pi]))
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    image = np.random.default_rng(0).normal(0, 0.1, (3, size, size)).astype(np.float32)
    for polygon, cls in zip(shapely.polygons(rbox_to_corners(rboxes)), classes, strict=True):
        image[cls][shapely.contains_xy(polygon, xs, ys)] += 1.0
    region = np.zeros((1, size, size), np.uint8)
    region[0, int(70 * scale) : int(120 * scale), int(60 * scale) : int(120 * scale)] = 1
    image[2] += 0.8 * region[0]
    targets = encode_targets(labels, region, (size, size), 2)
    return torch.from_numpy(image)[None], {k: torch.from_numpy(v)[None] for k, v in targets.items()}


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    image, targets = synthetic_sample()
    model = SiteDetector(2, 1, fpn_channels=32, head_channels=32)
    loss_fn = DetectionLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = []
    for _ in range(20):
        terms = loss_fn(model.forward_train(image), targets)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        history.append({name: value.item() for name, value in terms.items()})
    first, last = history[0], history[-1]
    assert last["loss"] < 0.4 * first["loss"]
    for name in ("heatmap", "size", "angle", "mask_bce"):
        assert last[name] < 0.7 * first[name], name


def test_invalid_arguments():
    with pytest.raises(ValueError, match="needs at least one object or region class, got 0 and 0"):
        SiteDetector(0, 0)
    with pytest.raises(ValueError, match="needs at least one object or region class, got -1 and 2"):
        SiteDetector(-1, 2)
    with pytest.raises(ValueError, match=r"object stride must be one of \(2, 4\), got 8"):
        SiteDetector(1, 1, object_stride=8)
    with pytest.raises(ValueError, match="unknown backbone 'vgg'; choose one of: resnet18"):
        build_backbone("vgg", 3)
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        build_backbone("resnet18", 0)


@pytest.mark.parametrize(("objects", "regions", "outputs"), [(2, 0, 2), (0, 1, 1)])
def test_a_kind_without_classes_has_no_head_and_no_output(objects, regions, outputs):
    model = SiteDetector(objects, regions, fpn_channels=16, head_channels=16).eval()
    assert (model.object_head is None) == (objects == 0) and (model.region_head is None) == (regions == 0)
    with torch.no_grad():
        got = model(torch.zeros(1, 3, 64, 64))
        raw = model.forward_train(torch.zeros(1, 3, 64, 64))
    assert len(got) == outputs
    assert got[0].shape[1] == (objects if objects else regions)
    heatmap, box, mask = model.inference_outputs(raw)
    assert (heatmap is None, box is None, mask is None) == (not objects, not objects, not regions)


def test_the_size_prior_starts_boxes_at_a_typical_object():
    from train.model.heads import ObjectHead

    head = ObjectHead(16, 16, 1, stride=2).eval()
    head.set_size_prior(35.0, 20.0, stride=2)
    with torch.no_grad():
        _, box = head(torch.zeros(1, 16, 8, 8))
    np.testing.assert_allclose(box[0, 2:4].mean(dim=(1, 2)).numpy(), [np.log(17.5), np.log(10.0)], atol=0.05)


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_head_outputs_depend_on_the_tile_size_only_under_group_norm(norm):
    """The fusion and object head on a 256 px tile's features, and on the same features inside a 1024 px
    tile's: away from the small tile's borders (beyond the heads' reach) batch norm gives the same boxes,
    group norm, whose statistics are the whole input's, does not."""
    from train.model.heads import ObjectHead, SemanticFusion

    torch.manual_seed(0)
    fusion, head = SemanticFusion(8, 8, norm=norm), ObjectHead(8, 8, 2, stride=4, norm=norm)
    for module in (*fusion.modules(), *head.modules()):
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    fusion.eval(), head.eval()
    small = [torch.randn(1, 8, 256 // 2**k, 256 // 2**k) for k in range(2, 6)]
    large = [3 * torch.randn(1, 8, 1024 // 2**k, 1024 // 2**k) + 1 for k in range(2, 6)]
    for level, (inner, outer) in enumerate(zip(small, large, strict=True)):
        at = 384 // 2 ** (level + 2)  # the small tile at (384, 384) px of the large one
        outer[..., at:at + inner.shape[-2], at:at + inner.shape[-1]] = inner
    with torch.no_grad():
        _, box_small = head(fusion(small))
        _, box_large = head(fusion(large))
    reach = 24  # stride-4 cells: 3x3 convolutions and bilinear x2 upsamplings of four levels, then the head's
    inside_small = box_small[..., reach:64 - reach, reach:64 - reach]
    inside_large = box_large[..., 96 + reach:160 - reach, 96 + reach:160 - reach]
    difference = float((inside_small - inside_large).abs().max())
    if norm == "batch":
        assert difference < 1e-6
    else:
        assert difference > 1e-2


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_backbone_features_and_strides(name):
    backbone = build_backbone(name, 2)
    with torch.no_grad():
        features = backbone(torch.randn(1, 2, 64, 64))
    assert list(features) == ["c2", "c3", "c4", "c5"]
    for feature, channels, stride in zip(
        features.values(), backbone.channels, backbone.strides, strict=True
    ):
        assert feature.shape == (1, channels, 64 // stride, 64 // stride)


def test_local_rgb_weights_are_adapted_to_more_bands(tmp_path):
    reference = torchvision.models.resnet18()
    path = tmp_path / "rgb.pth"
    torch.save(reference.state_dict(), path)

    backbone = build_backbone("resnet18", 4, weights=str(path))

    stem = backbone.body.get_submodule("conv1").weight
    assert stem.shape == (64, 4, 7, 7)
    torch.testing.assert_close(stem, adapt_stem_weight(reference.conv1.weight, 4))
    torch.testing.assert_close(stem[:, 0], reference.conv1.weight[:, 0] * 0.75)
    torch.testing.assert_close(stem[:, 3], reference.conv1.weight.mean(1) * 0.75)
    torch.testing.assert_close(
        backbone.body.get_submodule("layer4.1.conv2").weight, reference.layer4[1].conv2.weight
    )
    # A constant image gives the same stem response as its RGB twin.
    with torch.no_grad():
        four = F.conv2d(torch.ones(1, 4, 9, 9), stem)
        three = F.conv2d(torch.ones(1, 3, 9, 9), reference.conv1.weight)
    torch.testing.assert_close(four, three, atol=1e-5, rtol=1e-4)


def test_bad_weights_are_reported(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        build_backbone("resnet18", 3, weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="neither a .pth/.pt file nor a torchvision"):
        build_backbone("resnet18", 3, weights="NoSuch_Weights.X")
    path = tmp_path / "other.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(ValueError, match="do not fit the model"):
        build_backbone("resnet18", 3, weights=str(path))
