"""ASGI middleware of the service (request context; rate limiting and idempotency live in
their own packages)."""
