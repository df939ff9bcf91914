"""The offline Stripe fake (`FakeStripe`) served over HTTP, for a service in another process.

`cortiware serve` started by `tests/support/serve_on_fake_stripe.py` sends its Stripe API
calls here instead of to Stripe; the test reads what was asked from `fake.requests`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.stripe_fake import FakeStripe

__all__ = ["serve_fake_stripe"]


def _handler(fake: FakeStripe, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else None
            url = f"http://{self.headers.get('Host', 'stripe')}{self.path}"
            with lock:
                text, status, headers = fake.request(
                    self.command.lower(), url, dict(self.headers.items()), body
                )
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the fake's record is `fake.requests`."""

    return Handler


@contextmanager
def serve_fake_stripe() -> Iterator[tuple[str, FakeStripe]]:
    """A `FakeStripe` on a loopback port; yields its base URL and the fake."""
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake, threading.Lock()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
