"""Issue 8 item 3: files that hold secrets are the owner's alone, and log output masks
the secrets that messages carry unless asked."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from airlab.aliyun.dynreg import mqtt_register_credentials
from airlab.cli import main
from airlab.cloud import CloudEmulator
from airlab.cloud.fixtures import TUTORIAL_DEVICE_NAME as DN
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_KEY as PK
from airlab.cloud.fixtures import TUTORIAL_PRODUCT_SECRET
from airlab.cloud.registry import Registry
from tests.cloud.broker_helpers import Client


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_registry_and_its_wal_are_private(tmp_path: Path, open_umask) -> None:
    db = tmp_path / "lab.db"
    with CloudEmulator(db, fixture="tutorial") as cloud:
        cloud.add_device(PK, "dev0002")
        cloud.flush()
        for name in ("lab.db", "lab.db-wal", "lab.db-shm"):
            assert (tmp_path / name).exists(), name
            assert mode(tmp_path / name) == 0o600, name


def test_an_existing_readable_registry_is_made_private(tmp_path: Path, open_umask) -> None:
    db = tmp_path / "old.db"
    Registry(db).close()
    os.chmod(db, 0o644)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").touch(mode=0o644)
    Registry(db).close()
    assert mode(db) == 0o600
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{db}{suffix}")
        assert not companion.exists() or mode(companion) == 0o600


def test_log_masks_a_registration_push_unless_asked(tmp_path, open_umask, capsys) -> None:
    db = tmp_path / "lab.db"
    with CloudEmulator(db, fixture="tutorial") as cloud:
        cloud.registry.set_dynamic_registration(PK, True)
        cred = mqtt_register_credentials(PK, DN, TUTORIAL_PRODUCT_SECRET, random="r0001")
        port = int(cloud.endpoints["mqtts"].rsplit(":", 1)[1])
        c = Client(port, client_id=cred.client_id, username=cred.username,
                   password=cred.password, tls=cloud.ssl_client_context())  # fmt: skip
        try:
            assert c.connect() == "Success"
            secret = json.loads(c.get().payload)["deviceSecret"]
        finally:
            c.stop()
        cloud.flush()
    for extra in ([], ["--csv"]):
        assert main(["cloud", "log", "--db", str(db), *extra]) == 0
        out = capsys.readouterr().out
        assert "/ext/register" in out and secret not in out
    assert '""deviceSecret"":""' + "*" * len(secret) in out  # the CSV keeps its length
    assert main(["cloud", "log", "--db", str(db), "--csv", "--show-secrets"]) == 0
    assert secret in capsys.readouterr().out
