"""The exported graph is plain ONNX, has dynamic batch/height/width and matches PyTorch."""

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from train.model import OUTPUT_NAMES, SiteDetector

BANDS = 4
DYNAMIC = {0: "batch", 2: "height", 3: "width"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported() -> tuple[SiteDetector, bytes]:
    torch.manual_seed(0)
    model = SiteDetector(
        2, 2, backbone="resnet18", in_channels=BANDS, **{"fpn_channels": 16, "head_channels": 16}
    ).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one,
        # which needs onnxscript (not a dependency); and norm layers' batch-size
        # checks trigger harmless tracer warnings.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (torch.randn(1, BANDS, 64, 64),),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: DYNAMIC for name in ("image", *OUTPUT_NAMES)},
        )
    return model, buffer.getvalue()


def test_graph_is_valid_plain_onnx_with_dynamic_axes(exported):
    _, blob = exported
    graph = onnx.load_from_string(blob)
    onnx.checker.check_model(graph, full_check=True)
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}
    assert all(opset.domain in ("", "ai.onnx") for opset in graph.opset_import)
    ops = {node.op_type for node in graph.graph.node}
    assert not ops & {"NonMaxSuppression", "RoiAlign", "Loop", "If", "TopK"}
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES)
    image_dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in image_dims] == ["batch", "", "height", "width"]
    assert image_dims[1].dim_value == BANDS


@pytest.mark.parametrize("shape", [(2, BANDS, 64, 96), (2, BANDS, 128, 128)])
def test_onnxruntime_matches_pytorch(exported, shape):
    model, blob = exported
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    image = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[-1]))
    with torch.no_grad():
        expected = [t.numpy() for t in model(image)]

    got = session.run(list(OUTPUT_NAMES), {"image": image.numpy()})

    for name, want, have in zip(OUTPUT_NAMES, expected, got, strict=True):
        assert have.shape == want.shape, name
        np.testing.assert_allclose(have, want, atol=1e-4, rtol=0, err_msg=name)
    # Peaks survive with the same positions (not just close values).
    np.testing.assert_array_equal(got[0] > 0, expected[0] > 0)
