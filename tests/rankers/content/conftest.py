"""A loopback web server that serves fixture feeds, so connectors fetch over real HTTP and never the internet."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rankers.content.models import Connector, ContentSource, Lean, SourceKind

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Route:
    body: bytes
    content_type: str = "application/xml"
    status: int = 200
    delay_s: float = 0.0  # before the first byte: a timeout


class FeedServer:
    """Answers GETs from ``routes`` (path → Route); a path not there gets 404. Counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.released = threading.Event()  # set at teardown, so a held answer never outlives the test
        routes, hits, released = self.routes, self.hits, self.released

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] = hits.get(self.path, 0) + 1
                route = routes.get(self.path, Route(b"not found", "text/plain", 404))
                if route.delay_s:
                    released.wait(route.delay_s)
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, path: str, body: bytes | str, **route: object) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **route)  # type: ignore[arg-type]
        return self.url + path

    def serve_fixture(self, path: str, fixture: str, **route: object) -> str:
        return self.serve(path, (FIXTURES / fixture).read_bytes(), **route)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.released.set()
        server.server.shutdown()
        server.server.server_close()


def make_source(**fields: object) -> ContentSource:
    """A saved content source; tests name only the fields they are about."""
    defaults: dict[str, object] = {
        "name": "Example outlet",
        "platform": "twitter",
        "kind": SourceKind.NEWS_OUTLET,
        "connector": Connector.RSS,
        "location": "https://news.example.org/feed.xml",
        "lean": Lean.CENTRE,
    }
    source = ContentSource(**{**defaults, **fields})
    source.full_clean()
    source.save()
    return source
