"""Unit tests of typed `app.state` entries (`cortiware.app_state.StateKey`)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.datastructures import State

from cortiware.app_state import SETTINGS, StateKey
from cortiware.kv import KV, KV_STATE
from cortiware.settings import Settings

_NUMBER = StateKey("a_number", int)


def test_set_then_get_from_the_app_or_its_state() -> None:
    """A value set on an app is read back, typed, from the app or from its `State`."""
    app = Litestar()
    _NUMBER.set(app, 7)
    assert _NUMBER.get(app) == 7
    assert _NUMBER.get(app.state) == 7
    assert _NUMBER.find(State()) is None


def test_a_missing_entry_is_a_lookup_error_and_a_wrong_type_a_type_error() -> None:
    """`get` refuses an app that never set the entry, and a value of another type."""
    app = Litestar()
    with pytest.raises(LookupError, match="a_number"):
        _NUMBER.get(app)
    app.state["a_number"] = "seven"
    with pytest.raises(TypeError, match="a_number"):
        _NUMBER.get(app)


def test_the_service_keys_read_what_the_app_sets() -> None:
    """`create_app`-style state (settings by name, a KV) reads back through the typed keys."""
    settings = Settings.from_env({})
    state = State({SETTINGS.name: settings})
    KV_STATE.set(state, KV.from_url(None))
    assert SETTINGS.get(state) is settings
    assert isinstance(KV_STATE.get(state), KV)
