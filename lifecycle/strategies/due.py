"""Apply everything due in-process (``sif-lifecycle apply``, the demo, the tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from lifecycle.inventory.fleet import load_state
from lifecycle.model.fleet import Action
from lifecycle.strategies.apply import ApplyContext, ApplyResult, apply
from lifecycle.strategies.plan import due_now, plan


def run_due(ctx: ApplyContext, now: datetime,
            on_result: Callable[[Action, ApplyResult], None] | None = None) -> list[ApplyResult]:
    """Apply every due action in-process until none is left, each key at most once.

    One action's effect can make another due (a rotation makes re-signing due), so it plans
    again after each round. The service does the same through its work queue.
    """
    results: list[ApplyResult] = []
    tried: set[str] = set()
    while True:
        state = load_state(ctx.engine, now, ctx.policies.publish_directories(),
                           ctx.ca.keys.files.root)
        pending = [a for a in due_now(plan(state, ctx.policies, now), now) if a.key not in tried]
        if not pending:
            return results
        for action in pending:
            tried.add(action.key)
            results.append(apply(action, ctx, now))
            if on_result is not None:
                on_result(action, results[-1])
