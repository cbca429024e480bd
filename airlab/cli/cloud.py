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
import csv
import datetime as dt
import json
import os
import select
import signal
import sqlite3
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

from airlab.errors import UsageError

__all__ = ["register"]

_PORT_OPTIONS = ("http_port", "https_port", "mqtt_port", "mqtts_port")
_LAB_DB_HELP = "default: the registry 'make lab' keeps, ~/.local/share/airlab/lab.db"
#: seconds between two checks for new log lines in ``log --follow``
FOLLOW_INTERVAL = 0.1


def register(subparsers: Any) -> None:
    """Add the ``cloud`` group to the ``airlab`` command's subparsers.

    Example:
        >>> parser = argparse.ArgumentParser(prog="airlab")
        >>> register(parser.add_subparsers())
        >>> args = parser.parse_args(["cloud", "serve", "--mqtt-port", "1883"])
        >>> args.mqtt_port, args.host, args.fixture
        ('1883', '127.0.0.1', 'tutorial')
    """
    cloud = subparsers.add_parser(
        "cloud",
        help="run the Alibaba Cloud IoT emulator and use its console",
        description="The local Alibaba Cloud IoT emulator: serve it, add devices, read logs.",
    )
    group = cloud.add_subparsers(dest="cloud_command", metavar="COMMAND")
    group.required = True

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


# -- helpers ----------------------------------------------------------------------------


def _port(value: str, name: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise UsageError(name, f"must be a port number from 0 to 65535, not {value!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(name, f"must be a port number from 0 to 65535, not {value!r}")
    return port


def _required(value: str | None, name: str) -> str:
    if value is None or value == "":
        raise UsageError(name, "is required")
    return value


def lab_db() -> Path:
    """The registry ``make lab`` (``airlab lab``) keeps: ``<data dir>/lab.db``."""
    from airlab.cli.lab import user_data_dir

    return user_data_dir() / "lab.db"


def _db_or_lab(value: str | None) -> Path:
    """``--db`` as given, or the lab registry when omitted."""
    if value is not None and value != "":
        return Path(value).expanduser()
    return lab_db()


def _say_lab_db(value: str | None, path: Path) -> None:
    """Say on stderr which registry a command without ``--db`` uses."""
    if value is None or value == "":
        print(f"airlab cloud: registry {path} (the one 'make lab' keeps; --db for another)",
              file=sys.stderr, flush=True)  # fmt: skip


def _existing_db(value: str | None) -> Path:
    given = value is not None and value != ""
    path = _db_or_lab(value)
    if not path.is_file():
        if not given:
            raise UsageError("db", f"no registry at {path}: run 'make lab' (or 'airlab lab') "
                             "once, or give --db")  # fmt: skip
        raise UsageError("db", f"no registry at {path} (create it with 'airlab cloud serve "
                         "--db' or 'airlab cloud add-product --db')")  # fmt: skip
    _say_lab_db(value, path)
    return path


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, ensure_ascii=False))


