"""Fixtures the runtime's tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infer.oracle import write_oracle


@pytest.fixture(scope="session")
def oracle(tmp_path_factory) -> Path:
    """The oracle model (`tests.infer.oracle`), written once for the whole session."""
    return write_oracle(tmp_path_factory.mktemp("model") / "oracle.onnx")
