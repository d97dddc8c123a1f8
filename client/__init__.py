"""The Python client for fareway: `Client` (blocking) and `AsyncClient` (asyncio).

    from fareway.client import Client, TextDelta

    with Client("127.0.0.1:50051", api_key="fareway-demo-key") as client:
        for event in client.generate("Classify this: spam or not?", max_tokens=200):
            if isinstance(event, TextDelta):
                print(event.text, end="")

Agents offer tools and send their results back as turns of the conversation:

    answer = client.complete("Use the calculator: 2 + 3?", tools=[calculator])
    results = [Turn.tool(call.id, run(call)) for call in answer.tool_calls]
    final = client.complete([Turn.user("Use the calculator: 2 + 3?"), answer.turn, *results],
                            tools=[calculator])

Results are frozen dataclasses (`fareway.client.types`); failed calls raise the exceptions of
`fareway.client.errors` (its docstring draws the tree). RESOURCE_EXHAUSTED is two of them:
`ResourceExhausted` when fareway refused for a budget, rate or cost ceiling (it carries a
`QuotaFailure`; its subclass `ServerBusy` when the server process was at its bound of
concurrent streams, worth a retry after `.retry_after`), `TransportLimitExceeded` when gRPC
refused for size (a message or its metadata above a limit), which waiting will not cure.
"""

from fareway.client.aio import AsyncClient
from fareway.client.convert import DEFAULT_TARGET
from fareway.client.errors import (
    Aborted,
    DeadlineExceeded,
    FarewayError,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    ServerBusy,
    TransportLimitExceeded,
    Unauthenticated,
    Unavailable,
    UnexpectedStatus,
    from_rpc_error,
)
from fareway.client.sync import Client
from fareway.client.types import (
    Budget,
    BudgetLimit,
    Candidate,
    CascadeMode,
    Completion,
    Decision,
    Done,
    Escalation,
    Fallback,
    Hedge,
    Image,
    ModelInfo,
    OnExceed,
    Prompt,
    RequestOptions,
    Role,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    Turn,
    Usage,
    Window,
)

__all__ = [
    "DEFAULT_TARGET",
    "Aborted",
    "AsyncClient",
    "Budget",
    "BudgetLimit",
    "Candidate",
    "CascadeMode",
    "Client",
    "Completion",
    "DeadlineExceeded",
    "Decision",
    "Done",
    "Escalation",
    "Fallback",
    "FarewayError",
    "Hedge",
    "Image",
    "InvalidArgument",
    "ModelInfo",
    "OnExceed",
    "PermissionDenied",
    "Prompt",
    "RequestOptions",
    "ResourceExhausted",
    "Role",
    "ServerBusy",
    "StreamEvent",
    "TextDelta",
    "Tool",
    "ToolCall",
    "TransportLimitExceeded",
    "Turn",
    "Unauthenticated",
    "Unavailable",
    "UnexpectedStatus",
    "Usage",
    "Window",
    "from_rpc_error",
]