# -- serve ------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from airlab.cloud.discovery import EndpointsError, default_endpoints_path, load_endpoints
    from airlab.cloud.mqtt_core import UPLINK_LIMITS
    from airlab.cloud.service import CloudEmulator

    ports = {name: _port(getattr(args, name), name) for name in _PORT_OPTIONS}
    rate = None
    if args.connect_rate_limit is not None:
        try:
            rate = int(args.connect_rate_limit)
        except ValueError:
            raise UsageError("connect_rate_limit", "must be a whole number") from None
    watch = None
    if args.watch_pid is not None:
        if not args.watch_pid.isdigit():
            raise UsageError("watch_pid", f"must be a process id, not {args.watch_pid!r}")
        watch = int(args.watch_pid)
    path = (
        Path(args.endpoints_file).expanduser() if args.endpoints_file else default_endpoints_path()
    )
    if path.is_dir():
        raise UsageError("endpoints_file", f"{path} is a folder")
    try:
        existing = load_endpoints(path)
    except EndpointsError:
        existing = None
    if existing is not None:
        raise UsageError(
            "endpoints_file",
            f"another cloud emulator (pid {existing.get('pid')}) is serving with {path}: "
            "stop it first or choose another --endpoints-file",
        )
    fixture = None if args.fixture in ("none", "") else args.fixture
    cloud = CloudEmulator(
        args.db or ":memory:",
        host=args.host,
        fixture=fixture,
        connect_rate_limit=rate,
        uplink_limits=None if args.no_throttle else UPLINK_LIMITS,
        advertise=args.advertise,
        **ports,
    )
    stop = threading.Event()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        cloud.start()
        try:
            _announce(cloud, cloud.write_endpoints(path))
            while not stop.wait(1.0):
                if watch is not None and not _alive(watch):
                    print("airlab cloud: parent process ended, stopping", flush=True)
                    break
        finally:
            cloud.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("airlab cloud: stopped", flush=True)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _announce(cloud: Any, path: Path) -> None:
    ep = cloud.endpoints
    lines = [
        f"airlab cloud: serving (pid {ep['pid']}, registry {ep['db'] or 'in memory'}, "
        f"fixture {ep['fixture'] or 'none'})",
        f"  http   {ep['http']}",
        f"  https  {ep['https']}",
        f"  mqtt   {ep['mqtt']}",
        f"  mqtts  {ep['mqtts']}",
        f"  admin  {ep['admin']['url']}",
        f"  endpoints file: {path}",
        f"  CA certificate: {path.with_name(path.stem + '.ca.pem')}",
    ]
    if ep["bind"] != ep["address"]:
        lines.append(f"  listening on {ep['bind']}, advertised as {ep['address']}")
    lines.append("Ctrl-C stops it.")
    print("\n".join(lines), flush=True)


# -- registry commands ------------------------------------------------------------------


def _add_product(args: argparse.Namespace) -> int:
    from airlab.cloud.registry import Registry

    db = _db_or_lab(args.db)
    if not args.db:
        db.parent.mkdir(parents=True, exist_ok=True)
    if not db.parent.is_dir():
        raise UsageError("db", f"the folder of {db} does not exist")
    _say_lab_db(args.db, db)
    pk = _required(args.product_key, "product_key")
    dynreg = _on_off(args.dynamic_registration, "dynamic_registration")
    host_check = _on_off(args.host_check, "host_check")
    tls_required = _on_off(args.tls_required, "tls_required")
    with Registry(db) as registry:
        product = registry.add_product(
            pk,
            args.product_secret,
            region=args.region,
            dynamic_registration=bool(dynreg),
            host_check=bool(host_check),
            tls_required=bool(tls_required),
        )
    _print_json(
        {
            "product_key": product.product_key,
            "product_secret": product.product_secret,
            "region": product.region,
            "dynamic_registration": "on" if product.dynamic_registration else "off",
            "host_check": "on" if product.host_check else "off",
            "tls_required": "on" if product.tls_required else "off",
        }
    )
    return 0


def _on_off(value: str | None, name: str) -> bool | None:
    """``on``/``off`` (any case) as a bool; None when not given."""
    if value is None:
        return None
    switch = str(value).strip().lower()
    if switch not in ("on", "off"):
        raise UsageError(name, f"must be on or off, not {value!r}")
    return switch == "on"


