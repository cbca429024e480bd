"""``airlab cloud ...``: run the Alibaba Cloud IoT emulator and use its console.

* ``serve`` runs the emulator (HTTP, HTTPS, MQTT, MQTT over TLS) until Ctrl-C/SIGTERM,
  prints its endpoints and writes them as JSON (atomically, once it is ready; removed on
  a clean stop) where notebooks and ``airlab sim serve --cloud`` find them;
* ``add-product`` / ``add-device`` create registry rows (also while ``serve`` runs on
  the same ``--db``); ``add-device`` prints the DeviceSecret it stored;
* without ``--db``, ``add-product``, ``add-device``, ``product``, ``log`` and ``reset``
  use the registry ``make lab`` (``airlab lab``) keeps: ``$XDG_DATA_HOME/airlab/lab.db``
  (``~/.local/share/airlab/lab.db``), and say so on stderr;
* ``product`` shows or switches a product's settings: ``--dynamic-registration on|off``
  (动态注册) and ``--host-check on|off`` (the emulator's rule that an MQTT login over TLS
  names the product's own ``<pk>.iot-as-mqtt…`` host) and ``--tls-required on|off`` (MQTT
  logins over plain TCP refused, as the platform does for accounts created since
  2022-08-02; off for the tutorial's product), in the registry file (``--db``)
  or through a running service's admin API (``--endpoints-file``); a running service
  applies the change to the next login;
* ``log`` prints the connection and message logs, refusals with their reasons
  (``--csv`` for a CSV table); secrets and tokens in payloads (a registration push's
  ``deviceSecret``, a ``deviceToken``) are masked unless ``--show-secrets``;
  ``--follow`` keeps printing new lines as they are committed (like ``tail -f``; it
  polls SQLite's ``PRAGMA data_version`` every 0.1 s, a cheap check) until Ctrl-C
  (exit 0);
* ``publish`` sends a cloud-to-device message through the running service's admin API;
* ``reset`` starts clean: the tutorial's product and device only, every other product,
  device, token, seat and log line removed (``--logs-only``: the logs only). It asks
  first on a terminal (``--yes`` does not; without a terminal ``--yes`` is required).
  When a service runs on that registry (its endpoints file, or any in the default
  endpoints folder, names it) the reset goes through the service (``POST
  /admin/wipe``), which also disconnects every MQTT client and forgets what it cached.

Bad input exits with status 2 and one line naming the option.

Example:
    $ airlab cloud serve --db my.db --endpoints-file my-endpoints.json
    $ airlab cloud add-device --product-key k1hipglLdjU --device-name dev2
    $ airlab cloud product --product-key k1hipglLdjU --host-check on
    $ airlab cloud product --product-key k1hipglLdjU --tls-required on
    $ airlab cloud publish --topic /k1hipglLdjU/868488076506128/user/get --payload hi
    $ airlab cloud log --csv > log.csv
    $ airlab cloud log --follow
    $ airlab cloud reset --yes
"""

from __future__ import annotations

import argparse
from typing import Any

from airlab.cli.cloud_common import _PORT_OPTIONS
from airlab.cli.cloud_common import lab_db as lab_db
from airlab.cli.cloud_console import _add_device, _add_product, _product, _publish
from airlab.cli.cloud_log import FOLLOW_INTERVAL as FOLLOW_INTERVAL
from airlab.cli.cloud_log import _log
from airlab.cli.cloud_rabbitmq import add_auth_service
from airlab.cli.cloud_reset import _reset
from airlab.cli.cloud_serve import _serve, add_engine_options
from airlab.cli.parsers import command_group

__all__ = ["register"]

_LAB_DB_HELP = "default: the registry 'make lab' keeps, ~/.local/share/airlab/lab.db"


