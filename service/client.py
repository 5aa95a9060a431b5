"""A small Python client of the supernas HTTP API (the CLI speaks through it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx

MODEL_SUFFIXES = {"torchscript": "torchscript.pt", "onnx": "onnx", "onnx-quantized": "quantized.onnx"}


class ApiError(Exception):
    """A non-2xx answer; ``problem`` is the server's problem+json body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {problem.get('detail') or problem.get('title') or problem}")
        self.status = status
        self.problem = problem


class SupernasClient:
    """``token`` (default: the ``SUPERNAS_TOKEN`` environment variable) is sent as a bearer token."""

    def __init__(self, base_url: str, timeout_s: float = 30.0, token: str | None = None) -> None:
        token = token if token is not None else os.environ.get("SUPERNAS_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except json.JSONDecodeError:
                problem = {"detail": response.text}
            raise ApiError(response.status_code, problem)
        return response

    def create_token(
        self, owner: str | None, description: str, expires_in_days: float | None, is_admin: bool
    ) -> dict[str, Any]:
        body = {"owner": owner, "description": description, "expires_in_days": expires_in_days}
        return self._call("POST", "/api/v1/tokens", json=body | {"is_admin": is_admin}).json()

    def tokens(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/tokens").json()["items"]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/tokens/{token_id}/revoke").json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz").json()

    def submit(self, spec: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/api/v1/searches", json=spec, headers=headers).json()

    def train_supernet(self, spec: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/api/v1/supernets", json=spec, headers=headers).json()

    def supernet(self, supernet_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/supernets/{supernet_id}").json()

    def supernets(self, task: str | None = None) -> list[dict[str, Any]]:
        params = {"page_size": 500} | ({"task": task} if task else {})
        return self._call("GET", "/api/v1/supernets", params=params).json()["items"]

    def upload_dataset(self, path: Path, name: str | None = None) -> dict[str, Any]:
        """Upload a ``.npz`` or ``.csv`` file; the returned id is usable as a spec's ``task``."""
        params = {"filename": path.name} | ({"name": name} if name else {})
        with path.open("rb") as handle:
            return self._call("POST", "/api/v1/datasets", params=params, content=handle).json()

    def search(self, search_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/searches/{search_id}").json()

    def delete(self, search_id: str) -> None:
        self._call("DELETE", f"/api/v1/searches/{search_id}")

    def delete_supernet(self, supernet_id: str) -> None:
        self._call("DELETE", f"/api/v1/supernets/{supernet_id}")

    def cancel(self, search_id: str) -> dict[str, Any]:
        return self.lifecycle(search_id, "cancel")

    def lifecycle(self, search_id: str, verb: str) -> dict[str, Any]:
        """POST a lifecycle verb: pause, resume, stop or cancel."""
        return self._call("POST", f"/api/v1/searches/{search_id}/{verb}").json()

    def trials(self, search_id: str, page_size: int = 500) -> list[dict[str, Any]]:
        """Every trial of a search, following page tokens."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": page_size}
            if token:
                params["page_token"] = token
            page = self._call("GET", f"/api/v1/searches/{search_id}/trials", params=params).json()
            items.extend(page["items"])
            token = page["next_page_token"]
            if not token:
                return items

    def pareto(self, search_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/searches/{search_id}/pareto").json()

    def download(
        self, search_id: str, number: int, out_dir: Path, model_format: str = "torchscript"
    ) -> tuple[Path, dict[str, Any]]:
        """Download a trial's model (``torchscript``, ``onnx`` or ``onnx-quantized``) and manifest;
        verifies the sha256."""
        base = f"/api/v1/searches/{search_id}/trials/{number}/model"
        manifest = self._call("GET", base, params={"format": "manifest"}).json()
        payload = self._call("GET", base, params={"format": model_format}).content
        expected = manifest["files"][model_format]["sha256"]
        actual = hashlib.sha256(payload).hexdigest()
        if actual != expected:
            raise ApiError(502, {"detail": f"sha256 mismatch: manifest {expected}, downloaded {actual}"})
        out_dir.mkdir(parents=True, exist_ok=True)
        model_path = out_dir / f"trial{number}.{MODEL_SUFFIXES[model_format]}"
        model_path.write_bytes(payload)
        (out_dir / f"trial{number}.manifest.json").write_text(json.dumps(manifest, indent=2))
        return model_path, manifest
