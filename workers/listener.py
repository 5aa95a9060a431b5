"""What a search driver tells whoever persists its progress (the service implements this).

Workers never open the database: they call these methods and the service writes.
"""

from __future__ import annotations

from typing import Any, Protocol

from supernas.states import TrialState


class SearchListener(Protocol):
    def progress(self, message: str) -> None:
        """A human-readable progress line for the search (e.g. supernet training epochs)."""

    def trial_created(self, number: int, config: dict[str, Any], suggestion: dict[str, Any]) -> None:
        """A new trial; ``suggestion`` is what the strategy predicted for its config."""

    def trial_started(self, number: int) -> None: ...

    def trial_reported(self, number: int, step: int, fidelity: float, metrics: dict[str, Any]) -> None: ...

    def trial_finished(
        self,
        number: int,
        state: TrialState,
        reason: str | None,
        artifact_dir: str | None,
        metrics: dict[str, Any] | None,
    ) -> None: ...
