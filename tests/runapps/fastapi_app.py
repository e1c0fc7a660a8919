"""A FastAPI service with no limelight line: what ``limelight run`` instruments."""

from __future__ import annotations

import os
import sys

import httpx
from fastapi import FastAPI

app = FastAPI()

NOT_IMPORTED = ("flask", "django", "sqlalchemy", "redis", "aio_pika", "pika", "nats", "temporalio")
"""Libraries limelight instruments that this application never imports."""


@app.get("/items/{item_id}")
def item(item_id: int) -> dict[str, int]:
    return {"item": item_id}


@app.get("/call")
def call() -> dict[str, int]:
    response = httpx.get(os.environ["RUNAPP_DOWNSTREAM"], timeout=10)
    return {"status": response.status_code}


@app.get("/modules")
def modules() -> dict[str, object]:
    return {"pid": os.getpid(), "imported": [m for m in NOT_IMPORTED if m in sys.modules]}
