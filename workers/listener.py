"""What a search driver tells whoever persists its progress (the service implements this).

Workers never open the database: they call these methods and the service writes.
"""

from __future__ import annotations

from typing import Any, Protocol

from supernas.states import TrialState


class SearchListener(Protocol):
    def progress(self, message: str) -> None:
        """A human-readable progress line for the search (e.g. supernet training epochs)."""

    def supernet_progress(self, message: str) -> None:
        """Progress of the search's supernet training (also shown as the search's progress)."""

    def supernet_finished(self, state: str, reason: str, summary: dict[str, Any] | None) -> None:
        """The search's supernet is trained (``ready``, with its summary) or failed."""

    def trial_created(self, number: int, config: dict[str, Any], suggestion: dict[str, Any]) -> None:
        """A new trial; ``suggestion`` is what the strategy predicted for its config."""

    def trial_started(self, number: int) -> None: ...

    def trial_reported(self, number: int, step: int, fidelity: float, metrics: dict[str, Any]) -> None: ...

    def trial_retried(self, number: int, attempt: int, reason: str) -> None:
        """The trial failed (``reason``: its error, or ``worker lost: ...``) and runs again from its
        latest checkpoint; ``attempt`` counts its retries (1 for the first)."""

    def trial_decided(self, number: int, decision: dict[str, Any]) -> None:
        """A scheduler decided for the trial: continue past a rung, pause, resume, stop; ``decision``
        holds the action, fidelity, reason and, where the scheduler has them, rung, prediction and
        acquisition value."""

    def trial_finished(
        self,
        number: int,
        state: TrialState,
        reason: str | None,
        artifact_dir: str | None,
        metrics: dict[str, Any] | None,
    ) -> None: ...
