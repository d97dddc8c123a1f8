"""The asyncio client: `Client`'s methods as coroutines and async iterators, over grpc.aio."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
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


class AsyncClient:
    """Calls a fareway server from asyncio code. Arguments as for `Client`.

    Use as an async context manager, or `await client.aclose()`.
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
            self._channel = grpc.aio.insecure_channel(target)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials)
        self._closed = False
        self._metadata = convert.call_metadata(api_key, metadata)
        self._timeout_s = timeout_s
        self._router = router_pb2_grpc.RouterServiceStub(self._channel)
        self._budgets = budget_pb2_grpc.BudgetServiceStub(self._channel)

    def generate(
        self, prompt: Prompt, *, timeout_s: float | None = None, **options: Unpack[RequestOptions]
    ) -> AsyncGenerator[StreamEvent, None]:
        """Route `prompt`, then stream the answer: a Decision first, then TextDelta, ToolCall,
        Usage, Escalation, Fallback and Hedge events as they happen, and a Done last.

        The call starts on the first `__anext__`. `aclose()` on the iterator cancels it, as
        does breaking out of the loop (once the iterator is collected; use
        `contextlib.aclosing` to cancel at once)."""
        request = convert.generate_request(prompt, **options)
        return self._stream(request, self._deadline(timeout_s))

    async def complete(
        self, prompt: Prompt, *, timeout_s: float | None = None, **options: Unpack[RequestOptions]
    ) -> Completion:
        """The same work as `generate`, collected into one reply."""
        reply = await self._unary(
            self._router.Complete, convert.generate_request(prompt, **options), timeout_s
        )
        return convert.completion(reply)

    async def route(
        self, prompt: Prompt, *, timeout_s: float | None = None, **options: Unpack[RequestOptions]
    ) -> Decision:
        """Which model would answer, and why: a dry run that calls no model and spends nothing."""
        reply = await self._unary(
            self._router.Route, convert.generate_request(prompt, **options), timeout_s
        )
        return convert.decision(reply)

    async def list_models(self, *, timeout_s: float | None = None) -> list[ModelInfo]:
        """The catalog this key may use, cheapest tier first."""
        reply = await self._unary(
            self._router.ListModels, router_pb2.ListModelsRequest(), timeout_s
        )
        return convert.models(reply)

    async def get_budget(self, tenant: str = "", *, timeout_s: float | None = None) -> Budget:
        """A tenant's budget; empty `tenant` means the caller's own (admins may name any)."""
        reply = await self._unary(
            self._budgets.GetBudget, convert.get_budget_request(tenant), timeout_s
        )
        return convert.budget(reply)

    async def set_budget(
        self,
        tenant: str,
        limits: Sequence[BudgetLimit],
        latency_target_ms: int | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Budget:
        """Admin only: replace `tenant`'s limits (and its latency target, unless None)."""
        request = convert.set_budget_request(tenant, limits, latency_target_ms)
        return convert.budget(await self._unary(self._budgets.SetBudget, request, timeout_s))

    async def aclose(self) -> None:
        """Close the channel; calls in flight are cancelled, later ones raise RuntimeError."""
        self._closed = True
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        # A call on a closed grpc channel raises, or with the sync API, crashes the process.
        if self._closed:
            raise RuntimeError("the fareway client is closed")

    def _deadline(self, timeout_s: float | None) -> float | None:
        return self._timeout_s if timeout_s is None else timeout_s

    async def _unary(
        self, method: Callable[..., Awaitable[R]], request: Any, timeout_s: float | None
    ) -> R:
        self._check_open()
        try:
            return await method(request, metadata=self._metadata, timeout=self._deadline(timeout_s))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    async def _stream(
        self, request: router_pb2.GenerateRequest, deadline_s: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        self._check_open()
        call = self._router.Generate(request, metadata=self._metadata, timeout=deadline_s)
        try:
            async for message in call:
                event = convert.event(message)
                if event is not None:
                    yield event
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        finally:
            call.cancel()
