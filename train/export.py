"""`python -m train export CHECKPOINT --out model.onnx`: a checkpoint → the deployable ONNX file.

The file is plain ONNX (default domain only, dynamic batch/height/width) and
describes itself: classes, bands, normalization, GSD, tile, overlap, stride,
version and provenance travel in its metadata. It takes the raster's own
pixels and normalizes them in the graph (`infer.contract.ingraph`) (`infer.contract.schema.ModelInfo`),
so `infer` needs nothing else (docs/design.md, decision 6). With
`--regions-in-graph` the graph also decodes its region masks (threshold,
closing, class choice) and returns a class map, for GPU nodes (decision 12).
Before the file takes its final name ONNX Runtime runs it beside PyTorch on
a synthetic tile and the two must agree (the parity check); a failed export
leaves no file behind (decision 8).
"""

from __future__ import annotations

import io
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import onnx
import torch

from infer.cli.console import OneLineArgumentParser, class_area, finite_float, run_command
from infer.contract.defaults import DEFAULT_SCORE, MASK_THRESHOLD, REGION_CLOSING_M
from infer.contract.ingraph import IMAGE_INPUT, decoding_regions, normalizing_input
from infer.contract.parity import DetectionComparison, compare_detections
from infer.contract.schema import INPUT_MULTIPLE, OUTPUT_NAMES, ClassInfo, ModelInfo, RegionDecode
from infer.errors import InputError, UsageError
from infer.files import atomic_write
from infer.runtime.model import OnnxModel, file_sha256
from infer.runtime.options import CLOSING_RADII_PER_OVERLAP
from infer.runtime.stitch import core_class_map
from infer.runtime.tiling import Tile
from synth.tile import busiest_tile, can_draw
from train.checkpoint import CHECKPOINT_KEY, read_checkpoint
from train.model.detector import OUTPUT_STRIDE, SiteDetector
from train.quantize import CALIBRATION_TILES, quantize

