"""Server-side checks the cloud emulator makes, each with an explanation a notebook can
show (which rule, the sign content rebuilt, the algorithm, what differs, the
secret masked). Wire input never raises: a bad value gives a failed check saying why.

Example:
    >>> check = check_mqtt_connect("868488076506128|securemode=3,signmethod=hmacmd5|",
    ...     "868488076506128&k1hipglLdjU", "0F655B12ADF519B9A7A2B0A990F398B6",
    ...     "fef32adf6dad46c2c7cbf335d3a7b021")
    >>> check.ok, check.sign_content
    (True, 'clientId868488076506128deviceName868488076506128productKeyk1hipglLdjU')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from airlab.aliyun.clientid import ParsedClientId, parse_client_id
from airlab.aliyun.identity import is_hex
from airlab.aliyun.methods import SignMethod, hmac_hex, wire_sign_method
from airlab.aliyun.signing import form_sign_content, signatures_equal

__all__ = [
    "DEVICENAME_FORM_UNSIGNED",
    "REGISTER_FORM_UNSIGNED",
    "ParsedUsername",
    "SignatureCheck",
    "check_devicename_form",
    "check_mqtt_connect",
    "check_mqtt_register_connect",
    "check_register_form",
    "connect_sign_content",
    "mask_secret",
    "parse_username",
    "signature_prefix",
]

DEVICENAME_FORM_UNSIGNED = frozenset({"version", "sign", "resources", "signmethod"})
"""``/auth/devicename`` parameters left out of the sign content."""
REGISTER_FORM_UNSIGNED = frozenset({"sign", "signMethod"})
"""``/auth/register/device`` parameters left out of the sign content."""


def mask_secret(secret: str) -> str:
    """Show only the first and last two characters of a secret.

    Example:
        >>> mask_secret("fef32adf6dad46c2c7cbf335d3a7b021")
        'fe****************************21'
    """
    if len(secret) <= 4:
        return "*" * len(secret)
    return secret[:2] + "*" * (len(secret) - 4) + secret[-2:]


SHOWN_PREFIX = 4
"""Characters of a signature an explanation may show: enough to compare by eye, far
too few to log in with."""


def signature_prefix(value: str) -> str:
    """The first :data:`SHOWN_PREFIX` characters of a signature and its length, never
    the whole value (a valid signature is a password: no timestamp window limits it).

    Example:
        >>> signature_prefix("0f655b12adf519b9a7a2b0a990f398b6")
        '0f65… (32 characters)'
        >>> signature_prefix("")
        '(empty)'
    """
    if not value:
        return "(empty)"
    return f"{value[:SHOWN_PREFIX]}… ({len(value)} characters)"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Outcome of one signature check; truthy when it passed.

    ``rule`` names what was checked (``"mqtt-connect"``, ``"auth-devicename"`` ...);
    ``reason`` is None on success, else why it failed; ``hint`` says what differs
    (the algorithm, a field of the sign content) when that could be found out.
    ``expected`` is the lowercase hex we computed (empty when we could not compute
    one): it is a valid password, so it is kept out of ``repr`` and :meth:`explain`,
    which show only :func:`signature_prefix` of it.
    """

    rule: str
    ok: bool
    sign_content: str
    sign_method: SignMethod | None
    expected: str = field(repr=False)
    received: str = field(repr=False)
    secret_masked: str
    reason: str | None = None
    hint: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def explain(self) -> str:
        """A few lines for people: the rule, content, algorithm, what differs, and the
        first characters of both signatures (never a whole one).

        Example:
            >>> print(SignatureCheck("mqtt-connect", False, "c", SignMethod.HMACMD5, "ab12cd",
            ...     "cd34ef", "s*", "signature mismatch", "the algorithm").explain())
            mqtt-connect: REFUSED (signature mismatch)
              sign content: 'c'
              algorithm:    hmacmd5 with key s*
              differs:      the algorithm
              expected:     ab12… (6 characters)
              received:     cd34… (6 characters)
        """
        verdict = "OK" if self.ok else f"REFUSED ({self.reason})"
        method = self.sign_method.value if self.sign_method else "?"
        lines = [
            f"{self.rule}: {verdict}",
            f"  sign content: {self.sign_content!r}",
            f"  algorithm:    {method} with key {self.secret_masked}",
        ]
        if self.hint:
            lines.append(f"  differs:      {self.hint}")
        lines += [
            f"  expected:     {signature_prefix(self.expected)}",
            f"  received:     {signature_prefix(self.received)}",
        ]
        return "\n".join(lines)


_HEX_DIGITS = {SignMethod.HMACMD5: 32, SignMethod.HMACSHA1: 40, SignMethod.HMACSHA256: 64}


