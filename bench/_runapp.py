"""The application bench_run.py serves: FastAPI, with no telemetry line in its code."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item": item_id}
