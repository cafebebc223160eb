"""What the lifecycle work is: policies, the fleet state, the pure planner and idempotent apply.

``plan(state, policies, now)`` decides; ``apply(action, ctx, now)`` does one action, re-checking
the store first. Scheduling (when to call them, by whom) belongs to ``lifecycle.service``.
"""
