"""The request as routing and providers see it: plain data, decoded from the wire by the server.

Its turns are `fareway.core.content` messages, so a request may carry tools and an agent's
conversation of tool calls and results.

What the strategies read of such a conversation is `RouteRequest.query`: the last user turn,
the task. The semantic strategy embeds it and the learned strategy scores it (its embedding
and cheap features) exactly as they would the task sent alone; the model's tool calls and the
tools' outputs after it are left out, because a tool's output says what the tool returned, not
how hard the next step is (a long log would read as a hard task, a "4" as a trivial one), and
neither strategy was fitted on tool traffic. The whole conversation, tool definitions included,
still counts where size matters: the prompt estimate (`features.prompt_tokens`) that the
context-window constraint, the cost estimate and the budget hold use. An agent that wants each
step routed on its own says so with `hints.step_type`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fareway.core.content import Message, Role, Tool, ToolChoice


@dataclass(frozen=True)
class Hints:
    """What the caller told the router; empty strings and None mean "not given"."""

    strategy: str = ""
    step_type: str = ""
    model: str = ""
    tier: str = ""
    max_cost_micros: int | None = None
    latency_target_ms: int | None = None
    # In the caller's order, so that a problem can name its index (hints.required_capabilities[i]).
    required_capabilities: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    # A cascade's mode for this request: "buffered", "speculative", or "" for the tenant's.
    cascade_mode: str = ""


@dataclass(frozen=True)
class RouteRequest:
    """A validated request: non-empty messages ending with a user turn or with tool results,
    max_tokens > 0, a tool choice only with tools."""

    messages: tuple[Message, ...]
    max_tokens: int
    tenant: str
    request_id: str
    system: str = ""
    hints: Hints = Hints()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None

    @property
    def has_images(self) -> bool:
        """Whether any turn shows the model an image."""
        return any(message.images for message in self.messages)

    @property
    def query(self) -> str:
        """The last user turn's text: the task that routing looks at. In an agent's loop the
        conversation ends with tool results, and what decides the next step is the task the
        user set, not a tool's output, so tool and assistant turns after it are passed over."""
        for message in reversed(self.messages):
            if message.role is Role.USER:
                return message.text
        return self.messages[-1].text


@dataclass(frozen=True)
class TenantContext:
    """What the server knows of the request's tenant when it decides, handed to routing beside
    the request rather than copied into it: what its budget still allows, and its own
    time-to-first-token target (0 for none)."""

    budget_remaining_micros: int | None = None
    latency_target_ms: int = 0

    def target_for(self, request: RouteRequest) -> int:
        """The request's time-to-first-token target: its own, else the tenant's; 0 for none."""
        return request.hints.latency_target_ms or self.latency_target_ms


UNKNOWN_TENANT = TenantContext()
"""No budget or target known (routing unit tests, tools): where a context is optional."""
