"""TLS and mutual TLS for the gRPC port, from `server.tls`.

The PEM files are read and checked (the key matches the certificate, the CA file holds
certificates) before the server listens, so a bad file is a one-line StartupError naming its
path rather than a failed handshake later. The credentials are gRPC's dynamic ones: a SIGHUP
reload reads the files again and new connections get the new certificate (rotation without a
restart), while established connections keep theirs.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from fareway.config.schema import TlsSettings
from fareway.core.errors import StartupError


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes the server presents and, for mutual TLS, the CA its callers must chain to."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None

    def certificate_configuration(self) -> grpc.ServerCertificateConfiguration:
        """As gRPC takes it."""
        return grpc.ssl_server_certificate_configuration(
            [(self.private_key, self.cert_chain)], root_certificates=self.client_ca
        )


def read_tls(settings: TlsSettings) -> TlsMaterial:
    """Read and check the files `settings` names; StartupError names the one at fault. Blocking
    file I/O: call it before serving or through `asyncio.to_thread`."""
    material = TlsMaterial(
        cert_chain=_read(settings.cert_file, "cert_file"),
        private_key=_read(settings.key_file, "key_file"),
        client_ca=(
            _read(settings.client_ca_file, "client_ca_file") if settings.client_ca_file else None
        ),
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    except (ssl.SSLError, ValueError) as error:
        raise StartupError(
            f"server.tls: {settings.cert_file} and {settings.key_file} are not a PEM "
            f"certificate chain and its private key: {_reason(error)}"
        ) from error
    if material.client_ca is not None:
        try:
            context.load_verify_locations(cadata=material.client_ca.decode("ascii"))
        except (ssl.SSLError, ValueError) as error:
            raise StartupError(
                f"server.tls.client_ca_file: {settings.client_ca_file} holds no PEM CA "
                f"certificate: {_reason(error)}"
            ) from error
    return material


class ServerTls:
    """The server's TLS credentials, whose certificate a reload can replace.

    gRPC asks `_fetch` for a new configuration on each handshake, from its own threads; it
    gets one only after `rotate` (None means "keep the current one"), hence the lock."""

    def __init__(self, material: TlsMaterial) -> None:
        self.mutual = material.client_ca is not None
        self._lock = threading.Lock()
        self._pending: grpc.ServerCertificateConfiguration | None = None
        self.credentials = grpc.dynamic_ssl_server_credentials(
            material.certificate_configuration(),
            self._fetch,
            require_client_authentication=self.mutual,
        )

    def rotate(self, material: TlsMaterial) -> None:
        """Present `material` on new connections from now on."""
        configuration = material.certificate_configuration()
        with self._lock:
            self._pending = configuration

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            pending, self._pending = self._pending, None
        return pending


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise StartupError(f"server.tls.{field}: cannot read {path}: {error.strerror}") from error


def _reason(error: Exception) -> str:
    text = str(getattr(error, "reason", None) or error)
    return text.splitlines()[0] if text else type(error).__name__
