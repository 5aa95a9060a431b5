"""Export: TorchScript + ONNX files with sha256, dynamic batch, verification recorded or raised."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from torch import nn

from supernas.errors import SupernasError
from workers import export
from workers.export import (
    MANIFEST_FILE,
    ONNX_FILE,
    ONNX_OPSET,
    TORCHSCRIPT_FILE,
    ExportVerificationError,
    export_subnet,
    onnx_accuracy,
    sha256_of,
)


def conv_net() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(4, 16)
        self.encoder = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3))


class DiffersUnderOnnxExport(nn.Module):
    """Behaves differently while being exported to ONNX: the exported graph is wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            x = x + 1.0
        return self.linear(x)


class DiffersWhenScripted(nn.Module):
    """TorchScript compiles the other branch: the saved TorchScript is wrong, ONNX (traced) is right."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return self.linear(x) * 2.0
        return self.linear(x)


def read_manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST_FILE).read_text())


def test_cnn_export_files_sha256_dynamic_batch_and_verification(tmp_path: Path) -> None:
    model = conv_net()
    model.train()
    out = export_subnet(model, tmp_path / "cnn", {"trial_number": 3}, input_shape=(1, 8, 8))
    assert model.training  # mode restored
    manifest = read_manifest(out)
    assert manifest["trial_number"] == 3
    files = manifest["files"]
    assert files["torchscript"]["file"] == TORCHSCRIPT_FILE and files["onnx"]["file"] == ONNX_FILE
    for entry in files.values():
        assert entry["sha256"] == sha256_of(out / entry["file"])
    assert files["onnx"]["opset"] == ONNX_OPSET
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_FILE, ONNX_FILE, TORCHSCRIPT_FILE])

    onnx_check = manifest["verification"]["onnx"]
    assert onnx_check["passed"] is True and onnx_check["argmax_match"] is True
    assert onnx_check["tolerance"] == 1e-4 and onnx_check["relative_tolerance"] == 1e-4
    assert onnx_check["allowed_diff"] == pytest.approx(1e-4 + 1e-4 * onnx_check["reference_max_abs"])
    assert 0 <= onnx_check["max_abs_diff"] <= onnx_check["allowed_diff"]
    assert onnx_check["onnxruntime_version"] == onnxruntime.__version__
    assert onnx_check["opset"] == ONNX_OPSET and onnx_check["inputs"] == 8
    ts_check = manifest["verification"]["torchscript"]
    assert ts_check["passed"] is True and ts_check["max_abs_diff"] <= 1e-4

    session = onnxruntime.InferenceSession(str(out / ONNX_FILE), providers=["CPUExecutionProvider"])
    model.eval()
    for batch in (1, 7):
        x = np.random.default_rng(batch).standard_normal((batch, 1, 8, 8)).astype(np.float32)
        (logits,) = session.run(None, {session.get_inputs()[0].name: x})
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        assert logits.shape == (batch, 10)
        np.testing.assert_allclose(logits, expected, atol=1e-4)
    reloaded = torch.jit.load(str(out / TORCHSCRIPT_FILE))
    np.testing.assert_allclose(reloaded(torch.from_numpy(x)).detach().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize(("model", "shape"), [(TinyTransformer(), (6, 4)), (mlp(), (20,))])
def test_transformer_and_mlp_export_verifies(tmp_path: Path, model: nn.Module, shape: tuple) -> None:
    inputs = np.random.default_rng(0).standard_normal((5, *shape)).astype(np.float32)
    out = export_subnet(model, tmp_path, {}, input_shape=shape, verify_inputs=inputs)
    verification = read_manifest(out)["verification"]
    assert verification["onnx"]["passed"] and verification["torchscript"]["passed"]
    assert verification["onnx"]["inputs"] == 5
    session = onnxruntime.InferenceSession(str(out / ONNX_FILE), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        x = np.zeros((batch, *shape), dtype=np.float32)
        assert session.run(None, {"input": x})[0].shape[0] == batch


def test_without_input_shape_only_torchscript_as_before(tmp_path: Path) -> None:
    out = export_subnet(mlp(), tmp_path, {"format_version": 1})
    manifest = read_manifest(out)
    assert set(manifest["files"]) == {"torchscript"}
    assert "verification" not in manifest
    assert not (out / ONNX_FILE).exists()
    assert manifest["files"]["torchscript"]["sha256"] == sha256_of(out / TORCHSCRIPT_FILE)


def test_large_outputs_verify_against_their_scale_not_an_absolute_1e_4(tmp_path: Path) -> None:
    """A network with large logits (as after fine-tuning at a high learning rate) differs in ONNX
    Runtime by float32 rounding of their size; that is not a failed export."""
    model = conv_net()
    with torch.no_grad():
        model[-1].weight.mul_(1e4)
    out = export_subnet(model, tmp_path, {}, input_shape=(1, 8, 8))
    onnx_check = read_manifest(out)["verification"]["onnx"]
    assert onnx_check["passed"] and onnx_check["argmax_match"]
    assert onnx_check["reference_max_abs"] > 1e3
    assert 1e-4 < onnx_check["max_abs_diff"] <= onnx_check["allowed_diff"]


def test_a_difference_beyond_the_scaled_tolerance_fails() -> None:
    reference = [np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)]
    tolerance = export.Tolerance(absolute=1e-4, relative=1e-4)  # allows 0.1001 at this scale
    close = export.compare_outputs(reference, [reference[0] + 0.1], tolerance)
    assert close.passed and close.allowed_diff == pytest.approx(0.1001)
    far = export.compare_outputs(reference, [reference[0] + np.float32(0.2)], tolerance)
    assert not far.passed and far.max_abs_diff == pytest.approx(0.2, rel=1e-3)
    assert not export.compare_outputs(reference, [reference[0][:, :2]], tolerance).passed  # shape


def test_failed_verification_raises_and_publishes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExportVerificationError) as info:
        export_subnet(mlp(), tmp_path, {}, input_shape=(20,), tolerance=-1.0)
    assert isinstance(info.value, SupernasError)
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_keeps_a_previous_export_intact(tmp_path: Path) -> None:
    export_subnet(mlp(), tmp_path, {"version": 1}, input_shape=(20,))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ExportVerificationError, match="onnx"):
        export_subnet(DiffersUnderOnnxExport(), tmp_path, {"version": 2}, input_shape=(6,))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_torchscript_mismatch_is_detected(tmp_path: Path) -> None:
    with pytest.raises(ExportVerificationError, match="torchscript"):
        export_subnet(DiffersWhenScripted(), tmp_path, {}, input_shape=(6,))
    assert not (tmp_path / MANIFEST_FILE).exists()


def test_onnx_accuracy_matches_pytorch(tmp_path: Path) -> None:
    model = mlp().eval()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 20)).astype(np.float32)
    y = rng.integers(0, 3, size=50)
    export_subnet(model, tmp_path, {}, input_shape=(20,))
    with torch.no_grad():
        expected = float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    assert 0 < expected < 1
    assert onnx_accuracy(tmp_path / ONNX_FILE, x, y, batch_size=16) == pytest.approx(expected)


class NotScriptable(nn.Module):
    """A lambda in forward: torch.jit.script refuses it, so TorchScript is traced instead."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = lambda t: t * 2.0  # noqa: E731
        return double(self.linear(x))


def test_unscriptable_module_is_traced_and_verified(tmp_path: Path) -> None:
    manifest = read_manifest(export_subnet(NotScriptable(), tmp_path, {}, input_shape=(6,)))
    assert manifest["files"]["torchscript"]["method"] == "trace"
    assert manifest["verification"]["torchscript"]["passed"]


def test_falls_back_to_the_dynamo_exporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(module: nn.Module, example: torch.Tensor, path: Path) -> None:
        raise RuntimeError("legacy exporter unavailable")

    monkeypatch.setattr(export, "_EXPORTERS", (("torchscript", broken), *export._EXPORTERS[1:]))
    manifest = read_manifest(export_subnet(mlp(), tmp_path, {}, input_shape=(20,)))
    assert manifest["files"]["onnx"]["exporter"] == "dynamo"
    assert manifest["verification"]["onnx"]["passed"]
    session = onnxruntime.InferenceSession(str(tmp_path / ONNX_FILE), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((7, 20), dtype=np.float32)})[0].shape == (7, 3)
