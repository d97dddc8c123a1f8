"""Where `AttemptUsage` was first defined. One model attempt now runs as a task in
`server/engine/attempt.py`; the usage figures live with the engine's events
(`server/engine/events.py`) and are re-exported here for the modules that import them from
this name."""

from __future__ import annotations

from fareway.server.engine.events import AttemptUsage

__all__ = ["AttemptUsage"]
