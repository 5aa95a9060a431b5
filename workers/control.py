"""What a running search consults while it runs: a cancel, a requested pause or stop, and its
budget, which the user may change while the search runs. The service reads them from the database;
a fixed control serves runs without a service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from search_spaces.spec import Budget


class SearchControl(Protocol):
    def canceled(self) -> bool:
        """Stop everything now: running trials are terminated."""
        ...

    def winding_down(self) -> bool:
        """Pause or stop requested: start or resume no trial; under a stop the running ones finish."""
        ...

    def pausing(self) -> bool:
        """Pause requested: running trials pause after their current step, to resume with the search."""
        ...

    def budget(self) -> Budget:
        """The current budget (max_trials, max_parallel, max_failed, max_duration_s)."""
        ...


@dataclass(frozen=True)
class FixedControl:
    """A control that never cancels or winds down, with a budget that never changes."""

    fixed_budget: Budget

    def canceled(self) -> bool:
        return False

    def winding_down(self) -> bool:
        return False

    def pausing(self) -> bool:
        return False

    def budget(self) -> Budget:
        return self.fixed_budget
