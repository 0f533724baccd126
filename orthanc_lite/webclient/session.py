"""One aiohttp client session per remote web service (an Orthanc peer or a DICOMweb server), configured as
Orthanc's WebServiceParameters + HttpClient: Basic credentials, extra headers, timeout, TLS verification with
HttpsVerifyPeers / HttpsCACertificates, client certificates, HttpProxy."""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Mapping
from urllib.parse import quote, urlencode

import aiohttp

from ..config import Peer, Settings
from ..errors import ErrorCode, OrthancError

logger = logging.getLogger(__name__)


def ssl_context(remote: Peer, settings: Settings) -> ssl.SSLContext | bool:
    """The TLS context for an https:// remote (True: aiohttp's default, for http:// URLs)."""
    if not remote.Url.startswith("https://"):
        return True
    if not settings.HttpsVerifyPeers:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif settings.HttpsCACertificates:
        context = ssl.create_default_context(cafile=settings.HttpsCACertificates)
    else:
        context = ssl.create_default_context()
    if remote.CertificateFile:
        try:
            context.load_cert_chain(remote.CertificateFile, remote.CertificateKeyFile or None,
                                    remote.CertificateKeyPassword or None)
        except (OSError, ssl.SSLError) as exc:
            raise OrthancError(ErrorCode.InexistentFile, f"Cannot load the client certificate: {exc}") from None
    return context


def timeout_of(remote: Peer, settings: Settings) -> aiohttp.ClientTimeout:
    seconds = remote.Timeout or settings.HttpTimeout
    return aiohttp.ClientTimeout(total=seconds or None)


def open_session(remote: Peer, settings: Settings, extra_headers: Mapping[str, str] | None = None
                 ) -> aiohttp.ClientSession:
    """A session whose requests carry the remote's credentials and headers; close it when done."""
    headers = {**remote.HttpHeaders, **(extra_headers or {})}
    if remote.Username:
        token = base64.b64encode(f"{remote.Username}:{remote.Password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    connector = aiohttp.TCPConnector(ssl=ssl_context(remote, settings))
    return aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout_of(remote, settings),
                                 trust_env=False)


def proxy_of(settings: Settings) -> str | None:
    proxy = settings.HttpProxy
    if not proxy:
        return None
    return proxy if "://" in proxy else "http://" + proxy


def join_url(base: str, uri: str, arguments: Mapping[str, str] | None = None) -> str:
    """base (ending in "/") + uri without its leading "/", plus URL-encoded GET arguments (Orthanc's UriEncode)."""
    url = base + uri.lstrip("/")
    if arguments:
        url += ("&" if "?" in url else "?") + urlencode(dict(arguments), quote_via=quote)
    return url


def network_error(remote_name: str, exc: BaseException) -> OrthancError:
    """A transport failure (refused, unreachable, timeout, TLS) as Orthanc reports it."""
    if isinstance(exc, TimeoutError):
        return OrthancError(ErrorCode.NetworkProtocol, f"Timeout while talking to remote server {remote_name}")
    return OrthancError(ErrorCode.NetworkProtocol, f"Cannot reach remote server {remote_name}: {exc}")


async def check_status(response: aiohttp.ClientResponse, remote_name: str) -> None:
    """A non-2xx answer becomes the error Orthanc's HttpClient raises: 404 -> UnknownResource, 401 ->
    Unauthorized, anything else -> NetworkProtocol, with the remote's status and body in the details."""
    if 200 <= response.status < 300:
        return
    body = (await response.read())[:1000].decode("utf-8", "replace").strip()
    code = {404: ErrorCode.UnknownResource, 401: ErrorCode.Unauthorized}.get(response.status, ErrorCode.NetworkProtocol)
    raise OrthancError(code, f"HTTP status {response.status} from remote server {remote_name}: {body}")
