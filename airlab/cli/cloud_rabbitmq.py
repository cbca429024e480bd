"""``airlab cloud auth-service``: serve the platform's device rules to RabbitMQ nodes
(their ``rabbitmq_auth_backend_http`` plugin) until Ctrl-C/SIGTERM, and with
``--write-rabbitmq-config DIR`` write the node's ``rabbitmq.conf`` and
``enabled_plugins`` pointing at it; with ``--observe``, subscribe to everything on the
node as airlab's own subscriber (a password made up per run) and log what devices publish
in the message log (see docs/rabbitmq.md).

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="airlab cloud")
    >>> add_auth_service(parser.add_subparsers())
    >>> args = parser.parse_args(["auth-service", "--port", "8090"])
    >>> args.port, args.host, args.mqtt_port, args.vhost
    ('8090', '127.0.0.1', '1883', '/')
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
from pathlib import Path
from typing import Any

from airlab.cli.cloud_common import _port, stop_on_signals
from airlab.errors import UsageError

__all__ = ["add_auth_service"]


def add_auth_service(group: Any) -> None:
    """Add ``auth-service`` to the ``cloud`` group's subparsers."""
    service = group.add_parser(
        "auth-service",
        help="serve the device rules to RabbitMQ (HTTP auth backend) until Ctrl-C",
        description=(
            "Serve the platform's rules (device login, topic permissions) over HTTP for "
            "RabbitMQ's rabbitmq_auth_backend_http plugin, so a RabbitMQ node or cluster "
            "with rabbitmq_mqtt enforces them; every decision goes to the registry's "
            "connection log. --write-rabbitmq-config DIR also writes the node's "
            "rabbitmq.conf and enabled_plugins pointing at this service."
        ),
    )
    service.add_argument("--db", help="registry file (created if missing; default: in memory)")
    service.add_argument(
        "--fixture", default="tutorial", help="registry contents to load: tutorial or none"
    )
    service.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    service.add_argument("--port", default="0", metavar="N", help="HTTP port (default 0: free)")
    service.add_argument(
        "--advertise", help="address written in the RabbitMQ config (default: --host)"
    )
    service.add_argument(
        "--mqtt-port", default="1883", metavar="N", help="the node's MQTT port (default 1883)"
    )
    service.add_argument("--vhost", default="/", help="the MQTT plugin's virtual host (/)")
    service.add_argument(
        "--tls",
        action="store_true",
        help="the node's MQTT listener is TLS: logins count as over TLS (TLS-required "
        "products accept them)",
    )
    service.add_argument(
        "--observe",
        action="store_true",
        help="also subscribe to everything on the node (--mqtt-host, --mqtt-port) as "
        "airlab's own subscriber and log what devices publish in the message log",
    )
    service.add_argument(
        "--mqtt-host", default="127.0.0.1", help="the node --observe connects to (127.0.0.1)"
    )
    service.add_argument(
        "--endpoints-file",
        metavar="PATH",
        help="write an endpoints file (0600) whose MQTT host is the node's listener "
        "(--mqtt-host, --mqtt-port), for airsim://?cloud=PATH; removed on stop",
    )
    service.add_argument(
        "--write-rabbitmq-config",
        metavar="DIR",
        help="write rabbitmq.conf and enabled_plugins for a node into DIR, then serve",
    )
    service.set_defaults(func=_auth_service)


def _auth_service(args: argparse.Namespace) -> int:
    from airlab.cloud.fixtures import FIXTURES
    from airlab.cloud.rabbitmq_auth import OBSERVER_USER, RabbitAuth, RabbitAuthServer
    from airlab.cloud.rabbitmq_config import (
        rabbitmq_conf,
        rabbitmq_endpoints,
        write_rabbitmq_config,
    )
    from airlab.cloud.rabbitmq_engine import open_registry
    from airlab.cloud.rabbitmq_observer import RabbitObserver
    from airlab.cloud.service_support import ServiceRules, write_json_atomic

    port = _port(args.port, "port")
    mqtt_port = _port(args.mqtt_port, "mqtt_port")
    fixture = None if args.fixture in ("none", "") else args.fixture
    if fixture is not None and fixture not in FIXTURES:
        raise UsageError("fixture", f"unknown fixture {fixture!r} (known: {', '.join(FIXTURES)})")
    if args.host in ("", "0.0.0.0") and not args.advertise and args.write_rabbitmq_config:
        raise UsageError("advertise", "is required with --host 0.0.0.0 (the nodes' URL host)")
    registry = open_registry(args.db or ":memory:", fixture)
    try:
        password = secrets.token_urlsafe(24) if args.observe else None
        rules = ServiceRules(registry)
        auth = RabbitAuth(rules, vhost=args.vhost, tls=args.tls, observer_password=password)
        try:
            server = RabbitAuthServer(auth, host=args.host, port=port)
        except OSError as exc:
            raise UsageError("port", f"cannot listen on {args.host}:{port}: {exc}") from None
        urls = server.urls_at(args.advertise) if args.advertise else server.urls
        lines = [
            f"airlab cloud auth-service: serving the rules for RabbitMQ (registry "
            f"{args.db or 'in memory'}, fixture {fixture or 'none'})",
            *(f"  {name:<9}{url}" for name, url in urls.items()),
        ]
        if args.write_rabbitmq_config:
            conf = rabbitmq_conf(urls, mqtt_port=mqtt_port, vhost=args.vhost)
            paths = write_rabbitmq_config(Path(args.write_rabbitmq_config), conf)
            lines += [f"  wrote {path}" for path in paths]
        written = None
        if args.endpoints_file:
            endpoints = rabbitmq_endpoints(
                args.mqtt_host, mqtt_port, urls, tls=args.tls, db=args.db or None
            )
            try:
                written = write_json_atomic(Path(args.endpoints_file).expanduser(), endpoints)
            except OSError as exc:
                raise UsageError("endpoints_file", f"cannot write it: {exc}") from None
            lines.append(f"  endpoints {written} (MQTT: {args.mqtt_host}:{mqtt_port})")
        observer = None
        if password is not None:
            observer = RabbitObserver(rules, args.mqtt_host, mqtt_port, password)
            lines.append(
                f"  observer {OBSERVER_USER} on {args.mqtt_host}:{mqtt_port} (message log; "
                "it connects once the node is up)"
            )
        lines.append("Ctrl-C stops it.")
        try:
            _serve_until_stopped(server, observer, "\n".join(lines))
        finally:
            if written is not None:
                written.unlink(missing_ok=True)
    finally:
        registry.close()
    print("airlab cloud auth-service: stopped", flush=True)
    return 0


def _serve_until_stopped(server: Any, observer: Any, banner: str) -> None:
    with stop_on_signals() as stop, server, observer or contextlib.nullcontext():
        print(banner, flush=True)
        while not stop.wait(1.0):
            pass
