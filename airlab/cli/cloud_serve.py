"""``airlab cloud serve``: run the emulator until Ctrl-C/SIGTERM, print its endpoints
and write them as JSON (atomically, once it is ready; removed on a clean stop).

``--engine rabbitmq`` runs it with a RabbitMQ node as the MQTT broker
(:class:`~airlab.cloud.rabbitmq_engine.RabbitEngine`): the registry, the HTTP(S) auth and
dynamic-registration endpoints, the admin console and the logs stay airlab's; the node
asks airlab's rules (``--rules-port``), ``--mqtt-host``/``--mqtt-port``/``--mqtts-port``
name its listeners and ``--write-rabbitmq-config DIR`` writes its configuration. Options
of one engine given to the other are usage errors:

=========================  =============  ============================================
option                     embedded       rabbitmq
=========================  =============  ============================================
--mqtt-port, --mqtts-port  ports to bind  the node's listeners (default 1883, 8883)
--no-throttle              drops nothing  usage error: RabbitMQ does not throttle
--rules-port, --mqtt-host  usage error    the rules server's port, the node's address
--vhost                    usage error    the MQTT plugin's virtual host (/)
--write-rabbitmq-config    usage error    rabbitmq.conf, enabled_plugins, tls/ in DIR
=========================  =============  ============================================

Example:
    >>> _alive(os.getpid())
    True
    >>> _check_engine(argparse.Namespace(engine="embedded", vhost="/"))
    Traceback (most recent call last):
    ...
    airlab.errors.UsageError: vhost: is an option of --engine rabbitmq
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from airlab.cli.cloud_common import _PORT_OPTIONS, _port, stop_on_signals
from airlab.errors import UsageError

__all__ = ["add_engine_options"]

_RABBITMQ_ONLY = ("rules_port", "mqtt_host", "vhost", "write_rabbitmq_config")


def add_engine_options(serve: Any) -> None:
    """Add ``--engine`` and the RabbitMQ engine's options to ``cloud serve``'s parser.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_engine_options(parser)
        >>> args = parser.parse_args(["--engine", "rabbitmq", "--rules-port", "8090"])
        >>> args.engine, args.rules_port, args.mqtt_host, args.vhost
        ('rabbitmq', '8090', None, None)
    """
    serve.add_argument(
        "--engine",
        default="embedded",
        choices=("embedded", "rabbitmq"),
        help="the MQTT broker: embedded (airlab's own, default) or rabbitmq (a RabbitMQ "
        "node or cluster asks airlab's rules; see docs/rabbitmq.md)",
    )
    serve.add_argument(
        "--rules-port",
        metavar="N",
        help="rabbitmq: port of the rules service the node asks (default 0: a free one)",
    )
    serve.add_argument(
        "--mqtt-host",
        help="rabbitmq: the node's address (default 127.0.0.1); --mqtt-port and "
        "--mqtts-port are its listeners (default 1883 and 8883)",
    )
    serve.add_argument("--vhost", help="rabbitmq: the MQTT plugin's virtual host (default /)")
    serve.add_argument(
        "--write-rabbitmq-config",
        metavar="DIR",
        help="rabbitmq: write the node's rabbitmq.conf, enabled_plugins and TLS "
        "certificate (tls/) into DIR, then serve",
    )


def _check_engine(args: argparse.Namespace) -> str:
    """The engine asked for, once no option of the other engine is given."""
    engine = str(getattr(args, "engine", None) or "embedded")
    if engine == "rabbitmq" and getattr(args, "no_throttle", False):
        raise UsageError(
            "no_throttle", "is an option of --engine embedded: RabbitMQ throttles nothing"
        )
    if engine != "rabbitmq":
        for name in _RABBITMQ_ONLY:
            if getattr(args, name, None) is not None:
                raise UsageError(name, "is an option of --engine rabbitmq")
    return engine


def _serve(args: argparse.Namespace) -> int:
    from airlab.cloud.discovery import EndpointsError, default_endpoints_path, load_endpoints
    from airlab.cloud.mqtt_core import UPLINK_LIMITS
    from airlab.cloud.service import CloudEmulator

    engine = _check_engine(args)
    ports: dict[str, Any] = {name: _port(getattr(args, name), name) for name in _PORT_OPTIONS}
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
    if engine == "rabbitmq":
        cloud = _rabbitmq_engine(args, fixture, rate, ports)
    else:
        cloud = CloudEmulator(
            args.db or ":memory:",
            host=args.host,
            fixture=fixture,
            connect_rate_limit=rate,
            uplink_limits=None if args.no_throttle else UPLINK_LIMITS,
            advertise=args.advertise,
            **ports,
        )
    with stop_on_signals() as stop:
        cloud.start()
        try:
            lines = _rabbitmq_lines(cloud, args) if engine == "rabbitmq" else []
            _announce(cloud, cloud.write_endpoints(path), lines)
            while not stop.wait(1.0):
                if watch is not None and not _alive(watch):
                    print("airlab cloud: parent process ended, stopping", flush=True)
                    break
        finally:
            cloud.stop()
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


def _rabbitmq_engine(
    args: argparse.Namespace, fixture: str | None, rate: int | None, ports: dict[str, int]
) -> Any:
    from airlab.cloud.rabbitmq_engine import RabbitEngine

    return RabbitEngine(
        args.db or ":memory:",
        host=args.host,
        fixture=fixture,
        http_port=ports["http_port"],
        https_port=ports["https_port"],
        rules_port=_port(args.rules_port or "0", "rules_port"),
        node_host=args.mqtt_host or "127.0.0.1",
        node_mqtt_port=ports["mqtt_port"],
        node_mqtts_port=ports["mqtts_port"],
        vhost=args.vhost or "/",
        connect_rate_limit=rate,
        advertise=args.advertise,
    )


def _rabbitmq_lines(cloud: Any, args: argparse.Namespace) -> list[str]:
    """What the RabbitMQ engine adds to the banner (writing the node's config if asked)."""
    from airlab.cloud.rabbitmq_auth import OBSERVER_USER

    urls = cloud.rule_urls
    base = urls["user"].rsplit("/", 1)[0]
    lines = [
        f"  rules  {base}/{{{','.join(urls)}}} (the node's auth_http.*_path)",
        f"  mqtt and mqtts are the RabbitMQ node's listeners; observer {OBSERVER_USER} "
        "(message log) connects once the node is up",
    ]
    if args.write_rabbitmq_config:
        paths = cloud.write_rabbitmq_config(args.write_rabbitmq_config)
        lines += [f"  wrote {path}" for path in paths]
    return lines


def _announce(cloud: Any, path: Path, more: list[str] | None = None) -> None:
    ep = cloud.endpoints
    engine = " with the RabbitMQ engine" if ep.get("engine") == "rabbitmq" else ""
    lines = [
        f"airlab cloud: serving{engine} (pid {ep['pid']}, registry {ep['db'] or 'in memory'}, "
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
    lines += more or []
    lines.append("Ctrl-C stops it.")
    print("\n".join(lines), flush=True)
