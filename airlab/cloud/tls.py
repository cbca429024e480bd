"""TLS for the emulator: a private CA and two server certificates generated at start-up,
in memory, for HTTPS and MQTT over TLS.

The CA is RSA 2048 (like the platform's GlobalSign chain) and signs an EC P-256 server
certificate and an RSA 2048 one with the same names. Both are loaded into every server
context, so OpenSSL picks by what the client offers: modern clients get ECDHE-ECDSA (or
TLS 1.3) as before, and a client offering only RSA key exchange, like the Air780EP's
``AT+SSLCFG="ciphersuite"`` list (0x0035 AES256-SHA, 0x002F AES128-SHA, 0x003D
AES256-SHA256), gets the RSA certificate. :data:`SERVER_CIPHERS` lists the TLS 1.2
suites; the module's 3DES and RC4 suites (0x000A, 0x0005, 0x0004) are not in this
OpenSSL build at all, at any security level (see docs/cloud.md).

The certificate names every host a module may use: ``localhost``, ``127.0.0.1``,
``::1``, and for each region in :data:`airlab.aliyun.KNOWN_REGIONS`
``iot-auth.<region>.aliyuncs.com``, ``*.iot-as-mqtt.<region>.aliyuncs.com`` and
``*.<region>.aliyuncs.com``, plus ``*.mqtt.iothub.aliyuncs.com``. It is valid from one
day ago for ten years. One certificate is cached per process and per host list
(the two RSA keys take about 50-200 ms, made in parallel; clients that pinned the CA
keep working); ``fresh=True`` makes a new one.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airlab.aliyun import KNOWN_REGIONS

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "DEFAULT_HOSTNAMES",
    "SERVER_CIPHERS",
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


SERVER_CIPHERS = (
    "ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:"
    "AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA:"
    "!aNULL:!eNULL:!aDSS:!AESCCM:!PSK:!SRP:@SECLEVEL=2"
)
"""OpenSSL cipher string of the server contexts (TLS 1.2; TLS 1.3 keeps its defaults).

Python's default server list in the order it has (forward-secret suites first; the
server's order wins, so modern clients negotiate as before) without its ``!SHA1``, then
RSA key exchange with AES for the Air780EP's list: AES256-SHA256 (0x003D),
AES128-SHA256, AES256-SHA (0x0035), AES128-SHA (0x002F). ``@SECLEVEL=2``
(112-bit keys, the default) suits the 2048-bit RSA key."""


@dataclass(frozen=True, slots=True)
class GeneratedCertificate:
    """A CA and server certificates signed by it, all PEM text: EC P-256
    (:attr:`cert_pem`, :attr:`key_pem`) and RSA 2048 (:attr:`rsa_cert_pem`,
    :attr:`rsa_key_pem`; empty in an object made without them)."""

    cert_pem: str
    key_pem: str
    ca_pem: str
    hostnames: tuple[str, ...]
    rsa_cert_pem: str = ""
    rsa_key_pem: str = ""

    @property
    def chain_pem(self) -> str:
        """EC server certificate followed by the CA (what the server presents)."""
        return self.cert_pem + self.ca_pem

    @property
    def rsa_chain_pem(self) -> str:
        """RSA server certificate followed by the CA ("" without an RSA certificate)."""
        return self.rsa_cert_pem + self.ca_pem if self.rsa_cert_pem else ""

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``ca.pem``, ``cert.pem`` (EC chain) and ``key.pem`` (mode 0600), and
        ``rsa-cert.pem`` and ``rsa-key.pem`` (0600) when there is an RSA certificate,
        into ``directory`` (created if needed); returns their paths by name (``ca``,
        ``cert``, ``key``, ``rsa_cert``, ``rsa_key``)."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
        paths["ca"].write_text(self.ca_pem, encoding="ascii")
        paths["cert"].write_text(self.chain_pem, encoding="ascii")
        _write_private(paths["key"], self.key_pem)
        if self.rsa_cert_pem:
            paths["rsa_cert"] = folder / "rsa-cert.pem"
            paths["rsa_key"] = folder / "rsa-key.pem"
            paths["rsa_cert"].write_text(self.rsa_chain_pem, encoding="ascii")
            _write_private(paths["rsa_key"], self.rsa_key_pem)
        return paths


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def _san(name: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _rsa_key() -> RSAPrivateKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_usage(*, sign: bool, encipher: bool, agree: bool, ca: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=agree,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _rsa_keys() -> tuple[RSAPrivateKey, RSAPrivateKey]:
    # RSA key generation releases the GIL: on an idle machine the two cost about one
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="airlab-rsa") as pool:
        ca_job, leaf_job = pool.submit(_rsa_key), pool.submit(_rsa_key)
        return ca_job.result(), leaf_job.result()


def generate_certificate(
    hostnames: Iterable[str] = DEFAULT_HOSTNAMES,
    *,
    now: dt.datetime | None = None,
    rsa_keys: tuple[RSAPrivateKey, RSAPrivateKey] | None = None,
) -> GeneratedCertificate:
    """Make a new CA (RSA 2048) and two server certificates for ``hostnames``, EC P-256
    and RSA 2048, all signed with SHA-256. ``rsa_keys`` (CA key, server key) reuses
    RSA keys instead of generating two (the slow part)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = tuple(dict.fromkeys(hostnames))
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=3652)
    ca_key, rsa_key = rsa_keys or _rsa_keys()
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
            _key_usage(sign=True, encipher=False, agree=False, ca=True),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airlab"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "localhost"),
        ]
    )

    def leaf(
        key: RSAPrivateKey | EllipticCurvePrivateKey, usage: x509.KeyUsage
    ) -> x509.Certificate:
        public = key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = leaf(ec_key, _key_usage(sign=True, encipher=False, agree=True, ca=False))
    # RSA key exchange (AES128-SHA, the module's suites) encrypts to the key: keyEncipherment
    rsa_cert = leaf(rsa_key, _key_usage(sign=True, encipher=True, agree=False, ca=False))
    pem = serialization.Encoding.PEM

    def private(key: RSAPrivateKey | EllipticCurvePrivateKey) -> str:
        return key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")

    return GeneratedCertificate(
        cert_pem=ec_cert.public_bytes(pem).decode("ascii"),
        key_pem=private(ec_key),
        ca_pem=ca_cert.public_bytes(pem).decode("ascii"),
        hostnames=names,
        rsa_cert_pem=rsa_cert.public_bytes(pem).decode("ascii"),
        rsa_key_pem=private(rsa_key),
    )


