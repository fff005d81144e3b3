"""A real MJPEG-over-HTTP camera on loopback (what many IP cameras serve), for source tests.

Each connection streams ``frames`` JPEG frames of ``images`` as multipart/x-mixed-replace and
then closes, like a camera that drops out (after ``connections_allowed`` connections it refuses
any more, like a camera that is gone for good); ``stop()`` takes the camera off the network and
``start()`` brings it back on the same port.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
import time

import cv2
import numpy as np


class MjpegCamera:
    def __init__(
        self, images: list[np.ndarray], frames: int, fps: float = 100.0, connections_allowed: int | None = None
    ):
        self.jpegs = [cv2.imencode(".jpg", im)[1].tobytes() for im in images]
        self.frames, self.period = frames, 1.0 / fps
        self.connections_allowed = connections_allowed  # later connections are refused (503)
        self.connections = 0
        self.port = 0
        self._server: socketserver.ThreadingTCPServer | None = None

    def _handler(self) -> type:
        cam = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                cam.connections += 1
                if cam.connections_allowed is not None and cam.connections > cam.connections_allowed:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for i in range(cam.frames):
                    jpg = cam.jpegs[i % len(cam.jpegs)]
                    head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                    try:
                        self.wfile.write(head + jpg + b"\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    time.sleep(cam.period)

        return Handler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/camera.mjpg"

    def start(self) -> MjpegCamera:
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
