"""gunicorn configuration of the multiprocess test: the documented child_exit hook."""

from limelight_prometheus import child_exit

workers = 2
worker_class = "sync"
timeout = 30
graceful_timeout = 5
__all__ = ["child_exit", "graceful_timeout", "timeout", "worker_class", "workers"]
