"""Backbones that turn a multi-band image into features at strides 4, 8, 16 and 32.

Every backbone is a torchvision classification network cut with
`torchvision.models.feature_extraction.create_feature_extractor`, so the
returned module is an FX `GraphModule` that exports to ONNX as plain ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

#: Keys of the feature dict a backbone returns, finest first, with their strides.
FEATURE_KEYS: tuple[str, ...] = ("c2", "c3", "c4", "c5")
FEATURE_STRIDES: tuple[int, ...] = (4, 8, 16, 32)


@dataclass(frozen=True)
class _Spec:
    build: Callable[[], nn.Module]
    first_conv: str  # dotted path of the stem convolution that reads the image
    nodes: tuple[str, str, str, str]  # graph nodes at strides 4, 8, 16, 32
    channels: tuple[int, int, int, int]
    classifier_prefix: str  # state_dict keys under it are not part of the backbone


_RESNET_NODES = ("layer1", "layer2", "layer3", "layer4")

_SPECS: dict[str, _Spec] = {
    "resnet18": _Spec(
        torchvision.models.resnet18, "conv1", _RESNET_NODES, (64, 128, 256, 512), "fc."
    ),
    "resnet34": _Spec(
        torchvision.models.resnet34, "conv1", _RESNET_NODES, (64, 128, 256, 512), "fc."
    ),
    "resnet50": _Spec(
        torchvision.models.resnet50, "conv1", _RESNET_NODES, (256, 512, 1024, 2048), "fc."
    ),
    "mobilenet_v3_large": _Spec(
        torchvision.models.mobilenet_v3_large,
        "features.0.0",
        ("features.3", "features.6", "features.12", "features.16"),
        (24, 40, 112, 960),
        "classifier.",
    ),
    "mobilenet_v3_small": _Spec(
        torchvision.models.mobilenet_v3_small,
        "features.0.0",
        ("features.1", "features.3", "features.8", "features.12"),
        (16, 24, 48, 576),
        "classifier.",
    ),
}

BACKBONE_NAMES: tuple[str, ...] = tuple(_SPECS)


class Backbone(nn.Module):
    """Multi-scale feature extractor.

    `forward(x)` takes `x` float32 `(B, in_channels, H, W)` with H and W
    multiples of 32 and returns a dict with keys `FEATURE_KEYS`
    (`"c2"` … `"c5"`), where `"cK"` is `(B, channels[K-2], H / 2**K, W / 2**K)`.
    """

    def __init__(self, body: nn.Module, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.body = body
        self.channels: tuple[int, ...] = channels
        self.strides: tuple[int, ...] = FEATURE_STRIDES

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.body(x)


def build_backbone(name: str, in_channels: int, weights: str | None = None) -> Backbone:
    """Build a backbone by name, randomly initialised unless `weights` is given.

    Args:
        name: one of `BACKBONE_NAMES`.
        in_channels: number of image bands (>= 1). When it is not 3 the stem
            convolution is replaced; if RGB weights were loaded its kernels are
            spread over the new bands (see `adapt_stem_weight`).
        weights: `None` for random init; a path to a local state_dict file
            (`.pth`/`.pt`) of the torchvision classification network, with a
            3-band or an `in_channels`-band stem; or the name of a torchvision
            weights enum such as `"ResNet18_Weights.IMAGENET1K_V1"` (this
            downloads the weights unless they are in the torch hub cache).

    Raises:
        ValueError: unknown name, bad band count, or weights that do not fit.
    """
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONE_NAMES)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")

    model = spec.build()
    state = _load_state_dict(weights) if weights is not None else None
    stem_key = f"{spec.first_conv}.weight"
    if state is not None and stem_key in state and state[stem_key].shape[1] != in_channels:
        # RGB weights for a multi-band model: load them, then adapt the stem.
        _load_into(model, state, spec.classifier_prefix, weights)
        _replace_stem(model, spec.first_conv, in_channels, pretrained=True)
    else:
        _replace_stem(model, spec.first_conv, in_channels, pretrained=False)
        if state is not None:
            _load_into(model, state, spec.classifier_prefix, weights)

    body = create_feature_extractor(
        model, return_nodes=dict(zip(spec.nodes, FEATURE_KEYS, strict=True))
    )
    return Backbone(body, spec.channels)


def adapt_stem_weight(rgb: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Spread a 3-band stem kernel `(out, 3, k, k)` over `in_channels` bands.

    The first three bands keep the R, G, B kernels (RGB+NIR imagery keeps its
    colour features); further bands, and all bands of an image with fewer than
    three, get the mean RGB kernel. Everything is scaled by `3 / in_channels`,
    so the summed kernel, and hence the response to a uniform image and the
    activation magnitude the pretrained layers after the stem expect, is
    unchanged. One band thus gets the sum of the RGB kernels (a grey image).
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected an RGB kernel (out, 3, k, k), got {tuple(rgb.shape)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    mean = rgb.mean(dim=1, keepdim=True)
    kept = rgb if in_channels >= 3 else rgb[:, :0]
    extra = mean.expand(-1, in_channels - kept.shape[1], -1, -1)
    return torch.cat([kept, extra], dim=1) * (3.0 / in_channels)


def _replace_stem(model: nn.Module, path: str, in_channels: int, pretrained: bool) -> None:
    old = model.get_submodule(path)
    if not isinstance(old, nn.Conv2d):
        raise TypeError(f"{path} is not a Conv2d")  # a spec bug, not a user error
    if old.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size=old.kernel_size,  # type: ignore[arg-type]
        stride=old.stride,  # type: ignore[arg-type]
        padding=old.padding,  # type: ignore[arg-type]
        dilation=old.dilation,  # type: ignore[arg-type]
        groups=old.groups,
        bias=old.bias is not None,
    )
    if pretrained:
        with torch.no_grad():
            new.weight.copy_(adapt_stem_weight(old.weight, in_channels))
            if old.bias is not None and new.bias is not None:
                new.bias.copy_(old.bias)
    else:
        # Same init torchvision uses for its stems (kaiming normal, fan_out).
        nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
        if new.bias is not None:
            nn.init.zeros_(new.bias)
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, attr, new)


def _load_state_dict(weights: str) -> dict[str, torch.Tensor]:
    path = Path(weights)
    if path.suffix in {".pth", ".pt"} or path.exists():
        if not path.is_file():
            raise ValueError(f"backbone weights file not found: {weights}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{weights} does not hold a state_dict")
        return state
    try:
        enum = torchvision.models.get_weight(weights)
    except (ValueError, AttributeError, KeyError) as err:
        raise ValueError(
            f"backbone weights {weights!r} are neither a .pth/.pt file nor a torchvision "
            f"weights name like 'ResNet18_Weights.IMAGENET1K_V1'"
        ) from err
    return enum.get_state_dict(progress=False)


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], skip: str, source: str) -> None:
    # The classifier head is thrown away by the feature extractor, so a state
    # dict with or without it (or with another class count) is fine.
    state = {k: v for k, v in state.items() if not k.startswith(skip)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if keys
        )
        raise ValueError(f"backbone weights {source} do not fit the model ({detail})")
    model.load_state_dict(state, strict=False)


__all__ = [
    "BACKBONE_NAMES",
    "FEATURE_KEYS",
    "FEATURE_STRIDES",
    "Backbone",
    "adapt_stem_weight",
    "build_backbone",
]
