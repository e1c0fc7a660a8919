"""A WSGI app whose processes the runtime-metrics tests look at (one telemetry per process).

``/burn?0.5`` spends half a second of CPU, ``/gc`` runs a full collection,
``/facts`` answers what the process knows of itself (pid, file descriptor limit,
Python version); every other path answers the pid. Run as a script it serves
itself on ``argv[1]`` in one process, with /metrics from the plugin's standalone
server; under gunicorn each worker starts its own telemetry.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from limelight_prometheus import make_wsgi_app

import limelight

telemetry = limelight.start(service_name="runtime-metrics-test")
metrics = make_wsgi_app()


def _burn(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/metrics":
        return metrics(environ, start_response)
    body: object = os.getpid()
    if path == "/burn":
        _burn(float(environ["QUERY_STRING"]))
    elif path == "/gc":
        gc.collect()
    elif path == "/facts":
        body = {
            "pid": os.getpid(),
            "max_fds": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "version": platform.python_version(),
        }
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [json.dumps(body).encode()]


if __name__ == "__main__":
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    with make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=_Quiet) as server:
        server.serve_forever()