def _product(args: argparse.Namespace) -> int:
    pk = _required(args.product_key, "product_key")
    dynreg = _on_off(args.dynamic_registration, "dynamic_registration")
    host_check = _on_off(args.host_check, "host_check")
    tls_required = _on_off(args.tls_required, "tls_required")
    if args.db is not None and args.endpoints_file is not None:
        raise UsageError(
            "db", "give either --db (the registry file) or --endpoints-file (a running service)"
        )
    if args.endpoints_file is None:
        from airlab.cloud.registry import Registry

        db = _existing_db(args.db)
        with Registry(db) as registry:
            if registry.get_product(pk) is None:
                raise UsageError("product_key", f"no product {pk!r} in {db}")
            if dynreg is not None:
                registry.set_dynamic_registration(pk, dynreg)
            if host_check is not None:
                registry.set_host_check(pk, host_check)
            if tls_required is not None:
                registry.set_tls_required(pk, tls_required)
            product = registry.get_product(pk)
        assert product is not None
        settings: dict[str, Any] = {
            "product_key": product.product_key,
            "region": product.region,
            "dynamic_registration": product.dynamic_registration,
            "host_check": product.host_check,
            "tls_required": product.tls_required,
        }
    else:
        from airlab.cloud.discovery import EndpointsError, RemoteCloud, load_endpoints

        cloud = RemoteCloud(load_endpoints(args.endpoints_file))
        try:
            settings = cloud.product_settings(pk)
            if dynreg is not None:
                settings = cloud.set_dynamic_registration(pk, dynreg)
            if host_check is not None:
                settings = cloud.set_host_check(pk, host_check)
            if tls_required is not None:
                settings = cloud.set_tls_required(pk, tls_required)
        except EndpointsError:
            raise
        except UsageError as exc:  # 404 from the service: no such product
            raise UsageError("product_key", exc.message) from None
        finally:
            cloud.close()
    _print_json(
        {
            "product_key": settings["product_key"],
            "region": settings["region"],
            "dynamic_registration": "on" if settings["dynamic_registration"] else "off",
            "host_check": "on" if settings["host_check"] else "off",
            "tls_required": "on" if settings.get("tls_required") else "off",
        }
    )
    return 0


def _add_device(args: argparse.Namespace) -> int:
    from airlab.cloud.registry import Registry

    db = _existing_db(args.db)
    pk = _required(args.product_key, "product_key")
    dn = _required(args.device_name, "device_name")
    with Registry(db) as registry:
        device = registry.add_device(pk, dn, args.device_secret)
    _print_json(
        {
            "product_key": device.product_key,
            "device_name": device.device_name,
            "device_secret": device.device_secret,
            "iot_id": device.iot_id,
        }
    )
    return 0


# -- log --------------------------------------------------------------------------------

_CSV_COLUMNS = [
    "time", "kind", "protocol", "event", "accepted", "device", "client_id", "remote", "code",
    "direction", "topic", "qos", "size", "payload", "reason", "rule", "explanation", "details",
]  # fmt: skip


def _device_filter(device: str | None) -> Any:
    from airlab.cloud.model import DeviceRef

    if not device:
        return None
    pk, sep, dn = device.partition("/")
    if not sep or not pk or not dn:
        raise UsageError("device", f"write it as productKey/deviceName, not {device!r}")
    return DeviceRef(pk, dn)


def _event_dict(e: Any) -> dict[str, Any]:
    from airlab.cloud.model import CONNACK_MEANINGS

    exp = e.explanation
    reason = e.reason
    if e.protocol == "mqtt" and e.event == "refused" and e.code is not None and not reason:
        reason = CONNACK_MEANINGS.get(e.code)
    return {
        "time": e.time,
        "kind": "connection",
        "protocol": e.protocol,
        "event": e.event,
        "accepted": e.accepted,
        "device": str(e.device) if e.device else "",
        "client_id": e.client_id or "",
        "remote": e.remote or "",
        "code": "" if e.code is None else e.code,
        "reason": reason or "",
        "rule": exp.rule if exp else "",
        "explanation": exp.message if exp else "",
        "details": json.dumps(dict(exp.details), ensure_ascii=False) if exp else "",
        "_details": dict(exp.details) if exp else {},
    }


