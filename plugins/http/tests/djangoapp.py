"""A small Django project for the Django middleware tests (settings and URLconf)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse  # type: ignore[import-untyped]
from django.urls import include, path, re_path  # type: ignore[import-untyped]
from opentelemetry import trace

TRACER = trace.get_tracer("djangoapp")
RELEASE = threading.Event()
PRODUCED: list[tuple[str, float]] = []


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    if item_id == 0:
        raise Http404("no such item")
    return JsonResponse({"id": item_id})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("kaboom")


def legacy(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year)


def events(request: HttpRequest) -> StreamingHttpResponse:
    if hasattr(request, "scope"):  # under ASGI Django buffers synchronous iterators
        return StreamingHttpResponse(stream_async(), content_type="text/event-stream")

    def stream() -> Iterator[bytes]:
        PRODUCED.append(("one", time.time()))
        yield b"data: one\n\n"
        RELEASE.wait(5)
        PRODUCED.append(("two", time.time()))
        yield b"data: two\n\n"

    return StreamingHttpResponse(stream(), content_type="text/event-stream")


async def stream_async() -> AsyncIterator[bytes]:
    PRODUCED.append(("one", time.time()))
    yield b"data: one\n\n"
    while not RELEASE.is_set():
        await asyncio.sleep(0.005)
    PRODUCED.append(("two", time.time()))
    yield b"data: two\n\n"


TICKS = 500  # a stream of at most 5 s, ended early by a client that leaves


def ticks(request: HttpRequest) -> StreamingHttpResponse:
    """Streams until the client leaves (its writes fail, or the server hears it leave)."""
    if hasattr(request, "scope"):
        return StreamingHttpResponse(ticks_async(), content_type="text/event-stream")

    def stream() -> Iterator[bytes]:
        for n in range(TICKS):
            PRODUCED.append((f"tick {n}", time.time()))
            yield b"data: tick\n\n"
            time.sleep(0.01)

    return StreamingHttpResponse(stream(), content_type="text/event-stream")


async def ticks_async() -> AsyncIterator[bytes]:
    for n in range(TICKS):
        PRODUCED.append((f"tick {n}", time.time()))
        yield b"data: tick\n\n"
        await asyncio.sleep(0.01)


def broken(request: HttpRequest) -> StreamingHttpResponse:
    """Sends one chunk, then fails."""
    if hasattr(request, "scope"):
        return StreamingHttpResponse(broken_async(), content_type="text/event-stream")

    def stream() -> Iterator[bytes]:
        yield b"data: one\n\n"
        raise RuntimeError("feed lost")

    return StreamingHttpResponse(stream(), content_type="text/event-stream")


async def broken_async() -> AsyncIterator[bytes]:
    yield b"data: one\n\n"
    raise RuntimeError("feed lost")


def feed(request: HttpRequest) -> StreamingHttpResponse:
    """Two chunks, each made inside a span of its own."""
    if hasattr(request, "scope"):
        return StreamingHttpResponse(feed_async(), content_type="text/event-stream")

    def stream() -> Iterator[bytes]:
        for n in range(2):
            with TRACER.start_as_current_span(f"render {n}"):
                chunk = f"data: {n}\n\n".encode()
            yield chunk

    return StreamingHttpResponse(stream(), content_type="text/event-stream")


async def feed_async() -> AsyncIterator[bytes]:
    for n in range(2):
        with TRACER.start_as_current_span(f"render {n}"):
            await asyncio.sleep(0.001)
            chunk = f"data: {n}\n\n".encode()
        yield chunk


async def slow(request: HttpRequest) -> HttpResponse:
    """Answers once RELEASE is set (at most 5 s)."""
    for _ in range(500):
        if RELEASE.is_set():
            break
        await asyncio.sleep(0.01)
    return HttpResponse("done")


api = [path("items/<int:item_id>/", item), re_path(r"^archive/(?P<year>[0-9]{4})/$", legacy)]

urlpatterns = [
    path("api/v1/", include(api)),
    path("boom/", boom),
    path("events/", events),
    path("ticks/", ticks),
    path("slow/", slow),
    path("broken/", broken),
    path("feed/", feed),
]

SETTINGS = {
    "DEBUG": False,
    "ALLOWED_HOSTS": ["*"],
    "ROOT_URLCONF": "djangoapp",
    "MIDDLEWARE": ["limelight_http.DjangoMiddleware"],
    "SECRET_KEY": "limelight-tests-only",
    "INSTALLED_APPS": [],
    "LOGGING_CONFIG": None,
    "LIMELIGHT_HTTP": {"exclude_paths": ["/healthz/"]},
}
