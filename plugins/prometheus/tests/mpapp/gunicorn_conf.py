"""gunicorn configuration of the multiprocess test: the documented hooks.

``child_exit`` forgets a dead worker's live gauges (left out when
``$MPAPP_CHILD_EXIT`` is ``off``, as in a configuration that does not add it);
``when_ready`` serves the aggregate from the master process on
``$MPAPP_METRICS_PORT``.
"""

import os
from typing import Any

from limelight_prometheus import child_exit, start_http_server

workers = 2
worker_class = "sync"
timeout = 30
graceful_timeout = 5


def when_ready(server: Any) -> None:
    start_http_server(int(os.environ["MPAPP_METRICS_PORT"]), "127.0.0.1")


__all__ = ["child_exit", "graceful_timeout", "timeout", "when_ready", "worker_class", "workers"]

if os.environ.get("MPAPP_CHILD_EXIT") == "off":
    del child_exit
    __all__.remove("child_exit")
