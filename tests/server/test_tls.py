"""TLS and mutual TLS on the served port, over real TLS channels with certificates made here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fareway.cli.main import main
from fareway.client import AsyncClient, Unavailable
from fareway.config.loader import parse_config
from fareway.config.schema import FarewayConfig, TlsSettings
from fareway.core.clock import ManualClock
from fareway.core.errors import StartupError
from fareway.server.app import RunningServer, start_server
from fareway.server.reload import Reloader
from fareway.server.runtime import build_runtime
from tests.server.harness import CONFIG_TEMPLATE, ENV, TENANT_KEY, make_config


@dataclass(frozen=True)
class Pki:
    """A CA, the server's certificate files it signed, and a client certificate."""

    ca: trustme.CA
    cert_file: Path
    key_file: Path
    ca_file: Path
    client: trustme.LeafCert

    def channel_credentials(self, with_client_cert: bool = False) -> grpc.ChannelCredentials:
        """Trust the CA; present the client certificate when asked."""
        if not with_client_cert:
            return grpc.ssl_channel_credentials(self.ca.cert_pem.bytes())
        return grpc.ssl_channel_credentials(
            self.ca.cert_pem.bytes(),
            self.client.private_key_pem.bytes(),
            b"".join(pem.bytes() for pem in self.client.cert_chain_pems),
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert_file.write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    key_file.write_bytes(server.private_key_pem.bytes())
    ca_file.write_bytes(ca.cert_pem.bytes())
    return Pki(ca, cert_file, key_file, ca_file, ca.issue_cert("client@example.com"))


def with_tls(tls: TlsSettings) -> FarewayConfig:
    config = make_config()
    return config.model_copy(update={"server": config.server.model_copy(update={"tls": tls})})


Start = Callable[[FarewayConfig], Awaitable[RunningServer]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start servers on free ports; all stop at the end."""
    started: list[RunningServer] = []

    async def run(config: FarewayConfig) -> RunningServer:
        runtime = await build_runtime(config, ManualClock(), ENV)
        try:
            running = await start_server(runtime, "127.0.0.1", 0)
        except BaseException:
            await runtime.aclose()
            raise
        started.append(running)
        return running

    yield run
    for running in started:
        await running.stop(grace_s=0)


async def list_models(target: str, credentials: grpc.ChannelCredentials | None) -> list[str]:
    async with AsyncClient(
        target, api_key=TENANT_KEY, timeout_s=10, credentials=credentials
    ) as client:
        return [m.id for m in await client.list_models()]


async def health_check(target: str, credentials: grpc.ChannelCredentials | None) -> int:
    channel = (
        grpc.aio.insecure_channel(target)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials)
    )
    async with channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        status: int = reply.status
        return status


async def test_tls_serves_callers_that_trust_its_ca(pki: Pki, start: Start) -> None:
    running = await start(
        with_tls(TlsSettings(cert_file=str(pki.cert_file), key_file=str(pki.key_file)))
    )
    target = f"127.0.0.1:{running.port}"

    assert await list_models(target, pki.channel_credentials()) == [
        "fast-1",
        "balanced-1",
        "powerful-1",
    ]
    serving = health_pb2.HealthCheckResponse.SERVING
    assert await health_check(target, pki.channel_credentials()) == serving


async def test_a_plaintext_caller_of_a_tls_server_is_refused(pki: Pki, start: Start) -> None:
    running = await start(
        with_tls(TlsSettings(cert_file=str(pki.cert_file), key_file=str(pki.key_file)))
    )

    with pytest.raises(Unavailable):
        await list_models(f"127.0.0.1:{running.port}", None)


async def test_mutual_tls_needs_a_client_certificate_the_ca_signed(pki: Pki, start: Start) -> None:
    tls = TlsSettings(
        cert_file=str(pki.cert_file), key_file=str(pki.key_file), client_ca_file=str(pki.ca_file)
    )
    running = await start(with_tls(tls))
    target = f"127.0.0.1:{running.port}"

    assert "fast-1" in await list_models(target, pki.channel_credentials(with_client_cert=True))
    with pytest.raises(Unavailable):
        await list_models(target, pki.channel_credentials(with_client_cert=False))

    stranger = trustme.CA().issue_cert("stranger@example.com")
    foreign = grpc.ssl_channel_credentials(
        pki.ca.cert_pem.bytes(),
        stranger.private_key_pem.bytes(),
        b"".join(pem.bytes() for pem in stranger.cert_chain_pems),
    )
    with pytest.raises(Unavailable):
        await list_models(target, foreign)


@pytest.mark.parametrize("field", ["cert_file", "key_file", "client_ca_file"])
async def test_an_unreadable_tls_file_is_a_startup_error_naming_it(
    pki: Pki, start: Start, tmp_path: Path, field: str
) -> None:
    files = {
        "cert_file": str(pki.cert_file),
        "key_file": str(pki.key_file),
        "client_ca_file": str(pki.ca_file),
    }
    missing = str(tmp_path / "missing.pem")
    files[field] = missing

    with pytest.raises(StartupError) as refused:
        await start(with_tls(TlsSettings(**files)))

    assert str(refused.value).startswith(f"server.tls.{field}: cannot read {missing}")


async def test_a_key_that_does_not_match_the_certificate_is_a_startup_error(
    pki: Pki, start: Start, tmp_path: Path
) -> None:
    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(pki.client.private_key_pem.bytes())

    with pytest.raises(StartupError, match="not a PEM certificate chain and its private key"):
        await start(with_tls(TlsSettings(cert_file=str(pki.cert_file), key_file=str(other_key))))


def tls_config_text(pki: Pki) -> str:
    """The harness configuration as a file would hold it, serving TLS from `pki`'s files."""
    text = CONFIG_TEMPLATE.format(
        provider="sim",
        base_url="http://127.0.0.1:9",
        day_cap_usd=100,
        fast_context_window=200_000,
        requests_per_minute=10_000,
    )
    plain = "server: {max_attempts: 3, grace_s: 1}"
    assert plain in text
    tls = f"tls: {{cert_file: '{pki.cert_file}', key_file: '{pki.key_file}'}}"
    return text.replace(plain, f"server: {{max_attempts: 3, grace_s: 1, {tls}}}")


async def test_a_reload_rotates_the_certificate_for_new_connections(
    pki: Pki, start: Start, tmp_path: Path
) -> None:
    path = tmp_path / "fareway.yaml"
    path.write_text(tls_config_text(pki))
    running = await start(parse_config(path.read_text()))
    target = f"127.0.0.1:{running.port}"
    reloader = Reloader(running.serving, str(path), ENV, "127.0.0.1", running.tls)

    new_ca = trustme.CA()
    renewed = new_ca.issue_cert("127.0.0.1", "localhost")
    pki.cert_file.write_bytes(b"".join(pem.bytes() for pem in renewed.cert_chain_pems))
    pki.key_file.write_bytes(renewed.private_key_pem.bytes())
    assert await reloader.reload()

    trusting_new = grpc.ssl_channel_credentials(new_ca.cert_pem.bytes())
    assert "fast-1" in await list_models(target, trusting_new)
    with pytest.raises(Unavailable):
        await list_models(target, pki.channel_credentials())


async def test_a_reload_with_a_broken_certificate_keeps_the_old_one(
    pki: Pki, start: Start, tmp_path: Path
) -> None:
    path = tmp_path / "fareway.yaml"
    path.write_text(tls_config_text(pki))
    running = await start(parse_config(path.read_text()))
    reloader = Reloader(running.serving, str(path), ENV, "127.0.0.1", running.tls)

    pki.cert_file.write_bytes(b"not a certificate")
    assert not await reloader.reload()

    assert "fast-1" in await list_models(f"127.0.0.1:{running.port}", pki.channel_credentials())


async def test_the_cli_talks_tls_and_mutual_tls(
    pki: Pki, start: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = TlsSettings(
        cert_file=str(pki.cert_file), key_file=str(pki.key_file), client_ca_file=str(pki.ca_file)
    )
    running = await start(with_tls(tls))
    client_cert, client_key = tmp_path / "client.pem", tmp_path / "client-key.pem"
    client_cert.write_bytes(b"".join(pem.bytes() for pem in pki.client.cert_chain_pems))
    client_key.write_bytes(pki.client.private_key_pem.bytes())
    target = ["--target", f"127.0.0.1:{running.port}", "--ca-file", str(pki.ca_file)]
    client_certificate = ["--cert-file", str(client_cert), "--key-file", str(client_key)]

    # The CLI's client is blocking: run it off the loop that serves it.
    assert await asyncio.to_thread(main, ["health", *target, *client_certificate]) == 0
    assert "SERVING" in capsys.readouterr().out
    models = ["models", *target, *client_certificate, "--api-key", TENANT_KEY]
    assert await asyncio.to_thread(main, models) == 0
    assert "fast-1" in capsys.readouterr().out

    assert await asyncio.to_thread(main, ["health", *target]) == 1, "no client certificate"
    assert "UNAVAILABLE" in capsys.readouterr().err
    half = ["health", *target, "--cert-file", str(client_cert)]
    assert await asyncio.to_thread(main, half) == 2
    assert "--key-file" in capsys.readouterr().err
