"""Reading google.rpc rich error details off a failed call, as a client in any language would."""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2

M = TypeVar("M", bound=Message)


def detail(error: grpc.aio.AioRpcError, kind: type[M]) -> M | None:
    """The first detail of this type in the call's `grpc-status-details-bin` trailer."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for packed in status.details:
                if packed.Is(kind.DESCRIPTOR):
                    message = kind()
                    packed.Unpack(message)
                    return message
    return None
