"""Typed keys into `app.state`: each names its value's type once, and every read checks it.

Litestar's `State` is an untyped mapping. A `StateKey` is declared next to the type it holds
(`SETTINGS` here, `DB_SESSIONMAKER` in `cortiware.db.session`, `KV_STATE` in `cortiware.kv`,
`RATE_LIMITER` in `cortiware.ratelimit`, ...); the app's lifespan `set`s it, middleware `get`s
it, and handlers receive the value as a typed dependency (`create_app` turns keys into
`Provide`rs), never by looking a string up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from litestar.datastructures import State

from cortiware.settings import Settings

__all__ = ["SETTINGS", "StateKey"]

T = TypeVar("T")


def _state_of(holder: Any) -> State:
    state = holder if isinstance(holder, State) else holder.state
    assert isinstance(state, State)
    return state


@dataclass(frozen=True, slots=True)
class StateKey(Generic[T]):
    """The name of one `app.state` entry and the type of its value."""

    name: str
    type: type[T]

    def find(self, holder: Any) -> T | None:
        """The value in `holder` (an app or its `State`), or None when it is not set."""
        value = _state_of(holder).get(self.name)
        if value is None:
            return None
        if not isinstance(value, self.type):
            raise TypeError(f"app.state[{self.name!r}] is a {type(value).__name__}")
        return value

    def get(self, holder: Any) -> T:
        """The value in `holder`; raise LookupError when the app did not set it up."""
        value = self.find(holder)
        if value is None:
            raise LookupError(f"app.state[{self.name!r}] is not set up")
        return value

    def set(self, holder: Any, value: T) -> None:
        """Store `value` in `holder` (an app or its `State`)."""
        _state_of(holder)[self.name] = value


SETTINGS: Final = StateKey("settings", Settings)
"""The validated settings the app was built with."""
