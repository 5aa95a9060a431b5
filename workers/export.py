"""Export of a sub-network as a standalone TorchScript file plus a JSON manifest with its sha256."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

TORCHSCRIPT_FILE = "model.torchscript.pt"
MANIFEST_FILE = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def export_subnet(module: nn.Module, out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Script ``module`` to ``out_dir``/model.torchscript.pt and write the manifest next to it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(module)
    model_path = out_dir / TORCHSCRIPT_FILE
    tmp_path = out_dir / (TORCHSCRIPT_FILE + ".tmp")
    scripted.save(str(tmp_path))
    os.replace(tmp_path, model_path)
    files = {"torchscript": {"file": TORCHSCRIPT_FILE, "sha256": sha256_of(model_path)}}
    write_json_atomic(out_dir / MANIFEST_FILE, {**manifest, "files": files})
    return out_dir
