"""What a failed connection to Temporal means, in one line that names the fix.

The SDK reports a failed connect as a `RuntimeError` carrying the transport's (tonic,
rustls, hyper) description: ``InvalidCertificate(UnknownIssuer)``, ``InvalidContentType``,
``stream closed because of a broken pipe``. Each shape below is what one misconfiguration
looks like from the client; the hint says which setting fixes it. A plaintext client
talking to a TLS port, or a client without the certificate an mTLS server requires, only
sees the connection close, so those hints ask rather than assert.
"""

from durable_agents._infra.temporal_settings import TemporalSettings

_NOT_TRUSTED = (
    "the server's certificate is not signed by a CA this client trusts: set "
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH (tls.server_ca_cert_path in a profile) to the CA "
    "certificate that signed it"
)
_WRONG_NAME = (
    "the server's certificate is not valid for this address: set TEMPORAL_TLS_SERVER_NAME "
    "(tls.server_name in a profile) to a name it is issued for"
)
_SERVER_CERT = (
    "the server's certificate was refused (expired, or not for TLS servers?): check it, "
    "and TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_NAME"
)
_NOT_TLS = (
    "the server does not speak TLS (a plaintext server, such as the dev server?): set "
    "TEMPORAL_TLS=false (tls.disabled = true in a profile), or use its TLS address"
)
_BAD_CLIENT_PEM = (
    "the client certificate or key is not PEM this client can read: check "
    "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH"
)
_WANTS_CLIENT_CERT = (
    "the server closed the TLS connection: if it requires client certificates (mTLS), set "
    "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (tls.client_cert_path "
    "and tls.client_key_path in a profile)"
)
_REFUSED_CLIENT_CERT = (
    "the server closed the TLS connection: does it trust the CA that signed "
    "TEMPORAL_TLS_CLIENT_CERT_PATH, and is the certificate still valid?"
)
_MAYBE_TLS = (
    "is the server using TLS? set TEMPORAL_TLS=true (and TEMPORAL_TLS_SERVER_CA_CERT_PATH "
    "unless a public CA signed its certificate), or TEMPORAL_API_KEY for Temporal Cloud"
)
_CREDENTIALS = (
    "the server refused this client's credentials: check TEMPORAL_API_KEY (api_key in a "
    "profile) or the client certificate, and that they may use this namespace"
)
_NOTHING_THERE = (
    "is Temporal running there? Start a dev server with `agentctl dev`, or set "
    "TEMPORAL_ADDRESS (or TEMPORAL_PROFILE, a profile of Temporal's configuration file)"
)
# How a connection the server closed (during or right after the handshake) looks.
_CLOSED = (
    "close_notify",
    "UnexpectedEof",
    "CertificateRequired",
    "HandshakeFailure",
    "BrokenPipe",
    "ConnectionReset",
    "transport error",
    "connection closed",  # hyper, when the close wins the race with the TLS alert
)


def explain_connect_failure(settings: TemporalSettings, error: str) -> str:
    """``cannot reach Temporal at WHERE: HINT [the SDK's error]``."""
    return f"cannot reach Temporal at {settings.describe()}: {_hint(settings, error)} [{error}]"


def _hint(settings: TemporalSettings, error: str) -> str:
    if "Unauthenticated" in error or "PermissionDenied" in error:
        return _CREDENTIALS
    if "ConnectionRefused" in error or "dns error" in error:
        return _NOTHING_THERE
    if not settings.uses_tls:
        return _MAYBE_TLS if any(s in error for s in _CLOSED) else _NOTHING_THERE
    if "UnknownIssuer" in error or "BadSignature" in error:
        return _NOT_TRUSTED
    if "NotValidForName" in error:
        return _WRONG_NAME
    if "InvalidContentType" in error or "CorruptMessage" in error:
        return _NOT_TLS
    if "PrivateKeyParseError" in error or "CertificateParseError" in error:
        return _BAD_CLIENT_PEM
    if "InvalidCertificate" in error:
        return _SERVER_CERT
    if any(s in error for s in _CLOSED):
        return _REFUSED_CLIENT_CERT if settings.uses_client_cert else _WANTS_CLIENT_CERT
    return _NOTHING_THERE
