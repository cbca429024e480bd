"""One switch for every lesson: classroom, bench or field, with the same notebook code.

Every notebook starts with the same two lines::

    from airlab.lesson import open_lesson
    lab = open_lesson()          # classroom; open_lesson(port="/dev/ttyUSB0") for a real module

and then uses ``lab.session`` (a :class:`~airlab.session.ModemSession`), ``lab.cloud``
(the console operations of the cloud emulator; ``None`` in the field) and
``lab.identity`` (the device certificate, 设备证书).  The three settings:

``classroom`` (no ``port``; the default)
    the simulated Air780EP (``airsim://?profile=…&seed=…&cloud=<endpoints file>``) and
    the local cloud emulator of :func:`~airlab.cloud.discovery.cloud_for_lesson` (the
    ``airlab lab`` service when it runs, else one started in this process).  The
    simulator resolves the Aliyun host names to the emulator.  Identity: a device of
    this run's own (see below).
``bench`` (a real ``port``, ``cloud="auto"`` or an endpoints file)
    a real Air780EP on a serial port and a running emulator
    (``airlab cloud serve --host 0.0.0.0 --fixture tutorial``).  A real module reaches the
    emulator **by IP**: its DNS does not know the emulator, so the Aliyun host names must
    be replaced by the emulator's address: pass ``**lab.mqtt_target()`` (``host`` /
    ``port``) to the MQTT recipes and ``**lab.auth_target()`` (``auth_base``) to the
    HTTPS ones; both are empty in the classroom and the field, so one cell serves all
    three settings.  Identity: a device of this run's own (see below).
``field`` (a real ``port``, ``cloud="real"``)
    a real module and the real Alibaba Cloud; no console operations (``lab.cloud`` is
    ``None``).  Identity from the environment: ``AIRLAB_PRODUCT_KEY``,
    ``AIRLAB_DEVICE_NAME``, ``AIRLAB_DEVICE_SECRET``, ``AIRLAB_PRODUCT_SECRET`` (optional)
    and ``AIRLAB_REGION`` (default ``cn-shanghai``).

**Each run has its own device.**  In the classroom and on the bench, ``open_lesson``
adds a fresh device to the tutorial's product ``k1hipglLdjU`` (its DeviceName an
IMEI-like 15-digit number starting ``86948``, as the tutorial names devices by IMEI; a
simulated module answers ``AT+CGSN`` with it).  So a lesson run twice, two lessons at
once, or a lesson beside a running ``airlab lab`` never share a login, and a self-check
sees only what this run did.  ``lab.tutorial`` keeps the tutorial's own values, to
compare with its captures; ``own_device=False`` uses the tutorial's device instead.

Arguments left at ``None`` come from the environment, so a whole room can be switched
without editing a notebook: ``AIRLAB_PORT`` (a serial port: bench or field),
``AIRLAB_CLOUD`` (``auto``, ``real`` or an endpoints file), ``AIRLAB_PROFILE``
(``instant`` by default, ``tutorial`` for realistic delays) and ``AIRLAB_SEED``.

Who the lesson logs in as (:class:`Identity`, seats) is :mod:`airlab.lesson_identity`; the
few helpers the lessons need that the library lacks (:func:`publish_in_background`,
:func:`post_form_declaring`) are :mod:`airlab.lesson_helpers`; all are importable from here.

Example:
    >>> from airlab.lesson import open_lesson
    >>> lab = open_lesson(profile="instant")  # doctest: +SKIP
    >>> lab.setting, lab.identity.device_name  # doctest: +SKIP
    ('classroom', '868488076506128')
    >>> lab.session.mqtt_status()  # doctest: +SKIP
    0
    >>> lab.close()  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

import airlab  # noqa: F401  (registers airsim://)
from airlab.cloud.discovery import RemoteCloud, cloud_for_lesson, load_endpoints
from airlab.cloud.names import LESSON_IMEI_PREFIX, new_device_name
from airlab.cloud.service import CloudConsole, CloudEmulator
from airlab.errors import UsageError
from airlab.lesson_helpers import FormReply, post_form_declaring, publish_in_background
from airlab.lesson_identity import (
    ENV_CLASS,
    ENV_SEAT,
    IDENTITY_ENV,
    Identity,
    _choose_seat,
)
from airlab.lesson_identity import identity_for as _identity_for
from airlab.lesson_identity import provision as _provision
from airlab.session import ModemSession

__all__ = [
    "ENV_CLASS",
    "ENV_CLOUD",
    "ENV_PORT",
    "ENV_PROFILE",
    "ENV_SEAT",
    "ENV_SEED",
    "IDENTITY_ENV",
    "LESSON_IMEI_PREFIX",
    "FormReply",
    "Identity",
    "Lesson",
    "Setting",
    "new_device_name",
    "open_lesson",
    "parse_port",
    "post_form_declaring",
    "publish_in_background",
]

Setting = Literal["classroom", "bench", "field"]

ENV_PORT = "AIRLAB_PORT"
ENV_CLOUD = "AIRLAB_CLOUD"
ENV_PROFILE = "AIRLAB_PROFILE"
ENV_SEED = "AIRLAB_SEED"


# ---------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class PortSpec:
    """What a port string names: ``simulated`` (``airsim://``) or a real port."""

    url: str
    simulated: bool
    options: Mapping[str, str] = field(default_factory=dict)


def parse_port(port: str) -> PortSpec:
    """Classify a port string: ``airsim://…`` is the simulator (its options parsed),
    anything else (``/dev/ttyUSB0``, ``COM5``, ``socket://host:port``, ``rfc2217://…``)
    a real module.

    Example:
        >>> parse_port("airsim://?profile=tutorial&seed=2").options["profile"]
        'tutorial'
        >>> parse_port("/dev/ttyUSB0").simulated
        False
    """
    if not isinstance(port, str) or not port.strip():
        raise UsageError("port", f"must be a port name or URL such as /dev/ttyUSB0, got {port!r}")
    text = port.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() == "airsim":
        return PortSpec(text, True, dict(parse_qsl(parts.query, keep_blank_values=True)))
    return PortSpec(text, False)


def _sim_url(spec: PortSpec | None, profile: str, seed: int, endpoints_file: str, imei: str) -> str:
    """The airsim:// URL: the given one (adding the cloud and IMEI when missing) or a
    new one; the module's IMEI is the lesson device's name, as in the tutorial."""
    if spec is None:
        return f"airsim://?profile={profile}&seed={seed}&imei={imei}&cloud={quote(endpoints_file)}"
    url = spec.url
    for key, value in (("imei", imei), ("cloud", quote(endpoints_file))):
        if key not in spec.options:
            sep = "&" if urlsplit(url).query else ("" if url.endswith("?") else "?")
            url = f"{url}{sep}{key}={value}"
    return url


# ---------------------------------------------------------------------------- endpoints

_files_lock = threading.Lock()
_files: dict[int, tuple[CloudConsole, str]] = {}
_tmpdir: str | None = None


def _remove_tmpdir() -> None:
    if _tmpdir is not None:
        shutil.rmtree(_tmpdir, ignore_errors=True)


def _endpoints_file(cloud: CloudConsole) -> str:
    """The endpoints file of ``cloud`` (written once to a temporary folder for an
    in-process emulator, which has none)."""
    global _tmpdir
    if isinstance(cloud, RemoteCloud):
        path = cloud.endpoints.get("endpoints_file")
        if isinstance(path, str) and path:
            return path
    with _files_lock:
        known = _files.get(id(cloud))
        if known is not None and known[0] is cloud and Path(known[1]).is_file():
            return known[1]
        if _tmpdir is None:
            _tmpdir = tempfile.mkdtemp(prefix="airlab-lesson-")
            atexit.register(_remove_tmpdir)
        target = Path(_tmpdir) / f"cloud-{len(_files)}.json"
        if isinstance(cloud, CloudEmulator):
            written = str(cloud.write_endpoints(target))
        else:  # a console without a file of its own: write its endpoints
            import json

            data = getattr(cloud, "endpoints", None)
            if not isinstance(data, Mapping):
                raise UsageError("cloud", "this cloud has no endpoints to give the simulator")
            target.write_text(json.dumps(dict(data)), encoding="utf-8")
            written = str(target)
        _files[id(cloud)] = (cloud, written)
        return written


# ---------------------------------------------------------------------------- the lesson


@dataclass
class Lesson:
    """A lesson's session, cloud and identity (see :func:`open_lesson`).

    ``setting``: ``"classroom"``, ``"bench"`` or ``"field"``; ``port_url``: what the
    session was opened on; ``endpoints_file``: the emulator's endpoints (``None`` in the
    field).  :meth:`reopen` opens a fresh session on the same port with other session
    options; :meth:`close` closes the session (the emulator keeps running for the next
    lesson).
    """

    session: ModemSession
    cloud: CloudConsole | None
    identity: Identity
    setting: Setting
    port_url: str
    endpoints_file: str | None = None
    profile: str | None = None
    seed: int | None = None
    transcript: str | os.PathLike[str] | None = field(default=None, repr=False)
    session_options: dict[str, Any] = field(default_factory=dict, repr=False)
    opened: float = field(default_factory=time.time)

    @property
    def module(self) -> Any | None:
        """The simulated module behind an ``airsim://`` port (to inject what only the
        radio can do: ``lab.module.lose_pdp()``), or ``None`` on a real port or a pty:
        a lesson section that needs it says so and is skipped there."""
        return getattr(self.session.port, "module", None)

    @property
    def tutorial(self) -> Identity:
        """The tutorial's own device (``k1hipglLdjU`` / ``868488076506128``): the values
        its captures were made with, to compare a signature or a length with them."""
        return Identity.tutorial()

    def new_device(self, *, activated: bool = False) -> Identity:
        """Add one more fresh device to this lesson's product and return its identity
        (with the product secret, for dynamic registration).

        ``activated=False`` (the default) leaves it as the console creates it: never
        logged in, so dynamic registration may issue its secret.  ``activated=True``
        marks it activated, like a device that has been online once.

        Example:
            >>> lab = open_lesson()  # doctest: +SKIP
            >>> other = lab.new_device()  # doctest: +SKIP
            >>> other.device_name != lab.identity.device_name  # doctest: +SKIP
            True
        """
        if self.cloud is None:
            raise UsageError(
                "new_device",
                "the field setting uses your own device on the real Alibaba Cloud: add "
                "devices in its console (设备 → 添加设备), not from the notebook",
            )
        return _provision(
            self.cloud, self.identity.product_key, self.identity.region,
            product_secret=self.identity.product_secret, activated=activated,
        )  # fmt: skip

    def reopen(self, **session_options: Any) -> ModemSession:
        """Close the session and open a new one on the same port, with these
        :class:`~airlab.session.ModemSession` options (``late_mconnect="warn"`` …).

        A simulated module starts afresh (power-on state); a real one keeps its state.
        """
        self.session.close()
        self.session_options = dict(session_options)
        self.session = ModemSession(
            self.port_url, transcript=self.transcript, **self.session_options
        )
        return self.session

    def mqtt_target(self, tls: bool = True) -> dict[str, Any]:
        """``host`` / ``port`` for :func:`~airlab.session.recipes.direct_mqtt`: the
        emulator's address on the bench (a real module reaches it by IP), else ``{}``
        (the Aliyun host name, resolved by the simulator or the real DNS).

        The port is the emulator's MQTT port for TLS (``tls=True``) and plain TCP alike:
        it takes both, like the platform's 1883, so with ``airlab cloud serve
        --mqtt-port 1883`` a lesson sends the tutorial's own ``AT+SSLMIPSTART=…,1883``
        (docs/bench.md)."""
        if self.setting != "bench" or self.cloud is None:
            return {}
        endpoints = getattr(self.cloud, "endpoints", {})
        value = str(endpoints.get("mqtt", ""))
        host, _, port = value.rpartition(":")
        return {"host": host.strip("[]"), "port": int(port)}

    def auth_target(self) -> dict[str, Any]:
        """``auth_base`` for the HTTPS recipes (:func:`~airlab.session.recipes.http_auth_then_mqtt`,
        :func:`~airlab.session.recipes.register_device`): the emulator's HTTPS address on the
        bench (a real module's DNS does not know the emulator), else ``{}`` (the Aliyun name
        ``iot-auth.<region>.aliyuncs.com``, resolved by the simulator or the real DNS).

        Example:
            >>> recipes.http_auth_then_mqtt(lab.session, **lab.identity.device(),
            ...     **lab.mqtt_target(), **lab.auth_target())  # doctest: +SKIP
        """
        if self.setting != "bench" or self.cloud is None:
            return {}
        base = str(getattr(self.cloud, "endpoints", {}).get("https", "")).rstrip("/")
        return {"auth_base": base} if base else {}

    def describe(self) -> str:
        """One line: which module and which cloud (no ports or paths: stable text)."""
        if self.setting == "classroom":
            module = f"simulated Air780EP (profile {self.profile}, seed {self.seed})"
        else:
            module = f"Air780EP on {self.port_url}"
        if self.cloud is None:
            cloud = "the real Alibaba Cloud IoT Platform"
        elif isinstance(self.cloud, RemoteCloud):
            cloud = "the running cloud emulator (airlab lab)"
        else:
            cloud = "a local cloud emulator"
        who = f"device {self.identity.product_key}/{self.identity.device_name}"
        origin = {
            "tutorial": "the tutorial's",
            "lesson": "this run's own",
            "seat": f"seat {self.identity.seat}"
            + (f", {self.identity.label}" if self.identity.label else ""),
        }.get(self.identity.source, "from AIRLAB_* variables")
        return f"{self.setting}: {module} + {cloud}; {who} ({origin})"

    def __str__(self) -> str:
        return self.describe()

    def close(self) -> None:
        """Close the session (idempotent)."""
        self.session.close()

    def __enter__(self) -> Lesson:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _env_profile(profile: str | None) -> str:
    value = profile if profile is not None else (os.environ.get(ENV_PROFILE) or "instant")
    from airlab.sim.profiles import PROFILES

    if value not in PROFILES:
        raise UsageError("profile", f"unknown profile {value!r} (choose {', '.join(PROFILES)})")
    return value


def _env_seed(seed: int | None) -> int:
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UsageError("seed", f"must be an integer, got {seed!r}")
        return seed
    text = (os.environ.get(ENV_SEED) or "0").strip()
    try:
        return int(text)
    except ValueError:
        raise UsageError(ENV_SEED, f"must be an integer, got {text!r}") from None


def _choose_cloud(cloud: str | os.PathLike[str] | None) -> str:
    value = cloud if cloud is not None else (os.environ.get(ENV_CLOUD) or "auto")
    value = os.fspath(value)
    if not value.strip():
        raise UsageError("cloud", "must be 'auto', 'real' or the path of an endpoints file")
    return value.strip()


def open_lesson(
    port: str | None = None,
    *,
    profile: str | None = None,
    seed: int | None = None,
    cloud: str | os.PathLike[str] | None = None,
    transcript: str | os.PathLike[str] | None = None,
    own_device: bool = True,
    seat: str | os.PathLike[str] | None = None,
    class_name: str | None = None,
    **session_options: Any,
) -> Lesson:
    """Open the session, cloud and identity of a lesson, in one of three settings.

    ``port``: ``None`` (``$AIRLAB_PORT``, else the simulator: classroom), an
    ``airsim://…`` URL (classroom with that simulator; its ``cloud`` added when missing)
    or a real serial port (``/dev/ttyUSB0``, ``COM5``, ``socket://…``: bench or field).
    ``profile`` / ``seed``: the simulator's latency profile and seed (``None``:
    ``$AIRLAB_PROFILE`` or ``instant``, ``$AIRLAB_SEED`` or 0).  ``cloud``: ``"auto"``
    (the running ``airlab lab`` emulator, or an in-process one in the classroom),
    ``"real"`` (the field: the real Alibaba Cloud) or an endpoints file; ``None`` reads
    ``$AIRLAB_CLOUD``.  ``transcript``: a JSONL path for the session's capture.
    ``own_device``: add a fresh device for this run (default; classroom and bench) or
    use the tutorial's device.  ``seat``: a student's seat in a class
    (``airlab class create``): its id (``"07"``: the device of that seat in the running
    emulator; ``class_name`` or ``$AIRLAB_CLASS`` when several classes have it) or the
    path of the handout's seat file (``"seat-07.json"``: its device is added to this
    emulator when missing, for a student's own laptop); ``None`` reads ``$AIRLAB_SEAT``,
    else the seat picked once with :class:`~airlab.widgets.SeatPicker`.
    A seat replaces the run's own device: the same device in every lesson.  Other
    keyword arguments go to :class:`~airlab.session.ModemSession`.

    Example:
        >>> lab = open_lesson()  # doctest: +SKIP
        >>> print(lab)  # doctest: +SKIP
        classroom: simulated Air780EP (profile instant, seed 0) + a local cloud emulator; ...
        >>> lab.close()  # doctest: +SKIP
    """
    if port is None:
        port = (os.environ.get(ENV_PORT) or "").strip() or None
    spec = parse_port(port) if port is not None else None
    choice = _choose_cloud(cloud)
    use_seat, saved_class = _choose_seat(seat)
    class_name = class_name or saved_class
    simulated = spec is None or spec.simulated

    if simulated:
        if choice == "real":
            raise UsageError(
                "cloud",
                "the simulated module only reaches the local cloud emulator: use cloud='auto' "
                "(or an endpoints file), or give a real serial port for the field setting",
            )
        use_profile = _env_profile(
            profile if spec is None else spec.options.get("profile", profile)
        )
        raw_seed = spec.options.get("seed") if spec is not None else None
        use_seed = _env_seed(int(raw_seed) if raw_seed and raw_seed.lstrip("-").isdigit() else seed)
        console = cloud_for_lesson() if choice == "auto" else RemoteCloud(load_endpoints(choice))
        endpoints = _endpoints_file(console)
        identity = _identity_for(console, own_device, use_seat, class_name)
        url = _sim_url(spec, use_profile, use_seed, endpoints, identity.device_name)
        session = ModemSession(url, transcript=transcript, **session_options)
        return Lesson(
            session,
            console,
            identity,
            "classroom",
            url,
            endpoints,
            use_profile,
            use_seed,
            transcript,
            dict(session_options),
        )

    assert spec is not None
    if choice == "real":
        identity = Identity.from_env()
        session = ModemSession(spec.url, transcript=transcript, **session_options)
        return Lesson(
            session, None, identity, "field", spec.url, None, None, None, transcript,
            dict(session_options),
        )  # fmt: skip

    endpoints_data = load_endpoints(None if choice == "auto" else choice)
    console = RemoteCloud(endpoints_data)
    address = str(endpoints_data.get("address") or "")
    local_peer = _is_local_peer(spec.url)
    if not local_peer and (address.startswith("127.") or address in ("localhost", "::1")):
        warnings.warn(
            f"the cloud emulator listens on {address}, which a real module cannot reach: "
            "start it with 'airlab cloud serve --host 0.0.0.0 --fixture tutorial'",
            UserWarning,
            stacklevel=2,
        )
    identity = _identity_for(console, own_device, use_seat, class_name)
    session = ModemSession(spec.url, transcript=transcript, **session_options)
    return Lesson(
        session, console, identity, "bench", spec.url,
        str(endpoints_data.get("endpoints_file")), None, None, transcript, dict(session_options),
    )  # fmt: skip


def _is_local_peer(url: str) -> bool:
    """A pty (``airlab sim serve --pty``) or a TCP port on this machine: a program here,
    which reaches an emulator on 127.0.0.1 (a real module on a USB port cannot)."""
    if url.startswith(("socket://127.", "socket://localhost", "socket://[::1]")):
        return True
    try:
        return os.path.realpath(url).startswith(("/dev/pts/", "/dev/ptmx"))
    except (OSError, ValueError):
        return False