def _message_dict(m: Any, show_secrets: bool) -> dict[str, Any]:
    from airlab.at.redact import redact_bytes

    return {
        "time": m.time,
        "kind": "message",
        "protocol": "mqtt",
        "event": "publish",
        "accepted": m.accepted,
        "device": str(m.device) if m.device else "",
        "client_id": m.client_id or "",
        "direction": m.direction,
        "topic": m.topic,
        "qos": m.qos,
        "size": len(m.payload),
        "payload": (m.payload if show_secrets else redact_bytes(m.payload)).decode(
            "utf-8", errors="replace"
        ),
        "reason": m.reason or "",
    }


def _log_rows(db: Path, device: str | None, show_secrets: bool = False) -> list[dict[str, Any]]:
    from airlab.cloud.registry import Registry

    ref = _device_filter(device)
    with Registry(db) as registry:
        events = registry.connection_log(ref)
        messages = registry.message_log(ref)
    rows = [_event_dict(e) for e in events]
    rows += [_message_dict(m, show_secrets) for m in messages]
    rows.sort(key=lambda r: r["time"])
    return rows


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


class _LogPrinter:
    """Prints log rows as the table (header once) or as CSV (header once)."""

    def __init__(self, as_csv: bool) -> None:
        self.as_csv = as_csv
        self._writer: csv.DictWriter[str] | None = None
        self._header = False

    def header(self) -> None:
        if self._header:
            return
        self._header = True
        if self.as_csv:
            self._writer = csv.DictWriter(
                sys.stdout, _CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
            )
            self._writer.writeheader()
        else:
            print(f"{'time (UTC)':<23} {'what':<16} {'ok':<3} {'device':<30} {'code':>4}  detail")

    def rows(self, rows: list[dict[str, Any]]) -> None:
        self.header()
        if self._writer is not None:
            for row in rows:
                self._writer.writerow({**row, "time": _iso(row["time"])})
            return
        for row in rows:
            _print_row(row)


def _print_row(row: dict[str, Any]) -> None:
    time_text = _iso(row["time"])[:23]
    ok = "yes" if row["accepted"] else "NO"
    code = str(row.get("code", ""))
    if row["kind"] == "message":
        arrow = "->" if row["direction"] == "up" else "<-"
        what = f"msg {row['direction']}"
        preview = row["payload"] if len(row["payload"]) <= 40 else row["payload"][:37] + "..."
        detail = f"{arrow} {row['topic']} qos{row['qos']} {row['size']}B {preview!r}"
        if row["reason"]:
            detail += f" ({row['reason']})"
    else:
        what = f"{row['protocol']} {row['event']}"
        detail = row["reason"] or ""
        if row["client_id"]:
            detail = f"client {row['client_id']!r} {detail}".strip()
    print(f"{time_text:<23} {what:<16} {ok:<3} {row['device'] or '-':<30} {code:>4}  {detail}")
    if row.get("explanation"):
        print(f"{'':<23}   why [{row['rule']}]: {row['explanation']}")
        for key, value in row.get("_details", {}).items():
            print(f"{'':<23}     {key}: {value}")


def _log(args: argparse.Namespace) -> int:
    db = _existing_db(args.db)
    if args.follow:
        return _follow(db, args.device, args.show_secrets, args.csv)
    rows = _log_rows(db, args.device, args.show_secrets)
    printer = _LogPrinter(args.csv)
    if not rows and not args.csv:
        print(f"(the log of {db} is empty)")
        return 0
    printer.rows(rows)
    return 0


