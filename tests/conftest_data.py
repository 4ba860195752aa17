"""Helpers for the data tests: a file server on 127.0.0.1 with HTTP Range support."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves `files` (path -> bytes) with Range support.

    `drop_first` cuts the first response short after that many bytes; `fail_first` answers the first
    that many requests with HTTP 503; `delay` seconds pass before each answer.
    """

    def __init__(
        self,
        files: dict[str, bytes],
        drop_first: int | None = None,
        ranges: bool = True,
        fail_first: int = 0,
        delay: float = 0.0,
    ):
        self.files, self.drop_first, self.ranges, self.fail_first = files, drop_first, ranges, fail_first
        self.delay = delay
        self.requests: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                time.sleep(server.delay)
                server.requests.append(self.headers.get("Range"))
                body = server.files.get(self.path)
                if len(server.requests) <= server.fail_first:
                    self.send_error(503)
                    return
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if server.ranges and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.drop_first is not None and len(server.requests) == 1:
                    self.wfile.write(body[start : start + server.drop_first])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
