"""The project's routes."""

from __future__ import annotations

import os
import sys

import httpx
from django.http import HttpRequest, JsonResponse  # type: ignore[import-untyped]
from django.urls import path  # type: ignore[import-untyped]

NOT_IMPORTED = ("fastapi", "starlette", "flask", "sqlalchemy", "redis", "aio_pika", "temporalio")
"""Libraries limelight instruments that this application never imports."""


def item(request: HttpRequest, item_id: int) -> JsonResponse:
    return JsonResponse({"item": item_id})


def call(request: HttpRequest) -> JsonResponse:
    response = httpx.get(os.environ["RUNAPP_DOWNSTREAM"], timeout=10)
    return JsonResponse({"status": response.status_code})


def modules(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"pid": os.getpid(), "imported": [m for m in NOT_IMPORTED if m in sys.modules]}
    )


urlpatterns = [
    path("items/<int:item_id>", item),
    path("call", call),
    path("modules", modules),
]
