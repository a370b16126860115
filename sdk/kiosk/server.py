"""The kiosk's local web server (Flask): the kiosk page, the operator page and a small JSON API.

    /                      the kiosk: colour, IR and depth views, the decision banner, hints, progress
    /operator              frames per second, stage timings, operating point, the last results
    /api/status            {"state", "decision", "score", "reasons", "hints", "fps", "model_version", ...}
    /api/results           {"results": [...]} newest first
    /api/frame/<s>.jpg     the latest colour / ir / depth view with the face box

Everything it serves comes from this package (no external fonts, scripts or styles: it works
offline) and a Content-Security-Policy of 'self' keeps it that way in the browser. Flask's static
route serves files only: there are no directory listings. Only GET (and HEAD) are answered.
"""
from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from typing import Any

from sdk.errors import DependencyMissingError
from sdk.kiosk.state import KioskState

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8300
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                                "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                                "form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _flask():
    try:
        import flask
    except ImportError as error:  # pragma: no cover - depends on the install
        raise DependencyMissingError(
            "the kiosk needs Flask: pip install 'sr300-liveness[kiosk]'") from error
    return flask


def create_app(state: KioskState) -> Any:
    """The Flask app over a KioskState (tests drive it with app.test_client())."""
    flask = _flask()
    app = flask.Flask(
        "sdk.kiosk",
        root_path=str(PACKAGE_DIR),
        static_folder=str(PACKAGE_DIR / "static"),
        static_url_path="/static",
        template_folder=str(PACKAGE_DIR / "templates"),
    )
    app.config["JSON_SORT_KEYS"] = False

    @app.after_request
    def headers(response):
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if flask.request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def kiosk_page():
        return flask.render_template("kiosk.html", status=state.status())

    @app.get("/operator")
    def operator_page():
        return flask.render_template("operator.html", status=state.status())

    @app.get("/api/status")
    def api_status():
        return flask.jsonify(state.status())

    @app.get("/api/results")
    def api_results():
        return flask.jsonify({"results": state.results()})

    @app.get("/api/frame/<stream>.jpg")
    def api_frame(stream: str):
        try:
            data = state.jpeg(stream)
        except KeyError:
            flask.abort(404)
        if data is None:
            flask.abort(404)
        return flask.Response(data, mimetype="image/jpeg")

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class KioskServer:
    """Werkzeug's threaded server around the app, stoppable from another thread."""

    def __init__(self, app: Any, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        from werkzeug.serving import make_server

        self._server = make_server(host, int(port), app, threaded=True)
        self.host = host
        self.port = int(self._server.server_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> "KioskServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="kiosk-http", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
