"""TLS for the emulator: a private CA and a server certificate generated at start-up,
in memory (EC P-256), for HTTPS and MQTT over TLS.

The certificate names every host a module may use: ``localhost``, ``127.0.0.1``,
``::1``, and for each region in :data:`airlab.aliyun.KNOWN_REGIONS`
``iot-auth.<region>.aliyuncs.com``, ``*.iot-as-mqtt.<region>.aliyuncs.com`` and
``*.<region>.aliyuncs.com``, plus ``*.mqtt.iothub.aliyuncs.com``. It is valid from one
day ago for ten years. One certificate is cached per process and per host list
(generation takes a few milliseconds, but clients that pinned the CA keep working);
``fresh=True`` makes a new one.

Clients that verify (Python, a module given the CA with ``AT+SSLCFG``) trust
:attr:`GeneratedCertificate.ca_pem`; :func:`make_client_context` builds such a context.

Example:
    >>> cert = server_certificate()
    >>> "iot-auth.cn-shanghai.aliyuncs.com" in cert.hostnames
    True
    >>> cert.ca_pem.startswith("-----BEGIN CERTIFICATE-----")
    True
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from airlab.aliyun import KNOWN_REGIONS

__all__ = [
    "DEFAULT_HOSTNAMES",
    "GeneratedCertificate",
    "generate_certificate",
    "make_client_context",
    "make_server_context",
    "record_server_names",
    "server_certificate",
    "server_name_of",
]


def _default_hostnames() -> tuple[str, ...]:
    names = ["localhost", "127.0.0.1", "::1"]
    for region in KNOWN_REGIONS:
        names += [
            f"iot-auth.{region}.aliyuncs.com",
            f"*.iot-as-mqtt.{region}.aliyuncs.com",
            f"*.{region}.aliyuncs.com",
        ]
    names.append("*.mqtt.iothub.aliyuncs.com")
    return tuple(names)


DEFAULT_HOSTNAMES: tuple[str, ...] = _default_hostnames()
"""Subject alternative names of the generated server certificate."""


@dataclass(frozen=True, slots=True)
class GeneratedCertificate:
    """A CA and a server certificate signed by it, all PEM text."""

    cert_pem: str
    key_pem: str
    ca_pem: str
    hostnames: tuple[str, ...]

    @property
    def chain_pem(self) -> str:
        """Server certificate followed by the CA (what the server presents)."""
        return self.cert_pem + self.ca_pem

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``ca.pem``, ``cert.pem`` (chain) and ``key.pem`` (mode 0600) into
        ``directory`` (created if needed); returns their paths by name."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
        paths["ca"].write_text(self.ca_pem, encoding="ascii")
        paths["cert"].write_text(self.chain_pem, encoding="ascii")
        fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(self.key_pem)
        return paths


def _san(name: str) -> object:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def generate_certificate(
    hostnames: Iterable[str] = DEFAULT_HOSTNAMES, *, now: dt.datetime | None = None
) -> GeneratedCertificate:
    """Make a new CA and server certificate for ``hostnames`` (EC P-256, SHA-256)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = tuple(dict.fromkeys(hostnames))
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=3652)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airlab"),
            x509.NameAttribute(NameOID.COMMON_NAME, "airlab cloud emulator CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airlab"),
                    x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "localhost"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return GeneratedCertificate(
        cert_pem=cert.public_bytes(pem).decode("ascii"),
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii"),
        ca_pem=ca_cert.public_bytes(pem).decode("ascii"),
        hostnames=names,
    )


_cache: dict[tuple[str, ...], GeneratedCertificate] = {}
_cache_lock = threading.Lock()


def server_certificate(
    hostnames: Iterable[str] = DEFAULT_HOSTNAMES, *, fresh: bool = False
) -> GeneratedCertificate:
    """The process's certificate for ``hostnames`` (generated once; ``fresh`` replaces it)."""
    names = tuple(dict.fromkeys(hostnames))
    with _cache_lock:
        if fresh or names not in _cache:
            _cache[names] = generate_certificate(names)
        return _cache[names]


def make_server_context(
    hostnames: Iterable[str] = DEFAULT_HOSTNAMES,
    *,
    certificate: GeneratedCertificate | None = None,
    fresh: bool = False,
) -> ssl.SSLContext:
    """A server-side :class:`ssl.SSLContext` presenting the (cached) certificate.

    TLS 1.2 and 1.3 (the Air780EP's TLS stack speaks 1.2); no client certificates.

    Example:
        >>> make_server_context().minimum_version
        <TLSVersion.TLSv1_2: 771>
    """
    cert = certificate or server_certificate(hostnames, fresh=fresh)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="airlab-tls-") as folder:
        paths = cert.write(folder)
        context.load_cert_chain(paths["cert"], paths["key"])
    return context


def make_client_context(certificate: GeneratedCertificate | None = None) -> ssl.SSLContext:
    """A client context that trusts the emulator's CA (hostname checking on).

    Example:
        >>> make_client_context().check_hostname
        True
    """
    cert = certificate or server_certificate()
    return ssl.create_default_context(cadata=cert.ca_pem)


# -- the server name (SNI) a client asked for --------------------------------------------

_SniCallback = Callable[[ssl.SSLObject | ssl.SSLSocket, str | None, ssl.SSLContext], int | None]
_server_names: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
_names_lock = threading.Lock()


def record_server_names(context: ssl.SSLContext) -> ssl.SSLContext:
    """Make ``context`` remember the server name (SNI) each TLS client sends, for
    :func:`server_name_of`. Idempotent; a callback already set is still called.

    The MQTT broker reads the name to see which host the module dialled: over TLS the
    name is the only trace of the host of ``AT+SSLMIPSTART`` that reaches a server.

    Example:
        >>> ctx = record_server_names(make_server_context())
        >>> record_server_names(ctx) is ctx
        True
    """
    previous = context.sni_callback
    if getattr(previous, "_airlab_records_names", False):
        return context

    def remember(
        sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext
    ) -> int | None:
        if name:
            with _names_lock:
                _server_names[sock] = name
        return previous(sock, name, ctx) if previous is not None else None

    remember._airlab_records_names = True  # type: ignore[attr-defined]
    context.sni_callback = remember
    return context


def server_name_of(ssl_object: object) -> str | None:
    """The server name the TLS client of ``ssl_object`` (an ``ssl.SSLObject`` or
    ``ssl.SSLSocket`` of a context given to :func:`record_server_names`) sent, or None
    (no SNI: plain TCP, a client that dialled an IP address, or an unknown context).

    Example:
        >>> server_name_of(None) is None
        True
    """
    if ssl_object is None:
        return None
    with _names_lock:
        try:
            return _server_names.get(ssl_object)
        except TypeError:  # not weak-referenceable: not one of ours
            return None
