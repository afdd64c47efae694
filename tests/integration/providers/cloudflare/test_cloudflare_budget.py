"""One RequestBudget shared by two providers (say, the handlers and the reaper) never passes
its limit, measured by the fake Cloudflare's own rate block on the same injected clock.

The injected clock moves only when the budget sleeps, and only once every call the budget
already let through has reached the fake (as if the network were instant): otherwise a
5-minute jump would land in the middle of a request's flight.
"""

from __future__ import annotations

import asyncio

from dd_operator.providers.cloudflare import CloudflareEdgeProvider
from dd_operator.retry import RequestBudget
from tests.support.wait import async_wait_for

from .conftest import CLUSTER, FakeClock, new_stamp
from .fake import FakeCloudflare

LIMIT, WINDOW = 5, 300.0


class CountingBudget(RequestBudget):
    """Counts the calls it let through, so the test clock can wait for them to land."""

    granted = 0

    async def acquire(self) -> None:
        await super().acquire()
        self.granted += 1


async def test_a_shared_budget_never_passes_the_limit() -> None:
    clock = FakeClock()
    with FakeCloudflare(clock=clock) as fake:
        fake.set_rate_block(threshold=LIMIT, window=WINDOW)  # one call more would be blocked

        async def sleep_when_idle(seconds: float) -> None:
            await async_wait_for(
                lambda: _landed(fake, budget), interval=0.005, message="calls to land"
            )
            await clock.sleep(seconds)

        budget = CountingBudget(LIMIT, WINDOW, clock=clock, sleep=sleep_when_idle)
        handlers = CloudflareEdgeProvider(fake.settings(), budget)
        reaper = CloudflareEdgeProvider(fake.settings(), budget)
        try:
            stamps = [new_stamp(f"pe-{i}") for i in range(8)]
            await asyncio.gather(
                *(handlers.find_tunnel(s) for s in stamps),
                *(reaper.list_dns(CLUSTER) for _ in range(6)),
            )
        finally:
            await handlers.close()
            await reaper.close()
        calls = fake.call_log()

    assert len(calls) == 14
    assert {c["status"] for c in calls} == {200}  # the fake never had to block us
    times = [float(c["at"]) for c in calls]
    for t in times:
        assert sum(1 for u in times if t - WINDOW < u <= t) <= LIMIT
    assert clock.now - times[0] >= 2 * WINDOW  # 14 calls at 5 per window span three windows


async def _landed(fake: FakeCloudflare, budget: CountingBudget) -> bool:
    return len(fake.call_log()) >= budget.granted
