"""``airlab sign ...``: compute Alibaba Cloud IoT credentials from the command line.

Each subcommand prints exactly one JSON object on stdout: ``client_id``, ``username``,
``password``, ``host``, ``port`` for an MQTT connect; ``url``, ``body``, ``length``
(bytes, for ``AT+HTTPDATA``) for an HTTPS request; ``sign_content`` always.

Example:
    $ airlab sign direct --product-key k1hipglLdjU --device-name 868488076506128 \\
          --device-secret fef32adf6dad46c2c7cbf335d3a7b021
    $ airlab sign register --product-key k1hipglLdjU --device-name 868488076506128 \\
          --product-secret 8LQwOYSZMwp3DFBd --random 123456
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from airlab.aliyun import (
    DEFAULT_REGION,
    TUTORIAL_REGISTER_SIGN_METHOD,
    HttpAuthFieldOrder,
    SignMethod,
    check_signature,
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_register_credentials,
    new_random,
    register_request,
)
from airlab.cli.parsers import command_group
from airlab.errors import UsageError

__all__ = ["register"]

_METHODS = "|".join(m.value for m in SignMethod)


def register(subparsers: Any) -> None:
    """Add the ``sign`` group to the ``airlab`` command's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser(prog="airlab")
        >>> register(parser.add_subparsers())
        >>> parser.parse_args(["sign", "direct", "--product-key", "pk", "--device-name",
        ...     "device", "--device-secret", "s"]).sign_method
        'hmacmd5'
    """
    group = command_group(
        subparsers,
        "sign",
        help="compute Alibaba Cloud IoT signatures and connection parameters",
        description="Compute Alibaba Cloud IoT credentials; prints one JSON object.",
        dest="sign_command",
        metavar="METHOD",
    )

    direct = group.add_parser(
        "direct", help="direct MQTT connect with the device secret (一机一密直连)"
    )
    _device_options(direct)
    direct.add_argument("--secure-mode", default="3", help="2 = TLS, 3 = plain TCP (default 3)")
    direct.add_argument(
        "--extra-params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra client-id parameter such as ext=1 (repeatable)",
    )
    direct.add_argument(
        "--expected", help="a password computed elsewhere to compare (adds 'matches')"
    )
    direct.set_defaults(func=_run_direct)

    http = group.add_parser("http-auth", help="HTTPS auth form for /auth/devicename (一机一密)")
    _device_options(http)
    http.add_argument("--version", help="optional 'version' field (e.g. default)")
    http.add_argument("--resources", help="optional 'resources' field (e.g. mqtt)")
    http.add_argument(
        "--field-order",
        default=HttpAuthFieldOrder.TUTORIAL.value,
        help="tutorial (default) or c3 (C SDK 3.x layout)",
    )
    http.add_argument(
        "--include-sign-method",
        action="store_true",
        default=None,
        help="write signmethod even for the default hmacmd5",
    )
    http.set_defaults(func=_run_http_auth)

    reg = group.add_parser("register", help="HTTPS dynamic registration form (一型一密)")
    _product_options(reg)
    reg.add_argument("--random", help="nonce (default: a fresh 15-character string)")
    reg.add_argument(
        "--sign-method",
        default=TUTORIAL_REGISTER_SIGN_METHOD,
        help=f"{_METHODS}, written as given (default {TUTORIAL_REGISTER_SIGN_METHOD})",
    )
    reg.set_defaults(func=_run_register)

    mreg = group.add_parser("mqtt-register", help="MQTT dynamic registration CONNECT (一型一密)")
    _product_options(mreg)
    mreg.add_argument("--random", required=True, help="nonce written into the client id")
    mreg.add_argument("--auth-type", default="register", help="register (default) or regnwl")
    mreg.add_argument(
        "--sign-method", default=SignMethod.HMACMD5.value, help=f"{_METHODS} (default hmacmd5)"
    )
    mreg.add_argument("--secure-mode", default="2", help="2 (default) or -2")
    mreg.add_argument("--instance-id", help="instance id (new public / Enterprise instances)")
    mreg.add_argument(
        "--client-id", help="client id (default: the device name; <dn>.<pk> with --layout sdk)"
    )
    mreg.add_argument(
        "--layout",
        default="tutorial",
        help="tutorial (default: securemode,authType,random,signmethod) or sdk "
        "(<dn>.<pk>|random,authType,securemode,signmethod|)",
    )
    mreg.set_defaults(func=_run_mqtt_register)


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--product-key", required=True, help="ProductKey")
    parser.add_argument("--device-name", required=True, help="DeviceName")
    parser.add_argument("--region", default=DEFAULT_REGION, help=f"default {DEFAULT_REGION}")
    parser.add_argument("--upper", action="store_true", help="upper-case hex (like the C SDKs)")


def _device_options(parser: argparse.ArgumentParser) -> None:
    _common_options(parser)
    parser.add_argument("--device-secret", required=True, help="DeviceSecret")
    parser.add_argument("--client-id", help="client id (default: the device name)")
    parser.add_argument(
        "--sign-method", default=SignMethod.HMACMD5.value, help=f"{_METHODS} (default hmacmd5)"
    )
    parser.add_argument("--timestamp", help="digits (seconds or ms); left out when not given")


def _product_options(parser: argparse.ArgumentParser) -> None:
    _common_options(parser)
    parser.add_argument("--product-secret", required=True, help="ProductSecret")


def _print(result: dict[str, object]) -> int:
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _key_values(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError("extra_params", f"expected KEY=VALUE, got {item!r}")
        pairs.append((key, value))
    return pairs


#: The destinations of each subcommand's options, keyword arguments of its signing
#: function under the same names (``direct``'s ``extra_params`` is parsed first).
_COMMON_VALUES = ("product_key", "device_name", "region", "upper")
_DEVICE_VALUES = (*_COMMON_VALUES, "device_secret", "client_id", "sign_method", "timestamp")
_PRODUCT_VALUES = (*_COMMON_VALUES, "product_secret")
_DIRECT_VALUES = (*_DEVICE_VALUES, "secure_mode")
_HTTP_AUTH_VALUES = (*_DEVICE_VALUES, "version", "resources", "include_sign_method", "field_order")
_REGISTER_VALUES = (*_PRODUCT_VALUES, "sign_method")
_MQTT_REGISTER_VALUES = (
    *_PRODUCT_VALUES,
    "random",
    "auth_type",
    "sign_method",
    "secure_mode",
    "instance_id",
    "client_id",
    "layout",
)


def _values(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names}


def _run_direct(args: argparse.Namespace) -> int:
    creds = direct_mqtt_credentials(
        **_values(args, _DIRECT_VALUES), extra_params=_key_values(args.extra_params)
    )
    result = creds.as_dict()
    if args.expected is not None:
        result["matches"] = check_signature(
            args.device_secret,
            creds.sign_content,
            args.expected,
            args.sign_method,
            secret_field="device_secret",
        )
    return _print(result)


def _run_http_auth(args: argparse.Namespace) -> int:
    return _print(http_auth_request(**_values(args, _HTTP_AUTH_VALUES)).as_dict())


def _run_register(args: argparse.Namespace) -> int:
    random = args.random if args.random is not None else new_random()
    request = register_request(**_values(args, _REGISTER_VALUES), random=random)
    return _print({**request.as_dict(), "random": random})


def _run_mqtt_register(args: argparse.Namespace) -> int:
    creds = mqtt_register_credentials(**_values(args, _MQTT_REGISTER_VALUES))
    return _print({**creds.as_dict(), "random": args.random})