#: The largest object sitewatch is meant to find (a long storehouse), metres.
LARGEST_OBJECT_M = 60.0
#: Context beyond the object the network needs to see to score and size it, metres.
CONTEXT_MARGIN_M = 10.0
_DYNAMIC = {0: "batch", 2: "height", 3: "width"}


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint's network in eval mode; `sitewatch` is `checkpoint["sitewatch"]` (classes,
    bands, gsd_m, normalization, chip_size, dataset, device, train_seconds)."""

    model: SiteDetector
    sitewatch: dict
    hyper_parameters: dict
    global_step: int
    epoch: int


@dataclass(frozen=True)
class ExportReport:
    """What `export_checkpoint` wrote. `parity` is None when the check was skipped."""

    path: Path
    info: ModelInfo
    precision: str
    opset: int
    size_bytes: int
    seconds: float
    parity: ParityReport | None

    def lines(self) -> list[str]:
        info = self.info
        kinds = ", ".join(f"{c.name} ({c.kind}{', directional' if c.directional else ''})" for c in info.classes)
        return [f"wrote {self.path} ({self.size_bytes / 1e6:.1f} MB, ONNX opset {self.opset}, {self.precision}) "
                f"in {self.seconds:.1f} s", f"classes: {kinds}",
                f"bands {', '.join(info.bands)} | GSD {info.gsd_m:g} m | tile {info.tile} px | "
                f"overlap {info.overlap} px | stride {info.stride}",
                f"parity check {self.parity.summary()}" if self.parity else "parity check skipped (--no-check)"]


#: Largest |ONNX Runtime - PyTorch| allowed per output. fp32: the same float32 math
#: in another order, so differences are rounding (~1e-6 seen). fp16: ~3 decimal
#: digits per op through ~60 layers; ~5e-4 is seen on probabilities and box values,
#: 2e-2 leaves room for the larger activations of trained models. int8 is judged by
#: its decisions instead (`INT8_AGREEMENT`): a 256-step grid moves every float.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
#: Side of the tile the parity check runs on, pixels.
PARITY_TILE = 512
#: Two decoded objects are the same when centre and sizes agree within px, heading within rad.
MATCH_TOLERANCE = {"fp32": (1e-2, 1e-3), "fp16": (0.5, 2e-2)}
#: int8: two objects are the same when their rectangles overlap by this IoU. Its errors grow with an
#: object's size: the reference network's int8 graph, calibrated on 4 tiles, made a 110 px storehouse
#: 5.8 px shorter (IoU 0.95), and it may pick the other end of a storehouse (heading + π).
INT8_MATCH_IOU = 0.9
#: An int8 graph passes when at most these shares of the reference's objects and region pixels
#: are decided otherwise, not counting decisions whose reference score or probability lies within
#: `INT8_MARGIN` of its threshold (the reference network's, calibrated as `bench.int8` does: 0 objects,
#: and 40 of 5960 berm and site pixels, 0.7 %, on the parity tile; `bench/results/int8.json`). What int8
#: costs in accuracy is `bench.int8`'s to say.
INT8_AGREEMENT = {"objects": 0.1, "region_pixels": 0.05}
INT8_MARGIN = 0.05


@dataclass(frozen=True)
class ParityReport:
    """ONNX Runtime (CPU) vs PyTorch on one tile of a synthetic scene (`synth.tile.busiest_tile`).

    The tile is the generator's busiest window in the model's bands, pixel
    type and GSD, so a trained model finds objects and regions on it and the
    comparison of detections means something; `content` says what it holds.
    For bands or pixel types the generator cannot draw it is seeded N(0, 1)
    noise in normalized units (`content` None).

    `max_abs_diff`: per output over all cells. `peak_diff`: heatmap difference
    over cells that are peaks in both. A peak may move between neighbours
    whose logits tie to within rounding — fp16 does it often, fp32 in a barely
    trained network whose heatmap is still flat at its prior — which makes the
    all-cell heatmap difference a peak's height, not an error of the graph.
    `detections`: objects decoded at `DEFAULT_SCORE` and region pixels above
    `MASK_THRESHOLD` (`infer.contract.parity.compare_detections`, margin =
    the larger of the mask and peak differences). Passes, fp32: box, mask and peak differences <= 1e-4
    and identical detections. fp16: the same differences <= 2e-2; detections
    are reported, not required identical. int8: objects matched by rectangle IoU
    >= `INT8_MATCH_IOU`, margin `INT8_MARGIN`, and at most `INT8_AGREEMENT` of
    them and of the region pixels decided otherwise.
    """

    shape: tuple[int, ...]
    precision: str
    max_abs_diff: dict[str, float]
    peak_diff: float
    detections: DetectionComparison
    content: dict[str, int] | None = None  # None: a random tile
    #: For a graph that decodes its regions: pixels whose class or score differ from the host's decoding
    #: of the same network's float masks on the same tile (must be 0); None otherwise.
    decoded_region_mismatches: int | None = None

    @property
    def tolerance(self) -> float | None:
        return TOLERANCE.get(self.precision)

    @property
    def passed(self) -> bool:
        if self.decoded_region_mismatches:
            return False
        if self.precision == "int8":
            d = self.detections
            return (d.object_mismatches <= INT8_AGREEMENT["objects"] * d.objects
                    and d.pixel_mismatches <= INT8_AGREEMENT["region_pixels"] * d.region_pixels)
        close = max(self.max_abs_diff.get("box", 0.0), self.max_abs_diff.get("mask", 0.0),
                    self.peak_diff) <= self.tolerance
        return close and self.detections.identical if self.precision == "fp32" else close

    def summary(self) -> str:
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in self.max_abs_diff.items())
        diffs += f", heatmap at common peaks {self.peak_diff:.1e}"
        d = self.detections
        differ = f"{d.object_mismatches} objects, {d.pixel_mismatches} region pixels"
        same = ("identical" if d.identical else f"within the allowance ({differ} differ)"
                if self.precision == "int8" and self.passed else f"DIFFERENT ({differ})")
        edge = f", {d.borderline} borderline decisions ignored" if d.borderline else ""
        holding = ", ".join(f"{n} {c}" for c, n in (self.content or {}).items()) or "nothing labeled"
        source = "random tile" if self.content is None else f"synthetic tile holding {holding}"
        decoded = "" if self.decoded_region_mismatches is None else (
            "; regions decoded in the graph as on the host" if not self.decoded_region_mismatches else
            f"; regions decoded in the graph DIFFER from the host's in {self.decoded_region_mismatches} pixels")
        allowed = (f"tolerance {self.tolerance:g}" if self.tolerance is not None else
                   "int8 is judged by its detections: at most {objects:.0%} of objects and {region_pixels:.0%} of "
                   "region pixels may differ".format(**INT8_AGREEMENT))
        return (f"{'passed' if self.passed else 'FAILED'} on a {'x'.join(map(str, self.shape))} {source}: "
                f"max |ORT - PyTorch| {diffs} ({allowed}); detections {same}, compared "
                f"{d.objects} objects at score > {DEFAULT_SCORE:g} and {d.region_pixels} region pixels{edge}"
                f"{decoded}")


def parity_tile(info: ModelInfo, size: int = PARITY_TILE, seed: int = 0) -> tuple[np.ndarray, dict[str, int] | None]:
    """The `1 x C x size x size` raw pixels the parity check runs on and what they hold (see `ParityReport`)."""
    if can_draw(len(info.bands), info.dtype):
        drawn = busiest_tile(size, info.gsd_m, len(info.bands), info.dtype, seed)
        return drawn.pixels[None], drawn.labels
    return random_pixels((1, len(info.bands), size, size), info, seed), None


def check_parity(model: SiteDetector, runtime: OnnxModel, precision: str, size: int = PARITY_TILE,
                 seed: int = 0) -> ParityReport:
    """Run `model` (eval) and `runtime` on one `1 x C x size x size` tile (see `ParityReport`) and compare;
    `runtime` is a graph that returns the network's outputs (masks, not decoded regions)."""
    info = runtime.info
    pixels, content = parity_tile(info, size, seed)
    shape = pixels.shape
    with torch.no_grad():
        reference = [None if t is None else t.numpy() for t in
                     model.inference_outputs(model.forward_train(torch.from_numpy(runtime.normalize(pixels))))]
    candidate = runtime.run(runtime.prepare(pixels))[:3]
    diffs = {name: float(np.max(np.abs(r - c))) for name, r, c in zip(OUTPUT_NAMES, reference, candidate, strict=True)
             if r is not None}
    peak_diff = 0.0
    if reference[0] is not None:
        peaks = (reference[0] > 0) & (candidate[0] > 0)
        peak_diff = float(np.max(np.abs(reference[0] - candidate[0])[peaks], initial=0.0))
    position, angle = MATCH_TOLERANCE.get(precision, (0.0, 0.0))
    # int8 moves probabilities by up to ~0.3 near region edges: a margin that wide would excuse every flip
    margin = INT8_MARGIN if precision == "int8" else max(diffs.get("mask", 0.0), peak_diff)
    first = [None if r is None else r[0] for r in reference]
    detections = compare_detections(first, [None if c is None else c[0] for c in candidate], position_px=position,
                                    angle_rad=angle, margin=margin, stride=info.stride,
                                    min_iou=INT8_MATCH_IOU if precision == "int8" else None)
    return ParityReport(shape, precision, diffs, peak_diff, detections, content)


