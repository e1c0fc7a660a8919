"""The workflow and activity bench_temporal.py runs (a module of its own: Temporal's
workflow sandbox re-imports it, so it imports nothing but temporalio and the stdlib)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def touch(n: int) -> int:
    return n + 1


@workflow.defn
class Chain:
    """Runs *activities* activities one after the other."""

    @workflow.run
    async def run(self, activities: int) -> int:
        n = 0
        for _ in range(activities):
            n = await workflow.execute_activity(
                touch, n, start_to_close_timeout=timedelta(seconds=30)
            )
        return n
