"""TLS in front of the dev server, which has none: a test CA and a TLS-terminating proxy.

`Pki.make` writes a self-signed CA, a server certificate for 127.0.0.1 (IP SAN) and a
client certificate, all signed by that CA. `TlsProxy` listens on 127.0.0.1 with a real
server-side `ssl.SSLContext` (ALPN ``h2``, as gRPC runs on HTTP/2; with ``require_client_cert``
the handshake fails without a client certificate the CA signed) and forwards the decrypted
bytes to the dev server's plaintext port. It also keeps what clients sent after decryption,
so a test can see the headers a client put on the wire.
"""

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Pki:
    """Paths of the test CA and the certificates it signed (PEM)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: trusting it alone must fail

    @classmethod
    def make(cls, directory: Path) -> "Pki":
        """Write a CA, a server certificate for 127.0.0.1 and a client certificate."""
        directory.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = _ca("durable-agents test CA")
        _, other_ca = _ca("some other CA")
        server_key, server_cert = _leaf(
            ca_key,
            ca_cert,
            "127.0.0.1",
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
        )
        client_key, client_cert = _leaf(
            ca_key, ca_cert, "agent-worker", ExtendedKeyUsageOID.CLIENT_AUTH, None
        )
        pki = cls(
            ca_cert=directory / "ca.pem",
            server_cert=directory / "server.pem",
            server_key=directory / "server.key",
            client_cert=directory / "client.pem",
            client_key=directory / "client.key",
            other_ca_cert=directory / "other-ca.pem",
        )
        _write_cert(pki.ca_cert, ca_cert)
        _write_cert(pki.other_ca_cert, other_ca)
        _write_cert(pki.server_cert, server_cert)
        _write_cert(pki.client_cert, client_cert)
        _write_key(pki.server_key, server_key)
        _write_key(pki.client_key, client_key)
        return pki


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=1)
    )


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return key, _validity(builder).sign(key, hashes.SHA256())


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return key, _validity(builder).sign(ca_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


class TlsProxy:
    """A TLS terminator on 127.0.0.1 forwarding to a plaintext ``upstream`` (host:port).

    Use as ``async with TlsProxy(pki, upstream) as proxy:``; ``proxy.address`` is where
    clients connect. ``received`` holds every decrypted byte clients sent, in order.
    """

    def __init__(self, pki: Pki, upstream: str, *, require_client_cert: bool = False) -> None:
        self.upstream = upstream
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        self.context.set_alpn_protocols(["h2"])
        if require_client_cert:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(pki.ca_cert)
        self.received = bytearray()
        self.handshakes = 0  # connections whose TLS handshake completed
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        """``127.0.0.1:port`` of the TLS side."""
        assert self._server is not None, "the proxy is not started"
        port = self._server.sockets[0].getsockname()[1]
        return f"{HOST}:{port}"

    async def __aenter__(self) -> "TlsProxy":
        self._server = await asyncio.start_server(self._serve, HOST, 0, ssl=self.context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        host, _, port = self.upstream.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer, record=True)),
            asyncio.create_task(self._pipe(up_reader, writer, record=False)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._tasks.discard(pipe)
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await w.wait_closed()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, record: bool
    ) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := await reader.read(65536):
                if record:
                    self.received += data
                writer.write(data)
                await writer.drain()


# HPACK's Huffman code (RFC 7541, appendix B) of the characters `authorization_header`
# can encode: "Bearer " and API keys made of API_KEY_ALPHABET.
_HUFFMAN = {
    " ": (0x14, 6),
    "B": (0x5D, 7),
    "r": (0x2C, 6),
    "0": (0x0, 5),
    "1": (0x1, 5),
    "2": (0x2, 5),
    "a": (0x3, 5),
    "c": (0x4, 5),
    "e": (0x5, 5),
    "i": (0x6, 5),
    "o": (0x7, 5),
    "s": (0x8, 5),
    "t": (0x9, 5),
}
API_KEY_ALPHABET = "012aceiost"
# `authorization` is entry 23 of HPACK's static table; a literal field naming it starts
# with one of these, depending on whether the encoder lets it be indexed.
_AUTHORIZATION_NAME = (b"\x0f\x08", b"\x1f\x08", b"\x57")


def authorization_headers(api_key: str) -> list[bytes]:
    """The bytes an HTTP/2 client writes for ``authorization: Bearer <api_key>``.

    gRPC clients (the SDK's included) send header values Huffman-coded, so the key never
    appears verbatim on the wire; this encodes it the same way to look for it. The value
    is short (under 127 bytes), so its length fits the first byte.
    """
    bits, count = 0, 0
    for char in f"Bearer {api_key}":
        code, length = _HUFFMAN[char]
        bits, count = bits << length | code, count + length
    padding = -count % 8  # padded with the most significant bits of EOS: ones
    value = (bits << padding | (1 << padding) - 1).to_bytes((count + padding) // 8, "big")
    assert len(value) < 127
    return [name + bytes([0x80 | len(value)]) + value for name in _AUTHORIZATION_NAME]
