"""A fake outside HTTP service on loopback, for the clients that call one (external rankers, Perspective)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (path, request body) -> (status, JSON response body)
Handle = Callable[[str, bytes], tuple[int, bytes]]


@contextmanager
def serving(handle: Handle) -> Iterator[str]:
    """Answer POSTs with ``handle`` on 127.0.0.1 from a background thread; yields ``http://127.0.0.1:<port>``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status, payload = handle(self.path, self.rfile.read(int(self.headers["Content-Length"])))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (timeout tests)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