def _difference(
    secret: str,
    content: str,
    method: SignMethod,
    received: str,
    variants: Sequence[tuple[str, str]],
) -> str:
    """Say what differs between ``received`` and HMAC(secret, content), without the
    expected value: the format, the algorithm, or one field of the sign content."""
    text = received.strip()
    if not text:
        return "the signature is empty"
    if text != received:
        return "the signature has spaces or line breaks around it"
    if not is_hex(text):
        return "the signature is not hexadecimal: send the HMAC as hex digits"
    others = [m for m in SignMethod if m is not method]
    for other in others:
        if signatures_equal(hmac_hex(secret, content, other), text):
            return (
                f"the algorithm: the signature is {other.value} of the right content, "
                f"but {method.value} was asked for (signmethod)"
            )
    if len(text) != _HEX_DIGITS[method]:
        guess = [m.value for m in SignMethod if _HEX_DIGITS[m] == len(text)]
        also = f" ({guess[0]} gives {len(text)})" if guess else ""
        return (
            f"the length: {method.value} gives {_HEX_DIGITS[method]} hex digits, the "
            f"signature has {len(text)}{also}"
        )
    for label, variant in variants:
        for candidate in (method, *others):
            if signatures_equal(hmac_hex(secret, variant, candidate), text):
                return label
    return (
        "the value: the signature is not the HMAC of this sign content with this secret; "
        "check the secret and each field of the sign content"
    )


def _check(
    rule: str,
    secret: str,
    content: str,
    method_text: str | None,
    received: str,
    reason: str | None = None,
    variants: Sequence[tuple[str, str]] = (),
) -> SignatureCheck:
    method = wire_sign_method(method_text)
    received = received if isinstance(received, str) else repr(received)
    masked = mask_secret(secret) if isinstance(secret, str) else "?"
    if reason is None and method is None:
        reason = f"unknown sign method {method_text!r}"
    if reason is None and (not isinstance(secret, str) or not secret):
        reason = "no secret to check against"
    expected = ""
    if method is not None and isinstance(secret, str) and secret:
        expected = hmac_hex(secret, content, method)
    hint = None
    if reason is None and not signatures_equal(expected, received):
        reason = "signature mismatch"
        assert method is not None
        hint = _difference(secret, content, method, received, variants)
    return SignatureCheck(
        rule=rule,
        ok=reason is None,
        sign_content=content,
        sign_method=method,
        expected=expected,
        received=received,
        secret_masked=masked,
        reason=reason,
        hint=hint,
    )


@dataclass(frozen=True, slots=True)
class ParsedUsername:
    """An MQTT username ``<deviceName>&<productKey>`` split at the first ``&``."""

    raw: str
    device_name: str
    product_key: str
    reason: str | None = None

    @property
    def valid(self) -> bool:
        """True when both parts are present."""
        return self.reason is None


def parse_username(username: str) -> ParsedUsername:
    """Split ``dn&pk``; never raises.

    Example:
        >>> parse_username("XP001&a1Ze3BcsQ5x").product_key
        'a1Ze3BcsQ5x'
        >>> parse_username("nodelimiter").reason
        "username must be '<deviceName>&<productKey>'"
    """
    text = username if isinstance(username, str) else ""
    device_name, amp, product_key = text.partition("&")
    reason = None
    if not amp or not device_name or not product_key:
        reason = "username must be '<deviceName>&<productKey>'"
    return ParsedUsername(text, device_name, product_key, reason)


def connect_sign_content(parsed: ParsedClientId, username: ParsedUsername | str) -> str:
    """Rebuild the content a device-secret CONNECT signed: ``clientId`` (kept even when
    empty), ``deviceName``, ``productKey`` from the username, and ``timestamp`` only if
    the client id carries one.

    Example:
        >>> connect_sign_content(parse_client_id("|timestamp=2524608000000,ext=3,|"), "dn&pk")
        'clientIddeviceNamednproductKeypktimestamp2524608000000'
    """
    user = parse_username(username) if isinstance(username, str) else username
    return form_sign_content(_connect_params(parsed, user))


def _connect_params(parsed: ParsedClientId, user: ParsedUsername) -> dict[str, str]:
    """The signed fields of a device-secret CONNECT (timestamp only when sent)."""
    params = {
        "clientId": parsed.client_id,
        "deviceName": user.device_name,
        "productKey": user.product_key,
    }
    if parsed.timestamp is not None:
        params["timestamp"] = parsed.timestamp
    return params


def check_mqtt_connect(
    client_id: str, username: str, password: str, device_secret: str
) -> SignatureCheck:
    """Check a device-secret MQTT CONNECT (spec §7 items 2 and 4): client id format,
    username ``dn&pk``, then HMAC(deviceSecret, content) vs password, any hex case.

    Example:
        >>> check_mqtt_connect("12345|securemode=3,signmethod=hmacsha1,timestamp=789|",
        ...     "device&pk", "fafd82a3d602b37fb0fa8b7892f24a477f851a14", "secret").ok
        True
    """
    parsed = parse_client_id(client_id)
    user = parse_username(username)
    content = connect_sign_content(parsed, user)
    reason = parsed.reason or user.reason
    return _check(
        "mqtt-connect",
        device_secret,
        content,
        parsed.sign_method_text,
        password,
        reason,
        _connect_variants(client_id, parsed, user),
    )


