"""A local stand-in for a Slack incoming webhook: an HTTP endpoint on a loopback port that keeps
what it was sent and can answer errors first, as Slack does under load."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlackEndpoint:
    def __init__(self, failures: int = 0, status: int = 500) -> None:
        self.messages: list[dict] = []
        self.calls = 0
        self.failures, self.status = failures, status
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.calls += 1
                if endpoint.failures > 0:
                    endpoint.failures -= 1
                    self.send_response(endpoint.status)
                    self.end_headers()
                    self.wfile.write(b"rollup_error")
                    return
                endpoint.messages.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