def region_decoding_mismatches(network: OnnxModel, decoding: OnnxModel, size: int = PARITY_TILE,
                               seed: int = 0) -> int:
    """Pixels of the parity tile whose region class or score from `decoding` (a graph that decodes its
    regions) differ from the host's decoding of `network`'s float masks (the same network without it)."""
    pixels, _ = parity_tile(network.info, size, seed)
    mask = network.run(network.prepare(pixels)).mask[0]
    decoded = decoding.run(decoding.prepare(pixels))
    decode = decoding.info.region_decode
    whole = Tile(0, 0, size, size, (0, 0, size, size))
    classes, scores = core_class_map(mask, whole, decode.threshold, decode.closing_m / decoding.info.gsd_m)
    return int(np.sum((classes != decoded.region_class[0]) | (scores != decoded.region_score[0])))


def random_pixels(shape: tuple[int, ...], info: ModelInfo, seed: int) -> np.ndarray:
    """Seeded pixels of `info.input_dtype` spread like the training data (mean ± std per band), clipped to
    the type's range, for a model whose imagery `synth` cannot draw."""
    bands = (1, len(info.bands), 1, 1)
    values = (np.asarray(info.mean).reshape(bands) + np.asarray(info.std).reshape(bands)
              * np.random.default_rng(seed).standard_normal(shape))
    dtype = info.input_dtype
    if np.issubdtype(dtype, np.integer):
        values = np.clip(np.round(values), np.iinfo(dtype).min, np.iinfo(dtype).max)
    return values.astype(dtype)


