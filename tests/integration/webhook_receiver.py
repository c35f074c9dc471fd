"""An application's webhook receiver, as its own process: it records every POST it gets.

`python -m tests.integration.webhook_receiver --port P --log FILE` appends one JSON line per
request to FILE: `{"mode", "signature", "body"}` (`body` base64, the bytes exactly as received),
so a test checks the signatures itself. `POST /_mode {"mode": ...}` sets how it answers:

- `ok`: 200;
- `fail`: 500;
- `hang`: no answer while the mode stays `hang` (then 503), the connection kept open.

It imports nothing of herald: what it records is what went over the wire.
"""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_AT_MOST_S = 300


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, log_path: str) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.mode = "ok"
        self.log_path = log_path
        self.lock = threading.Lock()

    def record(self, entry: dict[str, object]) -> None:
        with self.lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_GET(self) -> None:
        self.answer(200, json.dumps({"mode": self.server.mode}).encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_mode":
            self.server.mode = json.loads(body)["mode"]
            self.answer(200, b"{}")
            return
        mode = self.server.mode
        self.server.record(
            {
                "mode": mode,
                "path": self.path,
                "signature": self.headers.get("Herald-Signature"),
                "body": base64.b64encode(body).decode("ascii"),
            }
        )
        if mode == "hang":
            deadline = time.monotonic() + HANG_AT_MOST_S
            while self.server.mode == "hang" and time.monotonic() < deadline:
                time.sleep(0.05)
            self.answer(503, b"")
        elif mode == "fail":
            self.answer(500, b"broken")
        else:
            self.answer(200, b"ok")

    def answer(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the caller gave up waiting (a hang outlived its timeout)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--mode", default="ok")
    options = parser.parse_args()
    server = Receiver(options.port, options.log)
    server.mode = options.mode
    server.serve_forever()


if __name__ == "__main__":
    main()
