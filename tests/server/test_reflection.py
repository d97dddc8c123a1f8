"""Server reflection answers under `grpc.reflection.v1` (what newer grpcurl asks first) as well
as `v1alpha`, so tools can list and describe fareway's API without the .proto files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.server.harness import Harness

# The v1 messages are v1alpha's under another package: the same fields, so the same bytes.
Request = reflection_pb2.ServerReflectionRequest
Response = reflection_pb2.ServerReflectionResponse


async def ask(
    channel: grpc.aio.Channel, package: str, *requests: Request
) -> AsyncIterator[Response]:
    info = channel.stream_stream(
        f"/{package}.ServerReflection/ServerReflectionInfo",
        request_serializer=Request.SerializeToString,
        response_deserializer=Response.FromString,
    )
    call = info(iter(requests), timeout=10)
    async for response in call:
        yield response


async def one(channel: grpc.aio.Channel, package: str, request: Request) -> Response:
    responses = [r async for r in ask(channel, package, request)]
    assert len(responses) == 1
    return responses[0]


def files(response: Response) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    found = {}
    for raw in response.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        found[proto.name] = proto
    return found


@pytest.mark.parametrize("package", ["grpc.reflection.v1", "grpc.reflection.v1alpha"])
async def test_reflection_lists_the_fareway_services(harness: Harness, package: str) -> None:
    reply = await one(harness.channel, package, Request(list_services=""))

    names = {s.name for s in reply.list_services_response.service}
    assert {
        "fareway.v1.RouterService",
        "fareway.v1.BudgetService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


async def test_reflection_v1_describes_the_router_service(harness: Harness) -> None:
    reply = await one(
        harness.channel,
        "grpc.reflection.v1",
        Request(file_containing_symbol="fareway.v1.RouterService"),
    )

    [router] = [f for f in files(reply).values() if f.package == "fareway.v1" and f.service]
    methods = {m.name for s in router.service for m in s.method}
    assert {"Generate", "Complete", "Route", "ListModels"} <= methods


async def test_reflection_v1_describes_itself(harness: Harness) -> None:
    reply = await one(
        harness.channel,
        "grpc.reflection.v1",
        Request(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
    )

    [proto] = [f for f in files(reply).values() if f.package == "grpc.reflection.v1"]
    [method] = proto.service[0].method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
