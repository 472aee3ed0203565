"""A fake W&B server on 127.0.0.1 for tests: enough of W&B's HTTP API for an online run, and a kill switch.

No pip-installable server stands in for W&B (``../shared/facts.md``), and tests never reach a
network, so online-mode faults are tested against this: a threaded :mod:`http.server` on a
free port of 127.0.0.1 that a test starts, points a run at (:meth:`FakeWandbServer.env`) and
kills mid-run (:meth:`FakeWandbServer.kill`) or silences (:meth:`FakeWandbServer.hang`).

What it answers was found by logging every request wandb 0.31.0 (the Go ``wandb-core``
service) sends for an online ``rlab-train`` run (``WANDB_ENTITY`` set): GraphQL
``RunResumeStatus``, ``UpsertBucket``, ``OrganizationCoreWeaveOrganizationID``,
``CreateRunFiles``, then ``file_stream`` POSTs, ``PUT`` uploads of the run's files and
OpenTelemetry POSTs (``/sdk/otel/v1/...``). The GraphQL reply shapes follow the query texts
in the ``wandb-core`` binary:

- ``POST /graphql``: by operation name — ``UpsertBucket`` (the run is created),
  ``CreateRunFiles`` (upload URLs on this server), and, for clients without an entity,
  ``Viewer`` and ``ServerFeaturesQuery`` (no optional features); any other operation gets
  ``{"data": {}}``, which wandb 0.31 takes as "nothing to resume / no such feature";
- ``POST /files/<entity>/<project>/<run>/file_stream``: accepted; the history rows received
  are counted (:attr:`FakeWandbServer.history_rows`);
- any other ``POST``, ``PUT`` (the upload URLs) or ``GET``: accepted and discarded.

Every request is recorded in :attr:`FakeWandbServer.requests` as ``(method, path, operation)``
so a failing test can show what the client did. No request body is stored or printed: the
client's ``Authorization`` header carries the (fake) API key.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENTITY = "rlab-test"


class FakeWandbServer:
    """The server; use as a context manager (``with FakeWandbServer() as server: ...``)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        self.history_rows = 0
        self.file_stream_seen = threading.Event()  # set on the first file_stream POST
        self.killed = False
        self.hanging = False
        self._released = threading.Event()  # lets hung handlers go when the server is killed
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-wandb-server", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the ``WANDB_BASE_URL`` of a run that should use this server."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The environment that makes a W&B run online against this server, with a fake 40-character key."""
        return {"WANDB_BASE_URL": self.url, "WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40,
                "WANDB_ENTITY": ENTITY}

    def start(self) -> "FakeWandbServer":
        self._thread.start()
        return self

    def hang(self) -> None:
        """The server stops answering but keeps every connection open, as a stuck server or proxy
        does: requests are read and never answered (until :meth:`kill`)."""
        self.hanging = True

    def kill(self) -> None:
        """The server goes away: the listening socket closes (new connections are refused) and every
        open connection is cut without an answer, as when the host or its process dies."""
        with self._lock:
            self.killed = True
            conns, self._conns = list(self._conns), set()
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed by its handler
                pass
            conn.close()

    def __enter__(self) -> "FakeWandbServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self.killed:
            self.kill()

    # -- used by the handler ------------------------------------------------------------------
    def _track(self, conn: socket.socket) -> bool:
        with self._lock:
            if self.killed:
                return False
            self._conns.add(conn)
            return True

    def _record(self, method: str, path: str, operation: str = "") -> None:
        with self._lock:
            self.requests.append((method, path, operation))

    def _count_history(self, body: dict[str, Any]) -> None:
        rows = body.get("files", {}).get("wandb-history.jsonl", {}).get("content", [])
        with self._lock:
            self.history_rows += len(rows)
        self.file_stream_seen.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler blocked on a dead connection must not hold up the test's exit
    fake: FakeWandbServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that resets its connection (every run's last requests do) is no error here

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.fake._track(request):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as W&B's Go HTTP client expects
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet; requests are recorded
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self._body()
        fake = self.server.fake
        if self.path.startswith("/graphql"):
            payload = json.loads(body or b"{}")
            operation = payload.get("operationName") or _operation_of(payload.get("query", ""))
            fake._record("POST", self.path, operation)
            self._json(_graphql_answer(operation, payload.get("variables") or {}, fake.url))
        elif self.path.endswith("/file_stream"):
            fake._record("POST", self.path, "file_stream")
            fake._count_history(json.loads(body or b"{}"))
            self._json({"exitcode": None, "limits": {}})
        else:
            fake._record("POST", self.path)
            self._json({})

    def do_PUT(self) -> None:  # noqa: N802
        self._body()
        self.server.fake._record("PUT", self.path)
        self._json({})

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._record("GET", self.path)
        self._json({})

    def _body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return gzip.decompress(data) if self.headers.get("Content-Encoding") == "gzip" else data

    def _json(self, obj: Any) -> None:
        if self.server.fake.hanging:
            self.server.fake._released.wait()
        if self.server.fake.killed:  # a dead server answers nothing
            self.close_connection = True
            return
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _operation_of(query: str) -> str:
    """``UpsertBucket`` from ``mutation UpsertBucket (...) {``: the name when the client sends none."""
    words = query.replace("(", " ").replace("{", " ").split()
    return words[1] if len(words) > 1 and words[0] in ("query", "mutation") else ""


def _graphql_answer(operation: str, variables: dict[str, Any], url: str) -> dict[str, Any]:
    """A plausible reply to one GraphQL operation (only the fields wandb-core reads)."""
    if operation == "Viewer":
        return {"data": {"viewer": {"id": "u1", "entity": ENTITY, "username": ENTITY, "flags": "{}",
                                    "teams": {"edges": []}}}}
    if operation == "ServerFeaturesQuery":
        return {"data": {"serverInfo": {"features": []}}}
    if operation == "UpsertBucket":
        project = variables.get("project") or "uncategorized"
        bucket = {"id": "b1", "name": variables.get("name"), "displayName": variables.get("displayName") or "run",
                  "description": "", "config": "{}", "sweepName": None, "historyLineCount": 0,
                  "project": {"id": "p1", "name": project,
                              "entity": {"id": "e1", "name": variables.get("entity") or ENTITY}}}
        return {"data": {"upsertBucket": {"bucket": bucket, "inserted": True}}}
    if operation == "CreateRunFiles":
        files = [{"name": name, "uploadUrl": f"{url}/upload/{name}"} for name in variables.get("files", [])]
        return {"data": {"createRunFiles": {"runID": "b1", "uploadHeaders": [], "files": files}}}
    return {"data": {}}
