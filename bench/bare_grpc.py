"""A bare grpc.aio server answering one method of fareway's RouterService and nothing else:
no interceptor, no routing, no ledger. The benchmarks' floor: bench/route.py's empty Route
servicer and bench/overhead.py's relay are each one handler served here."""

from __future__ import annotations

import grpc


async def serve_bare(port: int, method: str, handler: grpc.RpcMethodHandler) -> None:
    """Serve `handler` as RouterService's `method` on 127.0.0.1:`port` until terminated."""
    service = grpc.method_handlers_generic_handler("fareway.v1.RouterService", {method: handler})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((service,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()