_cache: dict[tuple[str, ...], GeneratedCertificate] = {}
_cache_keys: list[tuple[RSAPrivateKey, RSAPrivateKey]] = []  # the process's RSA keys
_cache_lock = threading.Lock()


def server_certificate(
    hostnames: Iterable[str] = DEFAULT_HOSTNAMES, *, fresh: bool = False
) -> GeneratedCertificate:
    """The process's certificate for ``hostnames`` (generated once; ``fresh`` replaces it).

    The RSA keys are made once per process and shared by the host lists (another list
    costs a few milliseconds); ``fresh`` makes new keys too."""
    names = tuple(dict.fromkeys(hostnames))
    with _cache_lock:
        if fresh or names not in _cache:
            if fresh or not _cache_keys:
                _cache_keys[:] = [_rsa_keys()]
            _cache[names] = generate_certificate(names, rsa_keys=_cache_keys[0])
        return _cache[names]


def make_server_context(
    hostnames: Iterable[str] = DEFAULT_HOSTNAMES,
    *,
    certificate: GeneratedCertificate | None = None,
    fresh: bool = False,
) -> ssl.SSLContext:
    """A server-side :class:`ssl.SSLContext` presenting the (cached) certificates.

    TLS 1.2 and 1.3 (the Air780EP's TLS stack speaks 1.2); no client certificates. Both
    the EC and the RSA certificate are loaded (OpenSSL presents the one the negotiated
    suite needs) and the TLS 1.2 suites are :data:`SERVER_CIPHERS`.

    Example:
        >>> make_server_context().minimum_version
        <TLSVersion.TLSv1_2: 771>
    """
    cert = certificate or server_certificate(hostnames, fresh=fresh)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(SERVER_CIPHERS)
    with tempfile.TemporaryDirectory(prefix="airlab-tls-") as folder:
        paths = cert.write(folder)
        context.load_cert_chain(paths["cert"], paths["key"])
        if "rsa_cert" in paths:  # a second key type fills OpenSSL's RSA slot
            context.load_cert_chain(paths["rsa_cert"], paths["rsa_key"])
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
    if isinstance(previous, _NameRecorder):
        return context
    context.sni_callback = _NameRecorder(previous)
    return context


class _NameRecorder:
    """The SNI callback of :func:`record_server_names`: remember the name, then call the
    callback that was set before (if any)."""

    __slots__ = ("previous",)

    def __init__(self, previous: Callable[..., int | None] | None) -> None:
        # Callable[...]: typeshed types the callback's arguments as (SSLObject, str,
        # SSLContext) but ssl also passes an SSLSocket, and None when no SNI was sent
        self.previous = previous

    def __call__(
        self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext
    ) -> int | None:
        if name:
            with _names_lock:
                _server_names[sock] = name
        return self.previous(sock, name, ctx) if self.previous is not None else None


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
