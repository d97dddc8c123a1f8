"""A thin synchronous client: one channel, the API key as metadata, protobuf in and out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType

import grpc

from fareway.v1 import budget_pb2, budget_pb2_grpc, router_pb2, router_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"


def build_request(
    prompt: str,
    *,
    max_tokens: int = 1024,
    system: str = "",
    strategy: str = "",
    model: str = "",
    tier: str = "",
    step_type: str = "",
    required_capabilities: Sequence[str] = (),
    request_id: str = "",
) -> router_pb2.GenerateRequest:
    """A one-turn GenerateRequest with the given hints."""
    return router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=prompt)],
        system=system,
        max_tokens=max_tokens,
        hints=router_pb2.RoutingHints(
            strategy=strategy,
            model=model,
            tier=tier,
            step_type=step_type,
            required_capabilities=list(required_capabilities),
        ),
        request_id=request_id,
    )


class Client:
    """Calls a fareway server. Use as a context manager, or call `close()`."""

    def __init__(
        self, target: str = DEFAULT_TARGET, api_key: str = "", timeout_s: float | None = None
    ) -> None:
        self._channel = grpc.insecure_channel(target)
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._timeout_s = timeout_s
        self._router = router_pb2_grpc.RouterServiceStub(self._channel)
        self._budgets = budget_pb2_grpc.BudgetServiceStub(self._channel)

    def generate(self, request: router_pb2.GenerateRequest) -> Iterator[router_pb2.GenerateEvent]:
        """Stream the events of one request; breaking out of the loop cancels the call."""
        call = self._router.Generate(request, metadata=self._metadata, timeout=self._timeout_s)
        try:
            yield from call
        finally:
            call.cancel()

    def complete(self, request: router_pb2.GenerateRequest) -> router_pb2.CompleteResponse:
        """The whole answer in one reply."""
        reply: router_pb2.CompleteResponse = self._router.Complete(
            request, metadata=self._metadata, timeout=self._timeout_s
        )
        return reply

    def route(self, request: router_pb2.GenerateRequest) -> router_pb2.RouteDecision:
        """Which model would answer, and why; calls no model and spends nothing."""
        decision: router_pb2.RouteDecision = self._router.Route(
            request, metadata=self._metadata, timeout=self._timeout_s
        )
        return decision

    def list_models(self) -> router_pb2.ListModelsResponse:
        """The catalog this key may use."""
        reply: router_pb2.ListModelsResponse = self._router.ListModels(
            router_pb2.ListModelsRequest(), metadata=self._metadata, timeout=self._timeout_s
        )
        return reply

    def get_budget(self, tenant: str = "") -> budget_pb2.Budget:
        """A tenant's budget (empty: the caller's own)."""
        budget: budget_pb2.Budget = self._budgets.GetBudget(
            budget_pb2.GetBudgetRequest(tenant=tenant),
            metadata=self._metadata,
            timeout=self._timeout_s,
        )
        return budget

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
