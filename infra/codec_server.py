"""``agentctl codec-server``: Temporal's remote codec protocol, so the Web UI (and the
``temporal`` CLI with ``--codec-endpoint``) can show decrypted payloads.

``POST /encode`` and ``POST /decode`` take and return ``{"payloads": [...]}`` in protobuf
JSON. CORS lets the Web UI's origin call it from the browser; an optional bearer token
keeps everyone else out. Bind it to 127.0.0.1 unless you put it behind TLS.
"""

import json
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidTag
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from durable_agents._infra.codec import CodecKeyError, EncryptionCodec

DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")


class CodecServer:
    """A small threaded HTTP server around an `EncryptionCodec`."""

    def __init__(
        self,
        codec: EncryptionCodec,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        origins: Sequence[str] = DEFAULT_ORIGINS,
        token: str | None = None,
    ) -> None:
        self.codec = codec
        self.origins = tuple(origins)
        self.token = token
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give the Web UI (``--ui-codec-endpoint``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> "CodecServer":
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self
        actions: dict[str, Callable[[Sequence[Payload]], list[Payload]]] = {
            "/encode": server.codec.encode_sync,
            "/decode": server.codec.decode_sync,
        }

        class Handler(BaseHTTPRequestHandler):
            def _cors(self) -> None:
                origin = self.headers.get("Origin")
                if origin and origin in server.origins:
                    self.send_header("Access-Control-Allow-Origin", origin)
                    self.send_header("Vary", "Origin")
                    self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                    self.send_header(
                        "Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization"
                    )
                    self.send_header("Access-Control-Allow-Credentials", "true")

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_OPTIONS(self) -> None:
                self.send_response(204)
                self._cors()
                self.end_headers()

            def do_POST(self) -> None:
                path = self.path.rstrip("/").rsplit("/", 1)[-1]
                action = actions.get(f"/{path}")
                if action is None:
                    self._reply(404, {"error": "use POST /encode or /decode"})
                    return
                if server.token and self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._reply(401, {"error": "missing or wrong bearer token"})
                    return
                try:
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    payloads = json_format.Parse(body, Payloads())
                    result = Payloads(payloads=action(payloads.payloads))
                except (json_format.ParseError, CodecKeyError, InvalidTag, ValueError) as err:
                    self._reply(400, {"error": str(err)})
                    return
                self._reply(200, json_format.MessageToDict(result))

            def log_message(self, *args: object) -> None:
                pass  # no access log on stderr; payload content must never be logged

        return Handler
