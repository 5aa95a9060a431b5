"""docker-compose.yml and Dockerfile: the file validates with ``docker-compose config`` (no Docker engine
needed), secrets come from the environment, only the API is published and only on the loopback, the
Ray head publishes nothing, and the API and the Ray nodes share the artifacts volume at one path.

Needs Debian's ``docker-compose`` (1.29): ``apt-get install -y docker-compose``. Missing, the tests fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRETS = {"POSTGRES_PASSWORD": "sentinel-db-password", "RAY_AUTH_TOKEN": "sentinel-ray-token"}
RAY_SERVICES = ("api", "ray-head", "ray-worker")


def _compose(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: apt-get install -y docker-compose")
    empty_env_file = tmp_path / "empty.env"  # ignore a developer's .env next to docker-compose.yml
    empty_env_file.write_text("")
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "RAY_", "COMPOSE_", "DOCKER_"))
    }
    return subprocess.run(
        [binary, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", *args],
        capture_output=True,
        text=True,
        env=clean | env,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """The configuration as docker-compose resolves it (anchors merged, variables interpolated)."""
    result = _compose(tmp_path, SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _services(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]


def _published(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(host ip, published port) of each ``ports`` entry, short or long syntax."""
    published = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published.append((port.get("host_ip"), str(port.get("published"))))
            continue
        parts = str(port).split("/")[0].split(":")  # [ip:]published:target, or a lone target port
        published.append((parts[0], parts[1]) if len(parts) == 3 else (None, parts[0]))
    return published


def test_compose_file_validates(tmp_path: Path) -> None:
    result = _compose(tmp_path, SECRETS, "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_each_secret_is_required(tmp_path: Path, missing: str) -> None:
    result = _compose(tmp_path, {k: v for k, v in SECRETS.items() if k != missing}, "-q")
    assert result.returncode != 0
    assert missing in result.stderr


def test_no_literal_secret_in_the_file() -> None:
    text = COMPOSE_FILE.read_text()
    raw = yaml.safe_load(text)
    secret_key = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)

    def check(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if secret_key.search(str(key)) and not isinstance(value, dict | list):
                    assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value)), f"{key}: {value!r}"
                check(value)
        elif isinstance(node, list):
            for item in node:
                check(item)

    check(raw)
    # credentials inside URLs (user:password@host) come from variables too
    for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", text):
        assert password.startswith("${POSTGRES_PASSWORD:?"), password


def test_secrets_reach_the_services_that_need_them(config: dict[str, Any]) -> None:
    services = _services(config)
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    url = services["api"]["environment"]["SUPERNAS_DATABASE_URL"]
    assert f":{SECRETS['POSTGRES_PASSWORD']}@db:5432/" in url
    for name in RAY_SERVICES:
        assert services[name]["environment"]["RAY_AUTH_TOKEN"] == SECRETS["RAY_AUTH_TOKEN"], name
        assert services[name]["environment"]["RAY_AUTH_MODE"] == "token", name


def test_only_the_api_is_published_and_only_on_the_loopback(config: dict[str, Any]) -> None:
    services = _services(config)
    for name, service in services.items():
        assert service.get("network_mode") != "host", name
        if name != "api":
            assert not service.get("ports"), f"{name} publishes {service['ports']}"
    assert _published(services["api"]) == [("127.0.0.1", "8000")]


def test_ray_head_is_not_reachable_from_outside(config: dict[str, Any]) -> None:
    head = _services(config)["ray-head"]
    assert "ports" not in head
    command = head["command"] if isinstance(head["command"], str) else " ".join(head["command"])
    assert "--head" in command and "--block" in command
    assert "--dashboard-host=127.0.0.1" in command
    assert head["healthcheck"]["test"][-2:] == ["ray", "status"]


def test_api_and_ray_nodes_share_the_artifacts_volume(config: dict[str, Any]) -> None:
    services = _services(config)

    def artifact_mounts(service: dict[str, Any]) -> set[str]:
        mounts = set()
        for volume in service.get("volumes", []):
            source, target = (
                (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
            )
            if source == "artifacts":
                mounts.add(target)
        return mounts

    api_mounts = artifact_mounts(services["api"])
    assert len(api_mounts) == 1, api_mounts
    for name in ("ray-head", "ray-worker"):
        assert artifact_mounts(services[name]) == api_mounts, name
    assert "artifacts" in config["volumes"]
    (mount,) = api_mounts
    environment = services["api"]["environment"]
    artifacts_dir = (
        environment.get("SUPERNAS_ARTIFACTS_DIR") or f"{environment['SUPERNAS_DATA_DIR']}/artifacts"
    )
    assert Path(artifacts_dir).is_relative_to(mount), (artifacts_dir, mount)


def test_one_image_joins_the_api_to_the_ray_cluster(config: dict[str, Any]) -> None:
    services = _services(config)
    assert len({services[name]["image"] for name in RAY_SERVICES}) == 1
    address = services["api"]["environment"]["RAY_ADDRESS"]
    assert address == "ray-head:6379"
    assert "--port=6379" in services["ray-head"]["command"]
    assert f"--address={address}" in services["ray-worker"]["command"]
    api_command = " ".join(services["api"]["command"])
    # a Ray driver needs a Ray node on its own host
    assert f"ray start --address={address}" in api_command and "supernas serve" in api_command
    assert "--host 0.0.0.0" in api_command  # inside the container; published on the loopback only
    worker = services["ray-worker"]
    assert worker["shm_size"] and worker["deploy"]["replicas"] >= 1
    db = services["db"]
    assert db["image"] == "postgres:15" and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(
        v.endswith(":/var/lib/postgresql/data:rw") or v.endswith(":/var/lib/postgresql/data")
        for v in db["volumes"]
    )
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_image_gets_ray_from_the_pyproject_pin() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (ray_pin,) = [d for d in dependencies if re.match(r"ray(\[[^]]*\])?==", d)]
    assert ray_pin.split("==")[1] == version("ray")  # the version the tests run with
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#"))
    # Ray is installed by `pip install .` only, never pinned separately in the image
    assert not re.search(r"\bray(\[[^]]*\])?\s*[=<>~]=", instructions)
    assert "assert ray.__version__ == pin" in instructions  # and the build checks what it got
    assert "pip install --no-cache-dir ." in instructions
    assert '"torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu' in instructions


def test_env_example_documents_every_variable_without_a_value_for_secrets() -> None:
    compose_variables = set(re.findall(r"\$\{([A-Z_]+)[:}?-]", COMPOSE_FILE.read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = dict(re.findall(r"^#?\s*([A-Z_]+)=(.*)$", example, flags=re.MULTILINE))
    assert compose_variables <= set(documented), compose_variables - set(documented)
    assert {name for name in compose_variables if re.search(r"PASSWORD|TOKEN", name)} == set(SECRETS)
    for secret in SECRETS:
        assert documented[secret] == "", f"{secret} must be left empty in .env.example"