def _connect_variants(
    client_id: str, parsed: ParsedClientId, user: ParsedUsername
) -> list[tuple[str, str]]:
    """Sign contents a device may have signed by mistake, each with what differs."""
    base = _connect_params(parsed, user)
    variants: list[tuple[str, str]] = []
    if client_id != parsed.client_id:
        variants.append(
            (
                "clientId: the whole client id, |…| block included, was signed; sign only "
                "the part before the first '|'",
                form_sign_content({**base, "clientId": client_id}),
            )
        )
    if parsed.timestamp is not None:
        without = {k: v for k, v in base.items() if k != "timestamp"}
        variants.append(
            (
                "timestamp: the client id carries timestamp=…, so it must be signed too",
                form_sign_content(without),
            )
        )
    variants.append(
        (
            "deviceName/productKey: the two were swapped (the username is "
            "'<deviceName>&<productKey>')",
            form_sign_content(
                {**base, "deviceName": user.product_key, "productKey": user.device_name}
            ),
        )
    )
    return variants


def check_mqtt_register_connect(
    client_id: str, username: str, password: str, product_secret: str
) -> SignatureCheck:
    """Check an MQTT dynamic-registration CONNECT (spec §7 items 12-13): ``authType``
    register/regnwl, ``random`` and ``signmethod`` required; password =
    HMAC(productSecret, ``deviceName…productKey…random…``).

    Example:
        >>> check_mqtt_register_connect(
        ...     "dn.pk|random=1,authType=register,securemode=2,signmethod=hmacmd5|",
        ...     "dn&pk", "0", "ps").reason
        'signature mismatch'
    """
    parsed = parse_client_id(client_id)
    user = parse_username(username)
    random = parsed.params.get("random")
    reason = parsed.reason or user.reason
    if reason is None:
        if parsed.auth_type not in ("register", "regnwl"):
            reason = f"authType must be register or regnwl, got {parsed.auth_type!r}"
        elif not random:
            reason = "random is missing"
        elif parsed.sign_method_text is None:
            reason = "signmethod is missing"
    content = form_sign_content(
        {"deviceName": user.device_name, "productKey": user.product_key, "random": random or ""}
    )
    return _check(
        "mqtt-register", product_secret, content, parsed.sign_method_text, password, reason
    )


def _form_check(
    rule: str,
    params: Mapping[str, str],
    secret: str,
    required: tuple[str, ...],
    unsigned: frozenset[str],
    method_key: str,
) -> SignatureCheck:
    missing = [name for name in required if not params.get(name)]
    reason = f"missing parameter(s): {', '.join(missing)}" if missing else None
    content = form_sign_content(params, exclude=unsigned)
    variants = [
        (
            f"the fields: {', '.join(sorted(unsigned - {'sign'}))} must be left out of the "
            "sign content",
            form_sign_content(params, exclude=frozenset({"sign"})),
        )
    ]
    return _check(
        rule, secret, content, params.get(method_key), params.get("sign", ""), reason, variants
    )


def check_devicename_form(params: Mapping[str, str], device_secret: str) -> SignatureCheck:
    """Check a ``/auth/devicename`` form: every parameter except version, sign,
    resources and signmethod is signed (sorted); ``signmethod`` defaults to hmacmd5.

    Example:
        >>> from airlab.aliyun.forms import parse_form
        >>> check_devicename_form(parse_form("productKey=k1hipglLdjU&"
        ...     "sign=0f655b12adf519b9a7a2b0a990f398b6&clientId=868488076506128&"
        ...     "deviceName=868488076506128"), "fef32adf6dad46c2c7cbf335d3a7b021").ok
        True
    """
    return _form_check(
        "auth-devicename",
        params,
        device_secret,
        ("productKey", "deviceName", "clientId", "sign"),
        DEVICENAME_FORM_UNSIGNED,
        "signmethod",
    )


def check_register_form(params: Mapping[str, str], product_secret: str) -> SignatureCheck:
    """Check a ``/auth/register/device`` form: every parameter except sign and
    signMethod (capital M, value any case) is signed with the product secret.

    Example:
        >>> check_register_form({"productKey": "k1hipglLdjU", "deviceName": "868488076506128",
        ...     "random": "123456", "sign": "20558BAADB2A0B04847767980F0EE67B",
        ...     "signMethod": "HmacMD5"}, "8LQwOYSZMwp3DFBd").ok
        True
    """
    return _form_check(
        "auth-register-device",
        params,
        product_secret,
        ("productKey", "deviceName", "random", "sign"),
        REGISTER_FORM_UNSIGNED,
        "signMethod",
    )
