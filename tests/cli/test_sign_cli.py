"""``airlab sign ...``: one JSON object on stdout, one-line errors naming the option."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from airlab.cli import sign as sign_cli
from airlab.errors import AirlabError, UsageError

PK, DN, DS, PS = (
    "k1hipglLdjU",
    "868488076506128",
    "fef32adf6dad46c2c7cbf335d3a7b021",
    "8LQwOYSZMwp3DFBd",
)
IDENTITY = ["--product-key", PK, "--device-name", DN]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict | None, str]:
    """Parse with only the sign group and dispatch like airlab.cli.main does."""
    parser = argparse.ArgumentParser(prog="airlab")
    sign_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except UsageError as exc:
        print(f"airlab: error: {exc.option}: {exc.message}", file=sys.stderr)
        code = 2
    except AirlabError as exc:
        print(f"airlab: error: {exc}", file=sys.stderr)
        code = 1
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_direct_tutorial(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sign", "direct", *IDENTITY, "--device-secret", DS], capsys)
    assert code == 0 and out is not None
    assert out["client_id"] == "868488076506128|securemode=3,signmethod=hmacmd5|"
    assert out["username"] == "868488076506128&k1hipglLdjU"
    assert out["password"] == "0f655b12adf519b9a7a2b0a990f398b6"
    assert out["host"] == "k1hipglLdjU.iot-as-mqtt.cn-shanghai.aliyuncs.com"
    assert out["port"] == 1883
    assert out["sign_content"].startswith("clientId868488076506128")


def test_direct_all_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "sign",
            "direct",
            "--product-key",
            "pk",
            "--device-name",
            "device",
            "--device-secret",
            "secret",
            "--client-id",
            "12345",
            "--sign-method",
            "HmacSHA1",
            "--timestamp",
            "789",
            "--secure-mode",
            "3",
            "--region",
            "cn-beijing",
            "--upper",
            "--extra-params",
            "ext=1",
            "--expected",
            "fafd82a3d602b37fb0fa8b7892f24a477f851a14",
        ],
        capsys,
    )
    assert code == 0 and out is not None
    assert out["client_id"] == "12345|securemode=3,signmethod=HmacSHA1,timestamp=789,ext=1|"
    assert out["password"] == "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"
    assert out["host"] == "pk.iot-as-mqtt.cn-beijing.aliyuncs.com"
    assert out["matches"] is True


def test_http_auth(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sign", "http-auth", *IDENTITY, "--device-secret", DS], capsys)
    assert code == 0 and out is not None
    assert out["url"] == "https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename"
    assert out["length"] == 112
    assert out["body"].startswith("productKey=k1hipglLdjU&sign=0f655b12")
    assert out["content_type"] == "application/x-www-form-urlencoded"
    assert "sign_content" in out


def test_http_auth_c3_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "sign",
            "http-auth",
            *IDENTITY,
            "--device-secret",
            DS,
            "--field-order",
            "c3",
            "--sign-method",
            "hmacsha256",
            "--timestamp",
            "2524608000000",
            "--version",
            "default",
            "--resources",
            "mqtt",
            "--client-id",
            f"{PK}.{DN}",
            "--upper",
        ],
        capsys,
    )
    assert code == 0 and out is not None
    names = [item.split("=")[0] for item in out["body"].split("&")]
    assert names == [
        "productKey",
        "deviceName",
        "signmethod",
        "sign",
        "version",
        "clientId",
        "timestamp",
        "resources",
    ]


def test_register_with_tutorial_random(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["sign", "register", *IDENTITY, "--product-secret", PS, "--random", "123456"], capsys
    )
    assert code == 0 and out is not None
    assert out["length"] == 120
    assert out["random"] == "123456"
    assert out["body"].endswith("sign=20558baadb2a0b04847767980f0ee67b&signMethod=HmacMD5")
    assert out["url"] == "https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device"


def test_register_default_random_is_fresh(capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run(["sign", "register", *IDENTITY, "--product-secret", PS], capsys)
    _, second, _ = run(["sign", "register", *IDENTITY, "--product-secret", PS], capsys)
    assert first is not None and second is not None
    assert len(first["random"]) == 15 and first["random"].isalnum()
    assert first["random"] != second["random"]
    assert f"random={first['random']}" in first["body"]


def test_mqtt_register(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "sign",
            "mqtt-register",
            *IDENTITY,
            "--product-secret",
            PS,
            "--random",
            "123456",
            "--auth-type",
            "regnwl",
        ],
        capsys,
    )
    assert code == 0 and out is not None
    # defaults follow the tutorial: hmacmd5, the device name as client id, its key order
    assert out["client_id"] == (
        "868488076506128|securemode=2,authType=regnwl,random=123456,signmethod=hmacmd5|"
    )
    assert out["password"] == "20558baadb2a0b04847767980f0ee67b"
    assert out["username"] == "868488076506128&k1hipglLdjU"
    assert out["port"] == 1883
    code, out, _ = run(
        [
            "sign",
            "mqtt-register",
            *IDENTITY,
            "--product-secret",
            PS,
            "--random",
            "123456",
            "--layout",
            "sdk",
            "--sign-method",
            "hmacsha256",
        ],
        capsys,
    )
    assert code == 0 and out is not None
    assert out["client_id"] == (
        "868488076506128.k1hipglLdjU|random=123456,authType=register,securemode=2,"
        "signmethod=hmacsha256|"
    )


@pytest.mark.parametrize(
    "argv, option",
    [
        (["sign", "direct", *IDENTITY, "--device-secret", ""], "--device-secret"),
        (
            ["sign", "direct", "--product-key", PK, "--device-name", "a&b", "--device-secret", DS],
            "--device-name",
        ),
        (
            ["sign", "direct", *IDENTITY, "--device-secret", DS, "--sign-method", "sha9"],
            "--sign-method",
        ),
        (
            ["sign", "direct", *IDENTITY, "--device-secret", DS, "--secure-mode", "tls"],
            "--secure-mode",
        ),
        (["sign", "direct", *IDENTITY, "--device-secret", DS, "--timestamp", "now"], "--timestamp"),
        (["sign", "direct", *IDENTITY, "--device-secret", DS, "--expected", "xyz"], "--expected"),
        (
            ["sign", "direct", *IDENTITY, "--device-secret", DS, "--extra-params", "novalue"],
            "--extra-params",
        ),
        (
            ["sign", "http-auth", *IDENTITY, "--device-secret", DS, "--field-order", "x"],
            "--field-order",
        ),
        (
            ["sign", "register", *IDENTITY, "--product-secret", PS, "--sign-method", "md5"],
            "--sign-method",
        ),
        (
            [
                "sign",
                "mqtt-register",
                *IDENTITY,
                "--product-secret",
                PS,
                "--random",
                "1",
                "--auth-type",
                "x",
            ],
            "--auth-type",
        ),
        (
            [
                "sign",
                "mqtt-register",
                *IDENTITY,
                "--product-secret",
                PS,
                "--random",
                "1",
                "--secure-mode",
                "3",
            ],
            "--secure-mode",
        ),
    ],
)
def test_bad_input_is_a_one_line_error_naming_the_option(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out is None
    assert err.count("\n") == 1
    assert err.startswith(f"airlab: error: {option}: ")


def test_missing_required_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run(["sign", "direct", "--product-key", PK], capsys)
    assert info.value.code == 2
    assert "--device-name" in capsys.readouterr().err


def test_python_dash_m_airlab_sign_direct() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "airlab", "sign", "direct", *IDENTITY, "--device-secret", DS],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["password"] == "0f655b12adf519b9a7a2b0a990f398b6"
    bad = subprocess.run(
        [sys.executable, "-m", "airlab", "sign", "direct", *IDENTITY, "--device-secret", ""],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "airlab: error: --device-secret: must not be empty"
