"""The blocking client. Conversion lives in `convert`, error translation in `errors`."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import grpc

from fareway.client import convert
from fareway.client.convert import DEFAULT_TARGET
from fareway.client.errors import from_rpc_error
from fareway.client.types import (
    Budget,
    BudgetLimit,
    Completion,
    Decision,
    ModelInfo,
    Prompt,
    RequestOptions,
    StreamEvent,
)
from fareway.v1 import budget_pb2_grpc, router_pb2, router_pb2_grpc

R = TypeVar("R")


class Client:
    """Calls a fareway server and blocks until each answer arrives.

    `api_key` travels as `authorization: Bearer <key>`, followed by `metadata` (lowercase
    keys). `timeout_s` is the default deadline of every call (None: none); each method's
    `timeout_s` overrides it. Pass `credentials` (grpc.ssl_channel_credentials(...)) for TLS.
    Failed calls raise a `FarewayError` subclass. Use as a context manager, or call `close()`.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        api_key: str = "",
        *,
        metadata: Sequence[tuple[str, str]] = (),
        timeout_s: float | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        if credentials is None:
            self._channel = grpc.insecure_channel(target)
        else:
            self._channel = grpc.secure_channel(target, credentials)
        self._closed = False
        self._metadata = convert.call_metadata(api_key, metadata)
        self._timeout_s = timeout_s
        self._router = router_pb2_grpc.RouterServiceStub(self._channel)
        self._budgets = budget_pb2_grpc.BudgetServiceStub(self._channel)

    def generate(
        self, prompt: Prompt, *, timeout_s: float | None = None, **options: Unpack[RequestOptions]
    ) -> Generator[StreamEvent, None, None]:
        """Route `prompt`, then stream the answer: a Decision first, then TextDelta, ToolCall,
        Usage, Escalation, Fallback and Hedge events as they happen, and a Done last.

        The call starts on the first `next()`. Breaking out of the loop, or `close()` on the
        iterator, cancels it."""
        request = convert.generate_request(prompt, **options)
        return self._stream(request, self._deadline(timeout_s))

    def complete(
        self, prompt: Prompt, *, timeout_s: float | None = None, **options: Unpack[RequestOptions]
    ) -> Completion:
        """The same work as `generate`, collected into one reply."""
        reply = self._unary(
            self._router.Complete, convert.generate_request(prompt, **options), timeout_s
        )
        return convert.completion(reply)

    def route(
        self, prompt: Prompt, *, timeout_s: float | None = None, **options: Unpack[RequestOptions]
    ) -> Decision:
        """Which model would answer, and why: a dry run that calls no model and spends nothing."""
        reply = self._unary(
            self._router.Route, convert.generate_request(prompt, **options), timeout_s
        )
        return convert.decision(reply)

    def list_models(self, *, timeout_s: float | None = None) -> list[ModelInfo]:
        """The catalog this key may use, cheapest tier first."""
        reply = self._unary(self._router.ListModels, router_pb2.ListModelsRequest(), timeout_s)
        return convert.models(reply)

    def get_budget(self, tenant: str = "", *, timeout_s: float | None = None) -> Budget:
        """A tenant's budget; empty `tenant` means the caller's own (admins may name any)."""
        reply = self._unary(self._budgets.GetBudget, convert.get_budget_request(tenant), timeout_s)
        return convert.budget(reply)

    def set_budget(
        self,
        tenant: str,
        limits: Sequence[BudgetLimit],
        latency_target_ms: int | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Budget:
        """Admin only: replace `tenant`'s limits (and its latency target, unless None)."""
        request = convert.set_budget_request(tenant, limits, latency_target_ms)
        return convert.budget(self._unary(self._budgets.SetBudget, request, timeout_s))

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled, later ones raise RuntimeError."""
        self._closed = True
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        # A call on a closed grpc channel raises, or with the sync API, crashes the process.
        if self._closed:
            raise RuntimeError("the fareway client is closed")

    def _deadline(self, timeout_s: float | None) -> float | None:
        return self._timeout_s if timeout_s is None else timeout_s

    def _unary(self, method: Callable[..., R], request: Any, timeout_s: float | None) -> R:
        self._check_open()
        try:
            return method(request, metadata=self._metadata, timeout=self._deadline(timeout_s))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def _stream(
        self, request: router_pb2.GenerateRequest, deadline_s: float | None
    ) -> Generator[StreamEvent, None, None]:
        self._check_open()
        call = self._router.Generate(request, metadata=self._metadata, timeout=deadline_s)
        try:
            for message in call:
                event = convert.event(message)
                if event is not None:
                    yield event
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        finally:
            call.cancel()
