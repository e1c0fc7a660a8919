"""A Flask service with no limelight line: what ``limelight run`` instruments."""

from __future__ import annotations

import os
import sys

import httpx
from flask import Flask

app = Flask(__name__)

NOT_IMPORTED = ("fastapi", "starlette", "django", "sqlalchemy", "redis", "aio_pika", "temporalio")
"""Libraries limelight instruments that this application never imports."""


@app.get("/items/<int:item_id>")
def item(item_id: int) -> dict[str, int]:
    return {"item": item_id}


@app.get("/call")
def call() -> dict[str, int]:
    response = httpx.get(os.environ["RUNAPP_DOWNSTREAM"], timeout=10)
    return {"status": response.status_code}


@app.get("/modules")
def modules() -> dict[str, object]:
    return {"pid": os.getpid(), "imported": [m for m in NOT_IMPORTED if m in sys.modules]}