def default_overlap(gsd_m: float, largest_object_m: float | None = None) -> int:
    """Tile overlap in pixels: ceil((largest object + 10 m) / GSD), rounded up to a multiple of 32.

    Why: each tile owns the detections whose centres fall in its core, and
    the core reaches half the overlap into it from either side. An object
    whose centre lies on the core's edge must still lie wholly inside the
    tile, so half the overlap must cover half the largest object, i.e.
    overlap >= its length; the 10 m more leave the network context around the
    object's far end (its size and heading come from the whole outline). A
    multiple of 32 keeps tile steps on the backbone's stride and on the
    4-pixel output grid. The largest object is the training data's
    (`largest_object_m`, recorded in the checkpoint), else 60 m, the largest
    synthetic storehouse: 0.5 m GSD → 140 px → 160 px.
    """
    if not gsd_m > 0:
        raise InputError(f"GSD must be > 0, got {gsd_m}")
    largest = largest_object_m if largest_object_m else LARGEST_OBJECT_M
    pixels = math.ceil((largest + CONTEXT_MARGIN_M) / gsd_m - 1e-9)
    return -(-pixels // INPUT_MULTIPLE) * INPUT_MULTIPLE


def default_tile(chip_size: int | None, overlap: int) -> int:
    """Recommended tile side: 4 × the training chip, at most 1024, a multiple of 32.

    Bigger tiles waste less on overlap and batch better on GPUs; 1024 keeps
    a batch of a few tiles in a small GPU's memory. When that is not more
    than twice the overlap (very fine GSDs) the tile grows to 2 × overlap +
    32, so that tiles still advance by more than they repeat.
    """
    chip = chip_size or 256
    tile = max(INPUT_MULTIPLE, min(4 * chip, 1024) // INPUT_MULTIPLE * INPUT_MULTIPLE)
    return tile if tile > 2 * overlap else 2 * overlap + INPUT_MULTIPLE


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    """Rebuild the `SiteDetector` of a sitewatch Lightning checkpoint (no data needed).

    The network is built from `hyper_parameters` (backbone, widths) and the
    class list and bands in `checkpoint["sitewatch"]`, without backbone
    weights (the state_dict has them), then loaded from the `model.` entries
    of `state_dict`. Raises `InputError` (one line) for a missing file, a
    file that is not a checkpoint, or a checkpoint of something else.
    """
    path = Path(path)
    return rebuild_checkpoint(read_checkpoint(path), path)


def rebuild_checkpoint(checkpoint: dict, path: Path) -> LoadedCheckpoint:
    """The network a `read_checkpoint` dict describes, with its weights; `path` names it in errors."""
    info = checkpoint[CHECKPOINT_KEY]
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    kinds = [c["kind"] for c in info["classes"]]
    try:
        model = SiteDetector(
            kinds.count("object"), kinds.count("region"), backbone=hparams.get("backbone", "resnet18"),
            in_channels=len(info["bands"]), fpn_channels=hparams.get("fpn_channels", 128),
            head_channels=hparams.get("head_channels", 128), backbone_weights=None,
            object_stride=hparams.get("object_stride", OUTPUT_STRIDE), head_norm=hparams.get("head_norm", "group"))
        prefix = "model."
        weights = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
        model.load_state_dict(weights, strict=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: its weights do not fit the network it describes: "
                         f"{str(exc).strip().splitlines()[0][:200]}") from None
    return LoadedCheckpoint(model.float().eval(), info, hparams, int(checkpoint.get("global_step", 0)),
                            int(checkpoint.get("epoch", 0)))


def model_info(loaded: LoadedCheckpoint, checkpoint: Path, precision: str, opset: int,
               tile: int | None, overlap: int | None) -> ModelInfo:
    """The metadata record of the exported file; `tile`/`overlap` None = the defaults above."""
    info = loaded.sitewatch
    overlap = default_overlap(info["gsd_m"], info.get("largest_object_m")) if overlap is None else overlap
    tile = default_tile(info.get("chip_size"), overlap) if tile is None else tile
    try:
        sitewatch_version = version("sitewatch")
    except PackageNotFoundError:
        sitewatch_version = "unknown"
    norm = info["normalization"]
    hparams = loaded.hyper_parameters
    provenance = {
        "backbone": hparams.get("backbone", "resnet18"), "fpn_channels": hparams.get("fpn_channels"),
        "head_channels": hparams.get("head_channels"), "head_norm": hparams.get("head_norm", "group"),
        "steps": loaded.global_step, "epoch": loaded.epoch,
        "train_seconds": info.get("train_seconds"), "device": info.get("device"),
        "dataset": info.get("dataset"), "chip_size": info.get("chip_size"),
        # The checkpoint's bytes, not the time of export: the same checkpoint exported alike is the same file,
        # which `infer run` takes as the same model (`infer.runtime.runfolder.run_settings`).
        "checkpoint": checkpoint.name, "checkpoint_sha256": file_sha256(checkpoint),
        "precision": precision, "opset": opset, "torch": torch.__version__,
    }
    try:
        return ModelInfo(
            classes=tuple(ClassInfo.from_record(c) for c in info["classes"]),
            bands=tuple(info["bands"]), mean=tuple(float(v) for v in norm["mean"]),
            std=tuple(float(v) for v in norm["std"]), gsd_m=float(info["gsd_m"]), tile=tile,
            overlap=overlap, stride=loaded.model.object_stride, version=sitewatch_version,
            scale=float(norm["scale"]) if norm.get("scale") is not None else None, dtype=info.get("dtype"),
            graph_input="raw", provenance=provenance)
    except ValueError as exc:
        raise InputError(f"{checkpoint}: {exc}") from None


def to_onnx(model: SiteDetector, in_channels: int, output_names: tuple[str, ...] = OUTPUT_NAMES,
            opset: int = 17) -> onnx.ModelProto:
    """Trace `model` (eval mode) into an ONNX graph with dynamic batch, height and width; `output_names` those
    its classes give (`ClassSchema.output_names`)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript
        # (not a dependency); norm layers' shape checks warn harmlessly while tracing.
        for category in (DeprecationWarning, UserWarning, torch.jit.TracerWarning):
            warnings.simplefilter("ignore", category)
        torch.onnx.export(model, (torch.zeros(1, in_channels, 128, 128),), buffer, dynamo=False,
                          opset_version=opset, input_names=[IMAGE_INPUT], output_names=list(output_names),
                          dynamic_axes={name: _DYNAMIC for name in (IMAGE_INPUT, *output_names)})
    return onnx.load_from_string(buffer.getvalue())


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and activations in float16; the input and outputs stay float32.

    onnxruntime's converter appends the input/output Casts at the end of the
    node list, which the ONNX checker rejects (graphs must be topologically
    sorted), so the nodes are re-sorted afterwards.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "some values truncated to fp16 range": expected
        half = convert_float_to_float16(proto, keep_io_types=True)
    _sort_topologically(half.graph)
    return half


def _sort_topologically(graph: onnx.GraphProto) -> None:
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise InputError("the float16 graph has a cycle or a dangling input; export without --fp16")
        pending = waiting
    copies = [onnx.NodeProto.FromString(node.SerializeToString()) for node in ordered]
    del graph.node[:]  # detaches the originals: hence the copies
    graph.node.extend(copies)


def validate_graph(proto: onnx.ModelProto) -> None:
    """ONNX checker plus docs/design.md, decision 6: every op in the default domain (no custom ops)."""
    onnx.checker.check_model(proto)
    foreign = sorted({f"{n.domain}::{n.op_type}" for n in proto.graph.node if n.domain not in ("", "ai.onnx")})
    foreign += [f"opset {o.domain}" for o in proto.opset_import if o.domain not in ("", "ai.onnx")]
    if foreign:
        raise InputError(f"the exported graph uses ops outside the default ONNX domain: {', '.join(foreign)}")


def export_checkpoint(checkpoint: Path, out: Path, opset: int = 17, fp16: bool = False,
                      tile: int | None = None, overlap: int | None = None, check: bool = True,
                      min_area_m2: Sequence[tuple[str, float]] = (), regions_in_graph: bool = False,
                      region_closing_m: float = REGION_CLOSING_M, int8: Sequence[Path] = ()) -> ExportReport:
    """Export a sitewatch checkpoint to a self-describing ONNX file at `out`.

    Args:
        checkpoint: a `.ckpt` written by `python -m train fit`.
        out: destination; written under a temporary name and renamed only
            when complete and checked, so `out` is never a half file.
        opset: ONNX opset, 13..20 (17 is the tested one).
        fp16: store weights and compute in float16, keep float32 input/outputs.
        int8: calibration scenes; non-empty = convolutions in int8 (`train.quantize`), float32 input/outputs.
        tile, overlap: recommended tiling in pixels, multiples of 32 with
            overlap < tile; None = `default_tile` / `default_overlap`.
        check: run ONNX Runtime (CPU) beside PyTorch on a seeded random tile;
            raise `InputError` when they disagree (see `ParityReport`).
        min_area_m2: (region class, m²) pairs that replace the classes' own `min_area_m2` (for
            checkpoints trained before a dataset gave one).
        regions_in_graph: the graph decodes its region masks itself (`infer.contract.ingraph.decoding_regions`),
            at `MASK_THRESHOLD` and a closing disc of `region_closing_m` metres, which a run cannot change;
            the parity check then also requires its class map to equal the host's decoding exactly.

    Returns an `ExportReport`. Raises `InputError`/`UsageError` (one line).
    """
    started, checkpoint, out = time.perf_counter(), Path(checkpoint), Path(out)
    for name, value, least in (("--tile", tile, 1), ("--overlap", overlap, 0)):
        if value is not None and (value < least or value % INPUT_MULTIPLE):
            raise UsageError(f"{name} must be a {'positive' if least else 'non-negative'} multiple of "
                             f"{INPUT_MULTIPLE}, got {value}")
    if tile is not None and overlap is not None and overlap >= tile:
        raise UsageError(f"--overlap ({overlap}) must be less than --tile ({tile})")
    if not (math.isfinite(region_closing_m) and region_closing_m >= 0):
        raise UsageError(f"--region-closing must be a finite number of metres >= 0, got {region_closing_m:g}")
    loaded = load_checkpoint(checkpoint)
    if fp16 and int8:
        raise UsageError("--fp16 and --int8 are two precisions: choose one")
    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    network_info = with_min_areas(model_info(loaded, checkpoint, precision, opset, tile, overlap), min_area_m2)
    info = network_info
    if regions_in_graph:
        if not network_info.region_classes:
            raise UsageError("--regions-in-graph: this checkpoint has no region classes to decode")
        if CLOSING_RADII_PER_OVERLAP * region_closing_m / network_info.gsd_m > network_info.overlap:
            raise UsageError(f"--region-closing of {region_closing_m:g} m needs an overlap of at least "
                             f"{math.ceil(CLOSING_RADII_PER_OVERLAP * region_closing_m / network_info.gsd_m)} px, "
                             f"got {network_info.overlap}")
        info = replace(network_info, region_decode=RegionDecode(MASK_THRESHOLD, region_closing_m))
    network = to_onnx(loaded.model, len(info.bands), info.output_names, opset)
    network = normalizing_input(to_fp16(network) if fp16 else network, info)
    if int8:
        network, calibration = quantize(network, network_info, int8)
        network_info, info = (replace(i, provenance={**i.provenance, "int8_calibration": calibration})
                              for i in (network_info, info))
    proto = decoding_regions(network, info) if regions_in_graph else network
    for graph, record in ((network, network_info), (proto, info)):
        graph.producer_name, graph.producer_version = "sitewatch", info.version
        graph.doc_string = "sitewatch detector; what it expects is in the metadata key 'sitewatch'"
        onnx.helper.set_model_props(graph, record.to_metadata())
    validate_graph(proto)

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as temporary:
        parity = None
        if check:  # the network against PyTorch; then a graph that decodes its regions against the network
            onnx.save_model(network, temporary)
            plain = OnnxModel(temporary, device="cpu", threads=torch.get_num_threads())
            parity = check_parity(loaded.model, plain, precision)
        onnx.save_model(proto, temporary)
        if check:
            if regions_in_graph:
                decoding = OnnxModel(temporary, device="cpu", threads=torch.get_num_threads())
                parity = replace(parity, decoded_region_mismatches=region_decoding_mismatches(plain, decoding))
            if not parity.passed:
                raise InputError(f"ONNX Runtime disagrees with PyTorch, file not written: {parity.summary()}")
    return ExportReport(out, info, precision, opset, out.stat().st_size, time.perf_counter() - started, parity)


def with_min_areas(info: ModelInfo, min_area_m2: Sequence[tuple[str, float]]) -> ModelInfo:
    """`info` with the region classes named in `min_area_m2` given those smallest reported areas."""
    areas = dict(min_area_m2)
    regions = {c.name for c in info.region_classes}
    if unknown := sorted(set(areas) - regions):
        raise UsageError(f"--min-area: {', '.join(unknown)} is not a region class of this checkpoint "
                         f"(region classes: {', '.join(sorted(regions)) or 'none'})")
    classes = tuple(replace(c, min_area_m2=areas[c.name]) if c.name in areas else c for c in info.classes)
    return replace(info, classes=classes)


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m train export",
        description="Export a sitewatch checkpoint to a self-describing ONNX file for `python -m infer`.")
    add = parser.add_argument
    add("checkpoint", type=Path, help="a .ckpt written by `python -m train fit`")
    add("--out", type=Path, default=None,
        help="the .onnx file to write (default: CHECKPOINT with the suffix .onnx)")
    add("--fp16", action="store_true", help="float16 weights, float32 input/outputs (default: float32)")
    add("--int8", type=Path, nargs="+", default=(), metavar="SCENE",
        help="quantize the convolutions to int8 (static, QDQ) for ONNX Runtime on CPUs, their ranges taken from "
             f"{CALIBRATION_TILES} tiles of these scenes or chips, read as `infer run` reads them: give a few "
             "scenes of the imagery the model will see, e.g. training scenes (default: float32)")
    add("--opset", type=int, default=17, choices=range(13, 21), metavar="N",
        help="ONNX opset version, 13..20 (default: 17)")
    add("--tile", type=int, default=None,
        help="recommended tile side in px, a multiple of 32 (default: 4 x the training chip, at most 1024, "
             "or 2 x the overlap + 32 when that is not more)")
    add("--overlap", type=int, default=None,
        help="tile overlap in px, a multiple of 32 (default: the largest labeled object of the training data, "
             "as the checkpoint records it, plus 10 m, at the training GSD and rounded up; 60 m + 10 m for a "
             "checkpoint that records none)")
    add("--min-area", type=class_area, action="append", default=[], metavar="CLASS=M2",
        help="record that pieces of region CLASS smaller than M2 m² are not reported; repeat for several "
             "(default: each class's own from the dataset YAML, else 0)")
    add("--regions-in-graph", action="store_true",
        help="the graph also thresholds, closes and picks the class of region pixels, returning a uint8 class "
             "map and the winner's probability instead of a float mask per class: for GPU nodes, where it costs "
             "nothing and moves fewer bytes off the device; slower than the host's decoding on a CPU, and a run "
             "cannot change its threshold or closing (default: the host decodes)")
    add("--region-closing", type=finite_float, default=REGION_CLOSING_M, metavar="METRES",
        help=f"with --regions-in-graph: radius of the closing disc built into the graph (default: {REGION_CLOSING_M:g})")
    add("--no-check", dest="check", action="store_false",
        help="skip the ONNX Runtime vs PyTorch parity check (default: check)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; errors are `SitewatchError`s for `run_command` to print as one line."""
    args = build_parser().parse_args(argv)
    out = args.out if args.out is not None else args.checkpoint.with_suffix(".onnx")
    report = export_checkpoint(args.checkpoint, out, opset=args.opset, fp16=args.fp16, tile=args.tile,
                               overlap=args.overlap, check=args.check, min_area_m2=args.min_area,
                               regions_in_graph=args.regions_in_graph, region_closing_m=args.region_closing,
                               int8=args.int8)
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
