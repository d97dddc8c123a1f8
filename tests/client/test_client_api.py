"""The public surface of `fareway.client`: what `__all__` exports is the contract."""

from __future__ import annotations

import fareway.client


def test_all_lists_the_public_names() -> None:
    assert fareway.client.__all__ == [
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


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in fareway.client.__all__:
        value = getattr(fareway.client, name)
        if isinstance(value, type) or callable(value):
            assert getattr(value, "__doc__", None), f"{name} has a docstring"


def test_every_error_is_a_fareway_error() -> None:
    errors = [
        getattr(fareway.client, name)
        for name in fareway.client.__all__
        if isinstance(getattr(fareway.client, name), type)
        and issubclass(getattr(fareway.client, name), Exception)
    ]
    assert len(errors) == 11
    assert all(issubclass(error, fareway.client.FarewayError) for error in errors)
