"""``airlab cloud add-product``, ``product``, ``add-device`` and ``publish``: the
console operations, on the registry file (``--db``) or through a running service's
admin API.

Example:
    >>> _on_off("on", "host_check"), _on_off(None, "host_check")
    (True, None)
"""

from __future__ import annotations

import argparse
from typing import Any

from airlab.cli.cloud_common import (
    _db_or_lab,
    _existing_db,
    _print_json,
    _required,
    _say_lab_db,
)
from airlab.errors import UsageError

__all__: list[str] = []


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
    if endpoints.get("engine") == "rabbitmq":  # the node does not say who got it
        print(f"published {size} bytes to {topic} (QoS {args.qos}) through the RabbitMQ "
              f"node at {endpoints['mqtt']}")  # fmt: skip
        return 0
    n = counts.delivered
    line = f"published {size} bytes to {topic} (QoS {args.qos}): delivered to {n} "
    line += f"client{'s' if n != 1 else ''}"
    if counts.queued:  # queued (QoS 1) for offline clean-session-0 sessions
        m = counts.queued
        line += f", queued for {m} offline session{'s' if m != 1 else ''}"
    print(line)
    return 0
