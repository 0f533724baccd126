"""The embeddable server: `async with serve(settings) as server:` runs HTTP (and DICOM) until the block ends."""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import AsyncIterator

from aiohttp import web

from . import app as app_module
from .app_keys import CONTEXT, JOBS
from .config import Settings, check_startup_security, load
from .jobs.engine import JobEngine
from .services.context import ServerContext

logger = logging.getLogger(__name__)


@dataclass
class Server:
    app: web.Application
    runner: web.AppRunner
    http_port: int
    host: str
    secure: bool

    @property
    def context(self) -> ServerContext:
        return self.app[CONTEXT]

    @property
    def jobs(self) -> JobEngine:
        return self.app[JOBS]

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"{scheme}://{host}:{self.http_port}"

    @property
    def dicom_port(self) -> int:
        return self.context.dicom_port


@contextlib.asynccontextmanager
async def serve(settings: Settings | None = None, host: str | None = None) -> AsyncIterator[Server]:
    """Start a server with these settings (HttpPort 0 picks a free port) and stop it on exit."""
    if settings is None:
        settings = load(None)
    check_startup_security(settings)  # before anything listens: Orthanc 1.13 refuses these configurations
    application = app_module.build(settings)
    keepalive = float(settings.KeepAliveTimeout) if settings.KeepAlive else 0.0
    runner = web.AppRunner(application, handler_cancellation=False, keepalive_timeout=keepalive or 0.0001,
                           access_log=logging.getLogger("orthanc_lite.http"))
    await runner.setup()
    ssl_context = _ssl_context(settings)
    bind = host if host is not None else ("0.0.0.0" if settings.RemoteAccessAllowed else "0.0.0.0")
    if not settings.HttpServerEnabled:
        port = 0
    else:
        site = web.TCPSite(runner, bind, int(settings.HttpPort), ssl_context=ssl_context, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr,attr-defined]
        port = sockets[0].getsockname()[1] if sockets else int(settings.HttpPort)
    application[CONTEXT].http_port = port
    server = Server(application, runner, port, bind, ssl_context is not None)
    logger.warning("orthanc_lite has started: HTTP on %s", server.url)
    try:
        yield server
    finally:
        await runner.cleanup()
        logger.warning("orthanc_lite has stopped")


_TLS_VERSIONS = {2: ssl.TLSVersion.TLSv1, 3: ssl.TLSVersion.TLSv1_1, 4: ssl.TLSVersion.TLSv1_2,
                 5: ssl.TLSVersion.TLSv1_3}


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """HTTPS as Orthanc's CivetWeb setup: SslCertificate, SslMinimumProtocolVersion, SslCiphersAccepted, and
    client certificates checked against SslTrustedClientCertificates when SslVerifyPeers."""
    if not settings.SslEnabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # Orthanc's SslCertificate is one PEM file holding the certificate and its private key.
    context.load_cert_chain(settings.SslCertificate)
    # SSL2/SSL3 (0, 1) are not offered by Python's ssl at all: the oldest it allows is TLS 1.0.
    context.minimum_version = _TLS_VERSIONS.get(int(settings.SslMinimumProtocolVersion), ssl.TLSVersion.TLSv1)
    if settings.SslCiphersAccepted:
        context.set_ciphers(":".join(settings.SslCiphersAccepted))
    if settings.SslVerifyPeers:
        context.load_verify_locations(settings.SslTrustedClientCertificates)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
