"""``airlab cloud ...``: run the Alibaba Cloud IoT emulator and use its console.

* ``serve`` runs the emulator (HTTP, HTTPS, MQTT, MQTT over TLS) until Ctrl-C/SIGTERM,
  prints its endpoints and writes them as JSON (atomically, once it is ready; removed on
  a clean stop) where notebooks and ``airlab sim serve --cloud`` find them;
* ``add-product`` / ``add-device`` create registry rows (also while ``serve`` runs on
  the same ``--db``); ``add-device`` prints the DeviceSecret it stored;
* ``product`` shows or switches a product's settings: ``--dynamic-registration on|off``
  (动态注册) and ``--host-check on|off`` (the emulator's rule that an MQTT login over TLS
  names the product's own ``<pk>.iot-as-mqtt…`` host), in the registry file (``--db``)
  or through a running service's admin API (``--endpoints-file``); a running service
  applies the change to the next login;
* ``log`` prints the connection and message logs, refusals with their reasons
  (``--csv`` for a CSV table); secrets and tokens in payloads (a registration push's
  ``deviceSecret``, a ``deviceToken``) are masked unless ``--show-secrets``;
* ``publish`` sends a cloud-to-device message through the running service's admin API.

Bad input exits with status 2 and one line naming the option.

Example:
    $ airlab cloud serve --db lab.db --fixture tutorial
    $ airlab cloud add-device --db lab.db --product-key k1hipglLdjU --device-name dev2
    $ airlab cloud product --db lab.db --product-key k1hipglLdjU --host-check on
    $ airlab cloud publish --topic /k1hipglLdjU/868488076506128/user/get --payload hi
    $ airlab cloud log --db lab.db --csv > log.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from airlab.errors import UsageError

__all__ = ["register"]

_PORT_OPTIONS = ("http_port", "https_port", "mqtt_port", "mqtts_port")


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
    product.add_argument("--db", help="registry file (created if missing)")
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
    product.set_defaults(func=_add_product)

    settings = group.add_parser(
        "product",
        help="show or switch a product's settings (dynamic registration, host check)",
        description=(
            "Show a product's settings, or switch them: --dynamic-registration on|off "
            "(动态注册) and --host-check on|off (an emulator rule, off by default: an MQTT "
            "login over TLS must name the product's own host "
            "<productKey>.iot-as-mqtt.<region>.aliyuncs.com as AT+SSLMIPSTART does). Give "
            "--db (the registry file, also while 'serve' runs on it) or --endpoints-file "
            "(a running service, through its admin API). Prints the settings as JSON."
        ),
    )
    settings.add_argument("--db", help="registry file")
    settings.add_argument("--endpoints-file", help="endpoints JSON of the running service")
    settings.add_argument("--product-key", help="ProductKey")
    settings.add_argument("--dynamic-registration", help="on|off")
    settings.add_argument("--host-check", help="on|off")
    settings.set_defaults(func=_product)

    device = group.add_parser("add-device", help="create a device (prints its secret)")
    device.add_argument("--db", help="registry file")
    device.add_argument("--product-key", help="ProductKey")
    device.add_argument("--device-name", help="DeviceName")
    device.add_argument("--device-secret", help="DeviceSecret (default: random)")
    device.set_defaults(func=_add_device)

    log = group.add_parser("log", help="print the connection and message logs")
    log.add_argument("--db", help="registry file")
    log.add_argument("--csv", action="store_true", help="write CSV instead of a table")
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


def _existing_db(value: str | None) -> Path:
    path = Path(_required(value, "db")).expanduser()
    if not path.is_file():
        raise UsageError("db", f"no registry at {path} (create it with 'airlab cloud serve "
                         "--db' or 'airlab cloud add-product --db')")  # fmt: skip
    return path


def _print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, ensure_ascii=False))


# -- serve ------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from airlab.cloud._amqtt_patch import UPLINK_LIMITS
    from airlab.cloud.discovery import EndpointsError, default_endpoints_path, load_endpoints
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

    db = Path(_required(args.db, "db")).expanduser()
    if not db.parent.is_dir():
        raise UsageError("db", f"the folder of {db} does not exist")
    pk = _required(args.product_key, "product_key")
    dynreg = _on_off(args.dynamic_registration, "dynamic_registration")
    host_check = _on_off(args.host_check, "host_check")
    with Registry(db) as registry:
        product = registry.add_product(
            pk,
            args.product_secret,
            region=args.region,
            dynamic_registration=bool(dynreg),
            host_check=bool(host_check),
        )
    _print_json(
        {
            "product_key": product.product_key,
            "product_secret": product.product_secret,
            "region": product.region,
            "dynamic_registration": "on" if product.dynamic_registration else "off",
            "host_check": "on" if product.host_check else "off",
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
    if (args.db is None) == (args.endpoints_file is None):
        raise UsageError(
            "db", "give either --db (the registry file) or --endpoints-file (a running service)"
        )
    if args.db is not None:
        from airlab.cloud.registry import Registry

        with Registry(_existing_db(args.db)) as registry:
            if registry.get_product(pk) is None:
                raise UsageError("product_key", f"no product {pk!r} in {args.db}")
            if dynreg is not None:
                registry.set_dynamic_registration(pk, dynreg)
            if host_check is not None:
                registry.set_host_check(pk, host_check)
            product = registry.get_product(pk)
        assert product is not None
        settings: dict[str, Any] = {
            "product_key": product.product_key,
            "region": product.region,
            "dynamic_registration": product.dynamic_registration,
            "host_check": product.host_check,
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


def _log_rows(db: Path, device: str | None, show_secrets: bool = False) -> list[dict[str, Any]]:
    from airlab.at.redact import redact_bytes
    from airlab.cloud.model import CONNACK_MEANINGS, DeviceRef
    from airlab.cloud.registry import Registry

    ref = None
    if device:
        pk, sep, dn = device.partition("/")
        if not sep or not pk or not dn:
            raise UsageError("device", f"write it as productKey/deviceName, not {device!r}")
        ref = DeviceRef(pk, dn)
    with Registry(db) as registry:
        events = registry.connection_log(ref)
        messages = registry.message_log(ref)
    rows: list[dict[str, Any]] = []
    for e in events:
        exp = e.explanation
        reason = e.reason
        if e.protocol == "mqtt" and e.event == "refused" and e.code is not None and not reason:
            reason = CONNACK_MEANINGS.get(e.code)
        rows.append(
            {
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
        )
    for m in messages:
        rows.append(
            {
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
        )
    rows.sort(key=lambda r: r["time"])
    return rows


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


def _log(args: argparse.Namespace) -> int:
    db = _existing_db(args.db)
    rows = _log_rows(db, args.device, args.show_secrets)
    if args.csv:
        writer = csv.DictWriter(
            sys.stdout, _CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "time": _iso(row["time"])})
        return 0
    if not rows:
        print(f"(the log of {db} is empty)")
        return 0
    print(f"{'time (UTC)':<23} {'what':<16} {'ok':<3} {'device':<30} {'code':>4}  detail")
    for row in rows:
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
    return 0


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
    receivers = cloud.publish(topic, args.payload, int(args.qos))
    size = len(args.payload.encode("utf-8"))
    print(
        f"published {size} bytes to {topic} (QoS {args.qos}): delivered to {receivers} "
        f"client{'s' if receivers != 1 else ''}"
    )
    return 0
