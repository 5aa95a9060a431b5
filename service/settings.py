"""Service settings, read once from the environment (prefix ``SUPERNAS_``) by ``load_settings``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPERNAS_", extra="ignore")

    data_dir: Path = Field(
        default=Path("supernas-data"), description="Home of the SQLite file and artifacts."
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite in data_dir.")
    artifacts_dir: Path | None = Field(default=None, description="Models and checkpoints; default: data_dir.")
    auth: bool = Field(
        default=True,
        description="Require bearer tokens on the API; false only for a single-user local run.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    ray_num_cpus: int | None = Field(default=None, ge=1, description="CPUs of the embedded Ray instance.")
    max_concurrent_searches: int = Field(default=1, ge=1)
    supernet_training_cpus: int = Field(
        default=2,
        ge=1,
        description=(
            "Ray CPUs a supernet training reserves, and the torch threads it trains with "
            "(at most the CPUs of the largest Ray node)."
        ),
    )
    dispatcher_poll_s: float = Field(default=1.0, gt=0)
    run_dispatcher: bool = True
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1, description="Largest data set upload.")
    summary_cache_size: int = Field(
        default=256, ge=1, description="Searches whose trial summaries (fronts, best values) stay cached."
    )
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'supernas.db').resolve()}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return (self.artifacts_dir or self.data_dir / "artifacts").resolve()


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