class _LogTail:
    """Reads the log rows committed since the last read, by id, from another process's
    registry (SQLite in WAL mode: reading never blocks the writer)."""

    _TABLES = ("connection_log", "message_log")

    def __init__(self, db: Path, device: Any, show_secrets: bool) -> None:
        self._conn = sqlite3.connect(str(db), timeout=10.0, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._device = device
        self._show_secrets = show_secrets
        self._last = dict.fromkeys(self._TABLES, 0)
        self._version: int | None = None

    def close(self) -> None:
        self._conn.close()

    def changed(self) -> bool:
        """True when another connection committed since the last call (cheap)."""
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            return False
        self._version = version
        return True

    def new_rows(self) -> list[dict[str, Any]]:
        from airlab.cloud.model import ConnectionEvent, DeviceRef, Explanation, MessageRecord

        where, params = "", []
        if self._device is not None:
            where = " AND product_key = ? AND device_name = ?"
            params = [self._device.product_key, self._device.device_name]
        rows: list[dict[str, Any]] = []
        for table in self._TABLES:
            top = self._conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
            if top < self._last[table]:  # the file was replaced: ids start again
                self._last[table] = 0
            found = self._conn.execute(
                f"SELECT * FROM {table} WHERE id > ?{where} AND id <= ? ORDER BY id",
                [self._last[table], *params, top],
            ).fetchall()
            self._last[table] = max(self._last[table], top)
            for r in found:
                device = (
                    DeviceRef(r["product_key"], r["device_name"])
                    if r["product_key"] is not None and r["device_name"] is not None
                    else None
                )
                if table == "connection_log":
                    exp = None
                    if r["explanation"]:
                        data = json.loads(r["explanation"])
                        exp = Explanation(
                            data["rule"], data["message"], dict(data.get("details") or {})
                        )
                    event = ConnectionEvent(
                        r["time"], r["protocol"], r["event"], bool(r["accepted"]), device,
                        r["client_id"], r["remote"], r["code"], r["reason"], exp,
                    )  # fmt: skip
                    rows.append(_event_dict(event))
                else:
                    message = MessageRecord(
                        r["time"], r["direction"], r["topic"], r["qos"], bytes(r["payload"]),
                        bool(r["accepted"]), device, r["client_id"], r["reason"],
                    )  # fmt: skip
                    rows.append(_message_dict(message, self._show_secrets))
        rows.sort(key=lambda row: row["time"])
        return rows


def _reader_gone_waiter() -> Any:
    """A wait of ``FOLLOW_INTERVAL`` s that returns early, raising BrokenPipeError, when
    stdout is a pipe whose reader has left (``| head``): we learn it without writing."""
    try:
        fd = sys.stdout.fileno()
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (OSError, ValueError, AttributeError):
        is_pipe = False
    if not is_pipe or not hasattr(select, "poll"):
        return lambda: time.sleep(FOLLOW_INTERVAL)
    poller = select.poll()
    poller.register(fd, 0)  # only POLLERR / POLLHUP: the reader closed its end

    def wait() -> None:
        if poller.poll(FOLLOW_INTERVAL * 1000):
            raise BrokenPipeError(f"the reader of stdout has gone ({fd})")

    return wait


def _follow(db: Path, device: str | None, show_secrets: bool, as_csv: bool) -> int:
    """Print the log, then every line committed later, until Ctrl-C (exit 0)."""
    tail = _LogTail(db, _device_filter(device), show_secrets)
    printer = _LogPrinter(as_csv)
    wait = _reader_gone_waiter()
    print(f"airlab cloud: following the log of {db} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        printer.header()
        sys.stdout.flush()
        while True:
            if tail.changed():
                rows = tail.new_rows()
                if rows:
                    printer.rows(rows)
                    sys.stdout.flush()
            wait()
    except KeyboardInterrupt:
        return 0
    finally:
        tail.close()


# -- reset ------------------------------------------------------------------------------


def _service_on(db: Path) -> dict[str, Any] | None:
    """The endpoints of a running service whose registry is ``db``: the default
    endpoints file or another JSON file in its folder; None when none runs."""
    from airlab.cloud.discovery import EndpointsError, default_endpoints_path, load_endpoints

    target = db.resolve()
    default = default_endpoints_path()
    candidates = [default]
    if default.parent.is_dir():
        candidates += sorted(p for p in default.parent.glob("*.json") if p != default)
    for path in candidates:
        try:
            data = load_endpoints(path, check=False)
        except EndpointsError:
            continue
        named = data.get("db")
        if not isinstance(named, str) or Path(named).resolve() != target:
            continue
        try:
            return load_endpoints(path)  # it must still answer
        except EndpointsError:
            continue
    return None


def _summary(counts: dict[str, int], logs_only: bool) -> str:
    logs = sum(n for table, n in counts.items() if table.endswith("_log"))
    if logs_only:
        return f"{logs} log row{'s' if logs != 1 else ''}"
    products, devices = counts.get("products", 0), counts.get("devices", 0)
    return (
        f"{products} product{'s' if products != 1 else ''}, "
        f"{devices} device{'s' if devices != 1 else ''}, "
        f"{logs} log row{'s' if logs != 1 else ''}"
    )


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _reset(args: argparse.Namespace) -> int:
    from airlab.cloud.discovery import RemoteCloud, load_endpoints
    from airlab.cloud.registry import Registry

    if args.db is not None and args.endpoints_file is not None:
        raise UsageError("db", "give either --db (the registry file) or --endpoints-file")
    interactive = sys.stdin.isatty()
    if not args.yes and not interactive:
        raise UsageError("yes", "not a terminal, so nobody can confirm: add --yes to reset")
    endpoints: dict[str, Any] | None
    if args.endpoints_file is not None:
        endpoints = load_endpoints(args.endpoints_file)
        named = endpoints.get("db")
        db = Path(named) if isinstance(named, str) and named else None
    else:
        db = _existing_db(args.db)
        endpoints = _service_on(db)
    label = str(db.resolve()) if db is not None else "the in-memory registry"
    if endpoints is not None:
        how = f" through the running cloud emulator (pid {endpoints.get('pid')})"
        fixture = endpoints.get("fixture")
        remote = RemoteCloud(endpoints)
        try:
            counts = remote.wipe(logs_only=args.logs_only, dry_run=True)
            if not args.yes and not _confirm(_question(label, counts, args.logs_only)):
                print("airlab cloud: nothing reset", file=sys.stderr)
                return 1
            removed = remote.wipe(logs_only=args.logs_only)
        finally:
            remote.close()
    else:
        assert db is not None
        how, fixture = "", "tutorial"
        with Registry(db) as registry:
            counts = registry.table_counts(logs_only=args.logs_only)
            if not args.yes and not _confirm(_question(label, counts, args.logs_only)):
                print("airlab cloud: nothing reset", file=sys.stderr)
                return 1
            removed = registry.reset(fixture, logs_only=args.logs_only)
    what = "the logs of " if args.logs_only else ""
    line = f"reset {what}{label}{how}: removed {_summary(removed, args.logs_only)}"
    if not args.logs_only:
        line += f"; loaded the {fixture} fixture again" if fixture else "; no fixture to load"
    print(line)
    return 0


def _question(label: str, counts: dict[str, int], logs_only: bool) -> str:
    what = "the logs of " if logs_only else ""
    return f"reset {what}{label}: {_summary(counts, logs_only)} will be removed"


# -- publish ----------------------------------------------------------------------------


def _publish(args: argparse.Namespace) -> int:
    from airlab.cloud.discovery import RemoteCloud, load_endpoints

    topic = _required(args.topic, "topic")
    if args.payload is None:
        raise UsageError("payload", "is required (use '' for an empty message)")
    if args.qos not in ("0", "1"):
        raise UsageError("qos", f"must be 0 or 1, not {args.qos!r}")
    endpoints = load_endpoints(args.endpoints_file)
    cloud = RemoteCloud(endpoints)
    counts = cloud.publish_counts(topic, args.payload, int(args.qos))
    size = len(args.payload.encode("utf-8"))
    n = counts.delivered
    line = f"published {size} bytes to {topic} (QoS {args.qos}): delivered to {n} "
    line += f"client{'s' if n != 1 else ''}"
    if counts.queued:  # queued (QoS 1) for offline clean-session-0 sessions
        m = counts.queued
        line += f", queued for {m} offline session{'s' if m != 1 else ''}"
    print(line)
    return 0
