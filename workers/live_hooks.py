"""A mixin for Tune plug-ins that hold live hooks (the service's listener, cancel checks).

Ray Tune pickles its searcher, callbacks and stopper into an experiment snapshot meant for
Tune's own restore, which supernas never uses (searches resume from the database). The live
hooks hold locks and database engines, so they are left out of the pickled copy.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DropsLiveHooksWhenPickled:
    _live_attributes: ClassVar[tuple[str, ...]] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._live_attributes:
            state[name] = None
        return state
