"""The ``supernas`` command line: run the service, and submit, watch and download searches over HTTP."""

from __future__ import annotations

import logging
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from service.cli_output import status_line, trials_table
from service.client import ApiError, SupernasClient

app = typer.Typer(add_completion=False, help="Neural architecture search as a service.", no_args_is_help=True)

DEFAULT_URL = "http://127.0.0.1:8000"
UrlOption = Annotated[str, typer.Option(envvar="SUPERNAS_URL", help="Base URL of the supernas service.")]
_TERMINAL = {"succeeded", "failed", "canceled"}


token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
_TOKEN: dict[str, str | None] = {"value": None}


@app.callback()
def _global_options(
    token: Annotated[
        str | None,
        typer.Option(envvar="SUPERNAS_TOKEN", help="API token (bearer); see 'supernas token create'."),
    ] = None,
) -> None:
    _TOKEN["value"] = token


def _client(url: str) -> SupernasClient:
    return SupernasClient(url, token=_TOKEN["value"])


@token_app.command("create")
def token_create(
    owner: Annotated[str | None, typer.Option(help="Owner of the token (default: yours).")] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    expires_in_days: Annotated[float | None, typer.Option(help="Lifetime (default: never expires).")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An admin token (admins only).")] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    try:
        created = _client(url).create_token(owner, description, expires_in_days, admin)
    except ApiError as error:
        raise _fail(error) from error
    typer.echo(created["token"])
    typer.echo(
        f"id {created['id']}, owner {created['owner']}, expires {created['expires_at'] or 'never'}", err=True
    )


@token_app.command("list")
def token_list(url: UrlOption = DEFAULT_URL) -> None:
    """Your tokens (all tokens for an admin), without their secrets."""
    try:
        tokens = _client(url).tokens()
    except ApiError as error:
        raise _fail(error) from error
    for t in tokens:
        status = "revoked" if t["revoked_at"] else f"expires {t['expires_at'] or 'never'}"
        role = " admin" if t["is_admin"] else ""
        typer.echo(f"{t['id']}  {t['owner']}{role}  {status}  {t['description']}")


@token_app.command("revoke")
def token_revoke(token_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Revoke a token: requests with it are refused from now on."""
    try:
        revoked = _client(url).revoke_token(token_id)
    except ApiError as error:
        raise _fail(error) from error
    typer.echo(f"revoked {revoked['id']} ({revoked['owner']})")


def _fail(error: ApiError) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg="red")
    for item in error.problem.get("errors", []):
        typer.secho(f"  {'.'.join(str(p) for p in item['loc'])}: {item['msg']}", err=True, fg="red")
    return typer.Exit(2 if 400 <= error.status < 500 else 1)


def load_spec(path: Path) -> dict[str, Any]:
    """Read a spec from a YAML or JSON file (JSON is YAML)."""
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read spec {path}: {exc}") from exc
    if not isinstance(spec, dict):
        raise typer.BadParameter(f"spec {path} must be a mapping, got {type(spec).__name__}")
    return spec


def watch(client: SupernasClient, search_id: str, poll_s: float = 2.0) -> dict[str, Any]:
    """Print a progress line whenever it changes until the search ends; returns the final search."""
    last = ""
    while True:
        search = client.search(search_id)
        line = status_line(search)
        if line != last:
            typer.echo(f"{time.strftime('%H:%M:%S')} {line}")
            last = line
        if search["state"] in _TERMINAL:
            return search
        time.sleep(poll_s)


def print_pareto(client: SupernasClient, search_id: str) -> dict[str, Any]:
    pareto = client.pareto(search_id)
    metrics = [o["metric"] for o in pareto["objectives"]]
    objectives = ", ".join(f"{o['direction']} {o['metric']}" for o in pareto["objectives"])
    typer.echo(f"\nPareto front ({objectives}): {len(pareto['trials'])} trial(s)")
    typer.echo(trials_table(pareto["trials"], metrics))
    return pareto


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="SQLite file and artifacts (default ./supernas-data).")
    ] = None,
) -> None:
    """Run the service: HTTP API, dispatcher and embedded Ray (or the cluster at RAY_ADDRESS)."""
    import uvicorn

    from service.app import create_app
    from service.listening import listening_socket
    from service.settings import load_settings

    overrides = {k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v is not None}
    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:  # before start-up recovers or runs any search, and before Ray's processes take ports
        sock = listening_socket(settings.host, settings.port)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from exc
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level
    )
    uvicorn.Server(config).run(sockets=[sock])


@app.command()
def submit(
    spec: Annotated[Path, typer.Argument(help="Search spec, YAML or JSON.")],
    url: UrlOption = DEFAULT_URL,
    wait: Annotated[bool, typer.Option(help="Follow progress until the search ends.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Resubmitting with the same key is a no-op.")
    ] = None,
) -> None:
    """Submit a search; prints its id."""
    client = _client(url)
    try:
        search = client.submit(load_spec(spec), idempotency_key)
        typer.echo(search["id"])
        if wait:
            watch(client, search["id"])
            print_pareto(client, search["id"])
    except ApiError as error:
        raise _fail(error) from error


@app.command("supernet-train")
def supernet_train(
    spec: Annotated[Path, typer.Argument(help="Supernet spec (task, space, training, seed), YAML or JSON.")],
    url: UrlOption = DEFAULT_URL,
    wait: Annotated[
        bool, typer.Option(help="Follow training until the supernet is ready or failed.")
    ] = False,
) -> None:
    """Train a supernet on its own; prints its id, which searches name as ``supernet_id``."""
    client = _client(url)
    try:
        supernet = client.train_supernet(load_spec(spec))
        typer.echo(supernet["id"])
        while wait and supernet["state"] not in ("ready", "failed", "canceled"):
            time.sleep(2.0)
            supernet = client.supernet(supernet["id"])
            typer.echo(f"{supernet['state']}: {supernet['state_reason']}", err=True)
        if wait and supernet["state"] != "ready":
            raise typer.Exit(1)
    except ApiError as error:
        raise _fail(error) from error


@app.command()
def supernets(
    task: Annotated[str | None, typer.Option(help="Only supernets trained on this task.")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Trained (and training) supernets: id, state, family, task and accuracy of the largest."""
    try:
        for s in _client(url).supernets(task):
            largest = s["metrics"].get("largest_val_accuracy")
            accuracy = f"{largest:.3f}" if isinstance(largest, float) else "-"
            typer.echo(
                f"{s['id']}  {s['state']:<8}  {s['family']:<20}  {s['task']:<16}  largest acc {accuracy}"
            )
    except ApiError as error:
        raise _fail(error) from error


@app.command("dataset-upload")
def dataset_upload(
    path: Annotated[Path, typer.Argument(help="A .npz (arrays x, y) or .csv (header, 'label' column) file.")],
    name: Annotated[str | None, typer.Option(help="A name for the data set.")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Upload a data set; prints its id, which a spec names as its ``task``."""
    try:
        dataset = _client(url).upload_dataset(path, name)
        typer.echo(dataset["id"])
        shape = "x".join(map(str, dataset["input_shape"]))
        counts = f"{dataset['num_examples']} examples, {dataset['num_classes']} classes"
        typer.echo(f"{counts}, {dataset['kind']} {shape}", err=True)
    except ApiError as error:
        raise _fail(error) from error


@app.command()
def status(search_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """State, progress, best values and Pareto front of a search."""
    client = _client(url)
    try:
        typer.echo(status_line(client.search(search_id)))
        print_pareto(client, search_id)
    except ApiError as error:
        raise _fail(error) from error


@app.command()
def trials(search_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Every trial of a search."""
    client = _client(url)
    try:
        metrics = [o["metric"] for o in client.search(search_id)["spec"]["objectives"]]
        typer.echo(trials_table(client.trials(search_id), metrics))
    except ApiError as error:
        raise _fail(error) from error


def _lifecycle(search_id: str, verb: str, url: str) -> None:
    try:
        typer.echo(status_line(_client(url).lifecycle(search_id, verb)))
    except ApiError as error:
        raise _fail(error) from error


@app.command()
def cancel(search_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Cancel a search: running trials stop, every record is kept."""
    _lifecycle(search_id, "cancel", url)


@app.command()
def pause(search_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Pause a search: no new trials; running ones pause after their current step. Resume it later."""
    _lifecycle(search_id, "pause", url)


@app.command()
def resume(search_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Resume a paused search from its stored trials."""
    _lifecycle(search_id, "resume", url)


@app.command()
def stop(search_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Stop a search: no new trials, running ones finish, then it ends succeeded."""
    _lifecycle(search_id, "stop", url)


@app.command()
def delete(search_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Delete an ended search with its trials, models and checkpoints (its supernet is kept)."""
    try:
        _client(url).delete(search_id)
    except ApiError as error:
        raise _fail(error) from error
    typer.echo(f"deleted search {search_id}")


@app.command("supernet-delete")
def supernet_delete(supernet_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Delete a supernet that has ended training, with its weights (refused while a search uses it)."""
    try:
        _client(url).delete_supernet(supernet_id)
    except ApiError as error:
        raise _fail(error) from error
    typer.echo(f"deleted supernet {supernet_id}")


class ModelFormat(StrEnum):
    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    ONNX_QUANTIZED = "onnx-quantized"


@app.command()
def download(
    search_id: str,
    trial: Annotated[
        int | None, typer.Option(help="Trial number (default: best by the first objective).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory to write the model and manifest to.")] = Path("."),
    model_format: Annotated[
        ModelFormat,
        typer.Option(
            "--format",
            help="torchscript or onnx (both verified at export), or onnx-quantized (searches with "
            "quantization: the real quantized model, for stock ONNX Runtime).",
        ),
    ] = ModelFormat.TORCHSCRIPT,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Download a sub-network as TorchScript, ONNX or quantized ONNX plus its manifest (sha256 verified)."""
    client = _client(url)
    try:
        number = trial if trial is not None else client.search(search_id)["best_trial"]
        if number is None:
            typer.secho(
                "error: the search has no best trial (none finished within its constraints)",
                err=True,
                fg="red",
            )
            raise typer.Exit(1)
        path, _ = client.download(search_id, number, out, model_format.value)
        typer.echo(str(path))
    except ApiError as error:
        raise _fail(error) from error


@app.command()
def demo(
    spec: Annotated[Path, typer.Argument(help="Search spec to run.")] = Path("examples/digits.yaml"),
    data_dir: Annotated[Path | None, typer.Option(help="Where the demo service keeps its data.")] = None,
) -> None:
    """End to end: start the service, submit SPEC over HTTP, watch it, print the front, run the best model."""
    from service.demo import run_demo

    run_demo(load_spec(spec), data_dir)


def main() -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    app()


if __name__ == "__main__":
    main()
