"""The instrument contract: one :class:`~limelight.surface.Instrumentor` per library."""

from __future__ import annotations

from limelight.surface import Instrumentation, Instrumentor, Patches

__all__ = ["instrument", "instrumentation", "is_instrumented", "uninstrument"]


def _remove(name: str) -> None:
    import importlib

    importlib.import_module(f"limelight_queue.{name}").remove()


def _aio_pika(patches: Patches) -> None:
    from ._aio_pika import install

    install(patches)


def _pika(patches: Patches) -> None:
    from ._pika import install

    install(patches)


def _nats(patches: Patches) -> None:
    from ._nats import install

    install(patches)


instrumentation = Instrumentation(
    "queue",
    [
        Instrumentor("aio_pika", _aio_pika, remove=lambda: _remove("_aio_pika")),
        Instrumentor("pika", _pika, remove=lambda: _remove("_pika")),
        Instrumentor("nats", _nats, remove=lambda: _remove("_nats")),
    ],
)

instrument = instrumentation.instrument
"""Instrument the named libraries (``"aio_pika"``, ``"pika"``, ``"nats"``), or, with
none named, every one that is installed; returns those instrumented by this call."""
uninstrument = instrumentation.uninstrument
"""Restore the named libraries (every one, with none named) exactly as they were."""
is_instrumented = instrumentation.is_instrumented
"""Whether the named library (any, with none named) is instrumented."""
