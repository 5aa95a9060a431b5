"""Every ORM class of supernas, and their conversion to frozen records.

Rows never leave :mod:`service.storage`; ``to_record`` turns them into the records of
:mod:`supernas.records`. The schema itself is created by the Alembic migrations in ``migrations/``;
a test checks that these classes and the migrations agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.storage.json_type import JSONWithNonFinite
from supernas.records import (
    DatasetRecord,
    SearchRecord,
    SupernetRecord,
    TokenRecord,
    TrialRecord,
    TrialReport,
)
from supernas.states import SearchState, SupernetState, TrialState

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


LOCAL_OWNER = "local"  # owner of everything created with auth disabled (and before auth existed)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes (stored as UTC); make every datetime aware UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else aware_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SearchRow(Base):
    __tablename__ = "searches"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONWithNonFinite)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    supernet_id: Mapped[str | None] = mapped_column(String(40))
    requested_action: Mapped[str | None] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(
        String(64), index=True, default=LOCAL_OWNER, server_default=LOCAL_OWNER
    )
    # fidelity.supernet_epochs on a supernet trained elsewhere: claimable once that supernet trains
    starts_on_training_supernet: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def to_record(self) -> SearchRecord:
        return SearchRecord(
            id=self.id,
            name=self.name,
            spec=self.spec,
            state=SearchState(self.state),
            state_reason=self.state_reason,
            created_at=aware_utc(self.created_at),
            started_at=optional_utc(self.started_at),
            finished_at=optional_utc(self.finished_at),
            cancel_requested=self.cancel_requested,
            attempt=self.attempt,
            supernet_id=self.supernet_id,
            requested_action=self.requested_action,
            owner=self.owner,
            starts_on_training_supernet=self.starts_on_training_supernet,
        )


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("search_id", "number"), Index(None, "search_id", "updated_at"))

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[str] = mapped_column(String(32), ForeignKey("searches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSONWithNonFinite)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONWithNonFinite, default=dict)
    fidelity: Mapped[float | None] = mapped_column(Float)
    state_reason: Mapped[str | None] = mapped_column(Text)
    artifact_dir: Mapped[str | None] = mapped_column(String(1024))
    suggestion: Mapped[dict[str, Any] | None] = mapped_column(JSONWithNonFinite)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # each retry after a failure or a lost worker: {"at", "reason", "attempt"}; NULL: never retried
    retries: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONWithNonFinite)
    # each scheduler decision (continue, pause, resume, stop...): {"at", "action", "fidelity", "reason",
    # and maybe "rung", "predicted", "acquisition"}; NULL: none recorded
    decisions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONWithNonFinite)

    reports: Mapped[list[TrialReportRow]] = relationship(
        order_by="TrialReportRow.step", lazy="raise", passive_deletes=True
    )

    def to_record(self, with_reports: bool = False) -> TrialRecord:
        reports = tuple(report.to_record() for report in self.reports) if with_reports else ()
        return TrialRecord(
            search_id=self.search_id,
            number=self.number,
            state=TrialState(self.state),
            config=self.config,
            metrics=self.metrics,
            fidelity=self.fidelity,
            state_reason=self.state_reason,
            artifact_dir=self.artifact_dir,
            suggestion=self.suggestion,
            created_at=aware_utc(self.created_at),
            started_at=optional_utc(self.started_at),
            finished_at=optional_utc(self.finished_at),
            updated_at=aware_utc(self.updated_at),
            reports=reports,
            retries=tuple(self.retries or ()),
            decisions=tuple(self.decisions or ()),
        )


class TrialReportRow(Base):
    __tablename__ = "trial_reports"
    __table_args__ = (UniqueConstraint("trial_pk", "step"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_pk: Mapped[int] = mapped_column(Integer, ForeignKey("trials.pk", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    fidelity: Mapped[float] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONWithNonFinite)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def to_record(self) -> TrialReport:
        return TrialReport(
            step=self.step,
            fidelity=self.fidelity,
            metrics=self.metrics,
            created_at=aware_utc(self.created_at),
        )


class SupernetRow(Base):
    __tablename__ = "supernets"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONWithNonFinite)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason: Mapped[str | None] = mapped_column(Text)
    family: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(200))
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONWithNonFinite)
    search_id: Mapped[str | None] = mapped_column(String(32))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    owner: Mapped[str] = mapped_column(
        String(64), index=True, default=LOCAL_OWNER, server_default=LOCAL_OWNER
    )

    def to_record(self) -> SupernetRecord:
        return SupernetRecord(
            id=self.id,
            name=self.name,
            spec=self.spec,
            state=SupernetState(self.state),
            state_reason=self.state_reason,
            family=self.family,
            task=self.task,
            data_fingerprint=self.data_fingerprint,
            summary=self.summary,
            search_id=self.search_id,
            created_at=aware_utc(self.created_at),
            finished_at=optional_utc(self.finished_at),
            attempt=self.attempt,
            owner=self.owner,
        )


class DatasetRow(Base):
    __tablename__ = "datasets"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    input_shape: Mapped[list[int]] = mapped_column(JSONWithNonFinite)
    num_examples: Mapped[int] = mapped_column(Integer)
    num_classes: Mapped[int] = mapped_column(Integer)
    label_names: Mapped[list[str]] = mapped_column(JSONWithNonFinite)
    fingerprint: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    owner: Mapped[str] = mapped_column(
        String(64), index=True, default=LOCAL_OWNER, server_default=LOCAL_OWNER
    )

    def to_record(self) -> DatasetRecord:
        return DatasetRecord(
            id=self.id,
            name=self.name,
            format=self.format,
            kind=self.kind,
            input_shape=tuple(self.input_shape),
            num_examples=self.num_examples,
            num_classes=self.num_classes,
            label_names=tuple(self.label_names),
            fingerprint=self.fingerprint,
            size_bytes=self.size_bytes,
            created_at=aware_utc(self.created_at),
            owner=self.owner,
        )


class TokenRow(Base):
    __tablename__ = "api_tokens"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def to_record(self) -> TokenRecord:
        return TokenRecord(
            id=self.id,
            owner=self.owner,
            description=self.description,
            is_admin=self.is_admin,
            created_at=aware_utc(self.created_at),
            expires_at=optional_utc(self.expires_at),
            revoked_at=optional_utc(self.revoked_at),
        )
