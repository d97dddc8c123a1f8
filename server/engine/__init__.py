"""The request engine: one request's attempts as tasks against one bill, following the plan.

- `engine.py`   the runner: holds, runs attempts, follows the policies, settles.
- `attempt.py`  one attempt as a task, ending in a frozen `AttemptResult`.
- `channel.py`  the bounded channel that carries events to the servicer.
- `bill.py`     one bill per request: hold, record each attempt once, settle once.
- `fallback.py` the fallback policy over the plan's fallback order.
- `cascade.py`  the cascade policy: confidence, buffered or speculative text, the ladder.
- `hedge.py`    the hedge policy: the race between a late first attempt and its hedge.
- `breaker.py`  the breaker policy: admit each attempt, learn from each result.
- `observe.py`  what attempts and bills tell telemetry and the latency record.
- `consult.py`  a strategy's own billed, traced model call (the LLM classifier's).
- `wiring.py`   what every run shares: providers, ledger, clock, observer, breaker.
- `events.py`   the events the servicer encodes.
"""
