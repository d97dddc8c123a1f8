"""fareway.v1.BudgetService: a tenant reads its own budget; the admin reads and sets any."""

from __future__ import annotations

import grpc

from fareway.core.errors import FarewayError, InvalidRequest, PermissionDenied
from fareway.routing.echo import echo
from fareway.routing.strategy import unknown
from fareway.server.auth import Principal, current_principal
from fareway.server.convert import decode_limits, encode_budget
from fareway.server.runtime import Runtime
from fareway.server.status import abort
from fareway.v1 import budget_pb2, budget_pb2_grpc


class BudgetService(budget_pb2_grpc.BudgetServiceServicer):
    """Serves GetBudget and SetBudget from the ledger."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    async def GetBudget(
        self, request: budget_pb2.GetBudgetRequest, context: grpc.aio.ServicerContext
    ) -> budget_pb2.Budget:
        try:
            tenant = self._readable_tenant(current_principal.get(), request.tenant)
            return encode_budget(await self._rt.ledger.state(tenant))
        except FarewayError as error:
            await abort(context, error, self._rt.clock.now())

    async def SetBudget(
        self, request: budget_pb2.SetBudgetRequest, context: grpc.aio.ServicerContext
    ) -> budget_pb2.Budget:
        try:
            if not current_principal.get().is_admin:
                raise PermissionDenied("SetBudget needs an admin key")
            self._check_known(request.tenant)
            limits = decode_limits(request.limits)
            target = request.latency_target_ms if request.HasField("latency_target_ms") else None
            await self._rt.ledger.configure(request.tenant, limits, target)
            return encode_budget(await self._rt.ledger.state(request.tenant))
        except FarewayError as error:
            await abort(context, error, self._rt.clock.now())

    def _readable_tenant(self, caller: Principal, asked: str) -> str:
        if caller.is_admin:
            self._check_known(asked)
            return asked
        if asked and asked != caller.tenant:
            raise PermissionDenied(
                f"a tenant key may read only its own budget ('{echo(caller.tenant)}')"
            )
        return caller.tenant

    def _check_known(self, tenant: str) -> None:
        if not tenant:
            raise InvalidRequest.single("tenant", "required with an admin key")
        if tenant not in self._rt.policies:
            raise InvalidRequest.single(
                "tenant", unknown("tenant", tenant, sorted(self._rt.policies))
            )
