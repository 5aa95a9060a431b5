"""The quick-start demo: a real search end to end on a service started just for it."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import typer

from service.auth import printed_admin_token
from service.client import ApiError, SupernasClient
from service.launcher import free_port, running_service


def run_best_model(model_path: Path, manifest: dict[str, Any], count: int = 8) -> None:
    """Load the downloaded TorchScript model and classify test examples it has never seen."""
    import torch

    from workers.tasks import load_task

    model = torch.jit.load(str(model_path))
    model.eval()
    task = load_task(manifest["task"])
    with torch.inference_mode():
        predictions = model(torch.from_numpy(task.x_test)).argmax(dim=1).numpy()  # (N,)
    typer.echo(f"\nRan {model_path.name} (TorchScript) on the held-out test split:")
    typer.echo(f"  first {count} labels:      {task.y_test[:count].tolist()}")
    typer.echo(f"  first {count} predictions: {predictions[:count].tolist()}")
    accuracy = float((predictions == task.y_test).mean())
    typer.echo(
        f"  test accuracy: {accuracy:.4f} on {len(task.y_test)} examples "
        f"(validation accuracy in the manifest: {manifest['metrics']['accuracy']:.4f})"
    )


def run_quantized_model(model_path: Path, manifest: dict[str, Any]) -> None:
    """Run the downloaded quantized ONNX model in stock ONNX Runtime on the test split."""
    from workers.export import onnx_accuracy
    from workers.tasks import load_task

    task = load_task(manifest["task"])
    accuracy = onnx_accuracy(model_path, task.x_test, task.y_test)
    section = manifest["quantization"]
    typer.echo(f"\nRan {model_path.name} (quantized, ONNX Runtime) on the held-out test split:")
    typer.echo(f"  policy: {_policy_summary(section['policy'])}")
    typer.echo(
        f"  test accuracy: {accuracy:.4f} (validation accuracy of the real model: "
        f"{section['real']['accuracy']:.4f}, its fake-quantized estimate: "
        f"{section['fake_quant_accuracy']:.4f}); {section['real']['model_bytes']} bytes, "
        f"{section['real']['latency_ms']:.3f} ms at batch 1"
    )


def _policy_summary(policy: dict[str, dict[str, str]]) -> str:
    return ", ".join(f"{unit} w:{p['weights']}/a:{p['activations']}" for unit, p in policy.items())


def run_demo(spec: dict[str, Any], data_dir: Path | None) -> None:
    from service.cli import print_pareto, watch

    root = data_dir or Path(tempfile.mkdtemp(prefix="supernas-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "service.log"
    typer.echo(f"Starting supernas on http://127.0.0.1:{port} (data in {root}, log in {log})")
    started = time.monotonic()
    with running_service(root, os.environ, port=port) as server:
        token = printed_admin_token(server.log())
        client = SupernasClient(server.url, token=token)  # without a printed token: SUPERNAS_TOKEN
        if token is not None:  # auth is on: use the admin token this fresh service printed
            typer.echo(f"Using the admin token the service printed on its first start (see {log})")
        try:
            search = client.submit(spec)
            typer.echo(f"Submitted search {search['id']} ({spec.get('name', 'search')}); progress:")
            final = watch(client, search["id"])
            if final["state"] != "succeeded":
                typer.secho(f"search ended {final['state']}: {final['state_reason']}", fg="red", err=True)
                raise typer.Exit(1)
            print_pareto(client, search["id"])
            best = final["best_trial"]
            if best is None:  # every trial was infeasible, failed or pruned: no model to run
                typer.secho(f"\nno sub-network to download: {final['state_reason']}", fg="red", err=True)
                raise typer.Exit(1)
            path, manifest = client.download(search["id"], best, root / "download")
            typer.echo(f"\nDownloaded the best sub-network (trial {best}) to {path} (sha256 verified)")
            run_best_model(path, manifest)
            if "onnx-quantized" in manifest["files"]:
                path, manifest = client.download(search["id"], best, root / "download", "onnx-quantized")
                typer.echo(f"\nDownloaded its quantized model to {path} (sha256 verified)")
                run_quantized_model(path, manifest)
            typer.echo(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
        except ApiError as error:
            typer.secho(f"error: {error}", fg="red", err=True)
            raise typer.Exit(1) from error
        finally:
            client.close()
