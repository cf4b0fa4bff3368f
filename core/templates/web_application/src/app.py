"""The {{ project_name }} web application: a minimal WSGI callable."""

from __future__ import annotations

from collections.abc import Callable, Iterable

GREETING = "Hello from {{ project_name }}"
PORT = int("{{ port }}")


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Answer ``/`` with a greeting and everything else with 404."""
    if environ.get("PATH_INFO", "/") == "/":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [GREETING.encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"not found"]


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", PORT, app).serve_forever()
