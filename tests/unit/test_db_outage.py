"""Which database errors are an outage (503, logged once) and which stay a 500."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

from cortiware.db.outage import ConnectFailed, DatabaseOutage, is_outage, on_database_error


class _Request:
    """Just enough of a request for the 500 handler."""

    scope: dict[str, Any] = {"state": {}}

    class url:
        path = "/x"


def test_refused_and_closed_connections_are_outages() -> None:
    """A refused connect, a failed connect and an invalidated connection are outages."""
    invalidated = sa_exc.OperationalError("SELECT 1", {}, OSError(), connection_invalidated=True)
    assert is_outage(ConnectionRefusedError(111, "refused"))
    assert is_outage(ConnectFailed("cannot connect"))
    assert is_outage(invalidated)


def test_query_errors_and_pool_timeouts_are_not_outages() -> None:
    """A constraint violation is a bug or a conflict, and a pool timeout is overload."""
    integrity = sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert not is_outage(integrity)
    assert not is_outage(sa_exc.TimeoutError("QueuePool limit reached"))


def test_a_pool_timeout_is_a_503_with_retry_after() -> None:
    """Every connection busy: 503 problem+json with Retry-After, not a 500."""
    response = on_database_error(_Request(), sa_exc.TimeoutError("QueuePool limit reached"))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1


def test_an_outage_is_logged_once_until_it_ends() -> None:
    """Many failures make one outage; the next success ends it."""
    outage = DatabaseOutage()
    for _ in range(3):
        outage.failed(ConnectionRefusedError())
    assert outage.is_down
    outage.succeeded()
    assert not outage.is_down
