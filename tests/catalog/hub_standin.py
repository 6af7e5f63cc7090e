"""A STAND-IN for the Hugging Face Hub: a local HTTP server with real files in the Hub's URL layout.

The Hub is not reachable from the test machines. This serves model directories at the paths huggingface_hub asks
for (`/{repo_id}/resolve/{revision}/{filename}`), answers HEAD with the headers its downloader reads (the commit,
an ETag, the size) and GET with or without a `Range` (the safetensors header reader asks for the first 100 kB),
and 404 with the Hub's `X-Error-Code` for what is missing. It records every request, so a test can check that
only headers were read. The real `huggingface_hub` client talks to it; nothing is patched.
"""

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class HubStandIn:
    repos: Mapping[str, Path]
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def requests_for(self, filename: str) -> list[Request]:
        return [request for request in self.requests if request.path.endswith("/" + filename)]


def _handler(hub: HubStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _file(self) -> Path | None:
            match = RESOLVE.match(unquote(self.path.split("?")[0]))
            if match is None or match["repo"] not in hub.repos:
                self._missing("RepoNotFound", 404)
                return None
            path = hub.repos[match["repo"]] / match["file"]
            if not path.is_file():
                self._missing("EntryNotFound", 404)
                return None
            return path

        def _missing(self, code: str, status: int) -> None:
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _headers(self, path: Path, status: int, length: int, extra: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(path.read_bytes()).hexdigest()}"')
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()

        def do_HEAD(self) -> None:
            hub.requests.append(Request("HEAD", self.path, self.headers.get("Range")))
            path = self._file()
            if path is not None:
                self._headers(path, 200, path.stat().st_size, {})

        def do_GET(self) -> None:
            requested = self.headers.get("Range")
            hub.requests.append(Request("GET", self.path, requested))
            path = self._file()
            if path is None:
                return
            data = path.read_bytes()
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", requested or "")
            if match is None:
                self._headers(path, 200, len(data), {})
                self.wfile.write(data)
                return
            start = int(match[1])
            end = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
            body = data[start : end + 1]
            self._headers(path, 206, len(body), {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
            self.wfile.write(body)

    return Handler


@contextmanager
def hub_stand_in(repos: Mapping[str, Path]) -> Iterator[HubStandIn]:
    hub = HubStandIn(repos)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
