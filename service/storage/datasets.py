"""Storage of uploaded data sets' descriptions (the arrays themselves live in the artifact store)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.storage.models import DatasetRow
from service.storage.queries import newest_first_page
from supernas.errors import NotFoundError
from supernas.records import DatasetRecord, Page

DATASET_PREFIX = "ds_"


def new_dataset_id() -> str:
    return DATASET_PREFIX + uuid4().hex


class DatasetStore:
    engine: Engine

    def create_dataset(self, idempotency_key: str | None = None, **fields: Any) -> DatasetRecord:
        """Record an uploaded data set; ``fields`` are ``DatasetRecord``'s but ``created_at``."""
        shape, labels = list(fields.pop("input_shape")), list(fields.pop("label_names"))
        with Session(self.engine) as s, s.begin():
            row = DatasetRow(**fields, input_shape=shape, label_names=labels, idempotency_key=idempotency_key)
            s.add(row)
            s.flush()
            return row.to_record()

    def dataset_by_key(self, idempotency_key: str) -> DatasetRecord | None:
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(DatasetRow).where(DatasetRow.idempotency_key == idempotency_key))
            return None if row is None else row.to_record()

    def get_dataset(self, dataset_id: str) -> DatasetRecord:
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(DatasetRow).where(DatasetRow.id == dataset_id))
            if row is None:
                raise NotFoundError(f"no data set with id {dataset_id!r}")
            return row.to_record()

    def list_datasets(
        self, page_size: int, page_token: str | None = None, owner: str | None = None
    ) -> Page[DatasetRecord]:
        """Newest first, keyset-paged on ``pk``; only ``owner``'s if given."""
        filters = [] if owner is None else [DatasetRow.owner == owner]
        return newest_first_page(self.engine, DatasetRow, filters, page_size, page_token)
