"""Where the server listens: a taken port is an error rather than a shared one, gRPC's message
limit sits above fareway's own request limit, the public demo keys are refused on a network,
and an unset key variable is a one-line start-up error."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest

from fareway.config.loader import load_config
from fareway.config.schema import FarewayConfig
from fareway.core.clock import ManualClock
from fareway.core.errors import StartupError
from fareway.server.app import serve, start_server
from fareway.server.auth import KeyRing, guard_demo_keys, is_loopback
from fareway.server.runtime import build_runtime
from fareway.v1 import router_pb2
from tests.e2e.servers import free_port
from tests.server.harness import ENV, TENANT_KEY, HarnessFactory, make_config, metadata

MIB = 1024 * 1024


async def test_a_taken_port_is_a_startup_error_naming_the_address(serve: HarnessFactory) -> None:
    first = await serve()
    runtime = await build_runtime(make_config(), ManualClock(), ENV)
    try:
        with pytest.raises(StartupError) as refused:
            await start_server(runtime, "127.0.0.1", first.running.port)
    finally:
        await runtime.aclose()

    expected = f"cannot listen on 127.0.0.1:{first.running.port}: address already in use"
    assert str(refused.value) == expected


async def test_port_sharing_happens_only_when_asked_for() -> None:
    runtimes = [await build_runtime(make_config(), ManualClock(), ENV) for _ in range(2)]
    first = await start_server(runtimes[0], "127.0.0.1", 0, reuse_port=True)
    try:
        second = await start_server(runtimes[1], "127.0.0.1", first.port, reuse_port=True)
        assert second.port == first.port
        await second.stop(grace_s=0)
    finally:
        await first.stop(grace_s=0)


def _with_limits(config: FarewayConfig, message_bytes: int, request_bytes: int) -> FarewayConfig:
    server = config.server.model_copy(
        update={"max_message_bytes": message_bytes, "max_request_bytes": request_bytes}
    )
    return config.model_copy(update={"server": server})


def _padded_list_models(size: int) -> bytes:
    """A ListModelsRequest carrying `size` bytes of an unknown field, which decoding keeps."""
    padding = b"x" * size
    field_99_bytes = bytes([0x9A, 0x06])  # tag: field 99, length-delimited
    return bytes(router_pb2.ListModelsRequest().SerializeToString()) + (
        field_99_bytes + _varint(len(padding)) + padding
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


async def test_grpc_receive_limit_sits_above_max_request_bytes(serve: HarnessFactory) -> None:
    # max_message_bytes (1 MiB) below max_request_bytes (2 MiB): a 1.5 MiB request is within
    # fareway's limit, so gRPC's own limit must not refuse it first.
    harness = await serve(_with_limits(make_config(), 1 * MIB, 2 * MIB))
    list_models = harness.channel.unary_unary(
        "/fareway.v1.RouterService/ListModels",
        request_serializer=None,
        response_deserializer=router_pb2.ListModelsResponse.FromString,
    )

    reply = await list_models(
        _padded_list_models(3 * MIB // 2), metadata=metadata(TENANT_KEY), timeout=30
    )
    assert [m.id for m in reply.models] == ["fast-1", "balanced-1", "powerful-1"]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await list_models(_padded_list_models(4 * MIB), metadata=metadata(TENANT_KEY), timeout=30)
    assert refused.value.code() in (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INVALID_ARGUMENT,
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("fareway.example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_demo_keys_are_refused_on_a_network_address() -> None:
    keys = KeyRing.from_config(load_config(), {})

    with pytest.raises(StartupError) as refused:
        guard_demo_keys(keys, "0.0.0.0", allow_on_network=False)

    message = str(refused.value)
    assert "\n" not in message
    for needed in (
        "0.0.0.0",
        "fareway-demo-key",
        "fareway-admin-key",
        "FAREWAY_DEMO_KEY",
        "FAREWAY_ADMIN_KEY",
        "--allow-demo-keys-on-network",
    ):
        assert needed in message


def test_demo_keys_are_accepted_on_loopback_or_when_allowed_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = KeyRing.from_config(load_config(), {})
    with caplog.at_level(logging.WARNING, logger="fareway.server.auth"):
        guard_demo_keys(keys, "127.0.0.1", allow_on_network=False)
        guard_demo_keys(keys, "0.0.0.0", allow_on_network=True)
    assert sum("fareway-admin-key" in r.getMessage() for r in caplog.records) == 2


def test_replacing_only_the_tenant_demo_key_still_refuses_the_admin_one() -> None:
    keys = KeyRing.from_config(load_config(), {"FAREWAY_DEMO_KEY": "s3cret"})

    with pytest.raises(StartupError, match="fareway-admin-key") as refused:
        guard_demo_keys(keys, "0.0.0.0", allow_on_network=False)
    assert "fareway-demo-key" not in str(refused.value)


def test_real_keys_serve_a_network() -> None:
    env = {"FAREWAY_DEMO_KEY": "s3cret", "FAREWAY_ADMIN_KEY": "s3cret-admin"}
    keys = KeyRing.from_config(load_config(), env)

    guard_demo_keys(keys, "0.0.0.0", allow_on_network=False)
    assert keys.demo_keys() == []


async def test_serve_refuses_a_network_address_with_the_demo_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default SQLite ledger would go here
    # Bounded: before the refusal existed, serve() ran until a signal.
    with pytest.raises(StartupError, match="--allow-demo-keys-on-network"):
        await asyncio.wait_for(serve(load_config(), {}, "0.0.0.0", free_port()), timeout=30)
    left = await asyncio.to_thread(lambda: list(tmp_path.iterdir()))
    assert not left, "refused before the ledger was opened"


@pytest.mark.parametrize(
    ("drop", "owner"), [("ACME_KEY", "tenant 'acme'"), ("ADMIN_KEY", "admin key")]
)
def test_an_unset_key_variable_is_a_startup_error_naming_it(drop: str, owner: str) -> None:
    env = {k: v for k, v in ENV.items() if k != drop}

    with pytest.raises(StartupError) as refused:
        KeyRing.from_config(make_config(), env)

    assert str(refused.value).startswith(f"{owner}: API key variable ${drop} is not set")