def register(subparsers: Any) -> None:
    """Add the ``cloud`` group to the ``airlab`` command's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser(prog="airlab")
        >>> register(parser.add_subparsers())
        >>> args = parser.parse_args(["cloud", "serve", "--mqtt-port", "1883"])
        >>> args.mqtt_port, args.host, args.fixture
        ('1883', '127.0.0.1', 'tutorial')
    """
    group = command_group(
        subparsers,
        "cloud",
        help="run the Alibaba Cloud IoT emulator and use its console",
        description="The local Alibaba Cloud IoT emulator: serve it, add devices, read logs.",
        dest="cloud_command",
    )

    serve = group.add_parser(
        "serve",
        help="run the emulator until Ctrl-C (prints and writes its endpoints)",
        description=(
            "Run the emulator: HTTP/HTTPS auth endpoints and the MQTT broker (plain and TLS). "
            "Free ports unless given. The endpoints JSON is written once it is ready and "
            "removed on a clean stop. With --host 0.0.0.0 the URLs carry the host's primary "
            "IPv4 address (or --advertise)."
        ),
    )
    serve.add_argument("--db", help="registry file (created if missing; default: in memory)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--advertise", help="address written in the endpoints when --host is 0.0.0.0"
    )
    serve.add_argument(
        "--fixture", default="tutorial", help="registry contents to load: tutorial or none"
    )
    serve.add_argument(
        "--endpoints-file",
        help="where to write the endpoints JSON (default: $AIRLAB_CLOUD_ENDPOINTS or "
        "~/.cache/airlab/cloud-endpoints.json)",
    )
    for name in _PORT_OPTIONS:
        flag = "--" + name.replace("_", "-")
        serve.add_argument(flag, default="0", metavar="N", help="port (default 0: a free one)")
    serve.add_argument(
        "--connect-rate-limit",
        help="CONNECT attempts allowed per device per minute (default: no limit)",
    )
    serve.add_argument(
        "--no-throttle",
        action="store_true",
        help="do not drop uplinks beyond the platform's 30/s (QoS0) and 10/s (QoS1) per device",
    )
    serve.add_argument("--watch-pid", help=argparse.SUPPRESS)  # stop when this process ends
    add_engine_options(serve)
    serve.set_defaults(func=_serve)

    product = group.add_parser("add-product", help="create a product (prints its secret)")
    product.add_argument("--db", help=f"registry file (created if missing; {_LAB_DB_HELP})")
    product.add_argument("--product-key", help="ProductKey")
    product.add_argument("--product-secret", help="ProductSecret (default: random)")
    product.add_argument("--region", default="cn-shanghai", help="region (default cn-shanghai)")
    product.add_argument(
        "--dynamic-registration", default="off", help="dynamic registration switch: on|off"
    )
    product.add_argument(
        "--host-check",
        default="off",
        help="MQTT over TLS must name <pk>.iot-as-mqtt.<region>.aliyuncs.com: on|off (off)",
    )
    product.add_argument(
        "--tls-required",
        default="off",
        help="refuse MQTT logins over plain TCP (AT+MIPSTART), as the platform does for "
        "accounts created since 2022-08-02: on|off (off)",
    )
    product.set_defaults(func=_add_product)

    settings = group.add_parser(
        "product",
        help="show or switch a product's settings (dynamic registration, host check, TLS)",
        description=(
            "Show a product's settings, or switch them: --dynamic-registration on|off "
            "(动态注册) and --host-check on|off (an emulator rule, off by default: an MQTT "
            "login over TLS must name the product's own host "
            "<productKey>.iot-as-mqtt.<region>.aliyuncs.com as AT+SSLMIPSTART does) and "
            "--tls-required on|off (off by default: on, an MQTT login over plain TCP, "
            "AT+MIPSTART, gets CONNACK 2, as the platform refuses plain TCP for accounts "
            "created since 2022-08-02; use AT+SSLMIPSTART). Give "
            "--db (the registry file, also while 'serve' runs on it; default: the one "
            "'make lab' keeps) or --endpoints-file (a running service, through its admin "
            "API). Prints the settings as JSON."
        ),
    )
    settings.add_argument("--db", help=f"registry file ({_LAB_DB_HELP})")
    settings.add_argument("--endpoints-file", help="endpoints JSON of the running service")
    settings.add_argument("--product-key", help="ProductKey")
    settings.add_argument("--dynamic-registration", help="on|off")
    settings.add_argument("--host-check", help="on|off")
    settings.add_argument("--tls-required", help="on|off")
    settings.set_defaults(func=_product)

    device = group.add_parser("add-device", help="create a device (prints its secret)")
    device.add_argument("--db", help=f"registry file ({_LAB_DB_HELP})")
    device.add_argument("--product-key", help="ProductKey")
    device.add_argument("--device-name", help="DeviceName")
    device.add_argument("--device-secret", help="DeviceSecret (default: random)")
    device.set_defaults(func=_add_device)

    log = group.add_parser(
        "log",
        help="print the connection and message logs (--follow: and new lines as they come)",
    )
    log.add_argument("--db", help=f"registry file ({_LAB_DB_HELP})")
    log.add_argument("--csv", action="store_true", help="write CSV instead of a table")
    log.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines as they are committed, like tail -f (Ctrl-C: exit 0)",
    )
    log.add_argument("--device", help="only this device (productKey/deviceName)")
    log.add_argument(
        "--show-secrets",
        action="store_true",
        help="print secrets and tokens in message payloads (masked by default)",
    )
    log.set_defaults(func=_log)

    publish = group.add_parser("publish", help="publish to a device through the running service")
    publish.add_argument("--endpoints-file", help="endpoints JSON of the running service")
    publish.add_argument("--topic", help="topic, e.g. /<pk>/<dn>/user/get")
    publish.add_argument("--payload", help="payload text")
    publish.add_argument("--qos", default="0", help="0 or 1 (default 0)")
    publish.set_defaults(func=_publish)

    reset = group.add_parser(
        "reset",
        help="start clean: the tutorial's product and device only, no logs",
        description=(
            "Back to the fixture (the tutorial's product k1hipglLdjU and device "
            "868488076506128): every other product, device, token, seat and every log line "
            "removed; --logs-only empties only the connection and message logs. Asks first "
            "on a terminal; --yes does not ask (required without a terminal). When a "
            "service runs on the registry, the reset goes through it (it also disconnects "
            "every MQTT client and forgets what it cached); otherwise the file is reset."
        ),
    )
    reset.add_argument("--db", help=f"registry file ({_LAB_DB_HELP})")
    reset.add_argument(
        "--endpoints-file", help="endpoints JSON of the running service to reset (instead of --db)"
    )
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.add_argument(
        "--logs-only", action="store_true", help="empty only the connection and message logs"
    )
    reset.set_defaults(func=_reset)

    add_auth_service(group)
