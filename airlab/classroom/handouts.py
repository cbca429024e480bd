"""Handouts for a class: one printable page per student, and a seat file per student.

``write_handouts(info, out_dir)`` writes (folder 0700, files 0600: they hold secrets):

* ``index.html``: every student's page, one per printed sheet (print it from a browser);
* ``seat-<seat>.html``: one student's page (to send by mail or chat);
* ``seat-<seat>.json``: the student's seat file, for a lesson on their own laptop
  (``open_lesson(seat="seat-07.json")``); the device certificate it holds is added to
  that laptop's emulator on first use;
* ``roster.csv``: seat, name, ProductKey, DeviceName (no secrets), for the teacher.

Each page gives the device certificate (设备证书), the product certificate (产品证书,
for the dynamic-registration lessons), the platform's host names and, when the
emulator is already serving, its addresses, and the one setting the lessons need.

Example:
    >>> import tempfile
    >>> from airlab.cloud.registry import Registry
    >>> from airlab.classroom import create_class, numbered_seats
    >>> room = create_class(Registry(), numbered_seats(2), name="demo")
    >>> files = write_handouts(room, tempfile.mkdtemp())
    >>> sorted(p.name for p in files)[:3]
    ['index.html', 'roster.csv', 'seat-01.html']
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airlab.classroom.create import ClassInfo, SeatCard
from airlab.cloud.fixtures import TUTORIAL_REGION
from airlab.errors import UsageError

__all__ = ["handout_html", "is_seat_file", "read_seat_file", "seat_file_name", "write_handouts"]

_STYLE = """
body { font-family: "Noto Sans CJK SC", "Noto Sans", sans-serif; margin: 0; }
.page { padding: 16mm; break-after: page; page-break-after: always; }
.page:last-child { break-after: auto; page-break-after: auto; }
h1 { font-size: 20pt; margin: 0 0 4mm; } h2 { font-size: 13pt; margin: 6mm 0 2mm; }
table { border-collapse: collapse; } td, th { border: 1px solid #999; padding: 1.5mm 3mm;
  text-align: left; vertical-align: top; }
code, .v { font-family: "Noto Sans Mono CJK SC", monospace; font-size: 11pt; }
.note { color: #444; font-size: 10pt; }
"""


def is_seat_file(seat: str) -> bool:
    """True when ``seat`` names a seat file (a path) rather than a seat id: seat ids have
    no ``/`` and do not end in ``.json``.

    Example:
        >>> is_seat_file("07"), is_seat_file("handouts/seat-07.json"), is_seat_file("s.json")
        (False, True, True)
    """
    return seat.endswith(".json") or os.sep in seat or "/" in seat


def read_seat_file(path: str | os.PathLike[str]) -> SeatCard:
    """The card a handout's seat file holds (written by :func:`write_handouts`); a
    missing, unreadable, foreign or incomplete file raises
    :class:`~airlab.errors.UsageError` (field ``seat``) saying which.

    Example:
        >>> import tempfile
        >>> from airlab.cloud.registry import Registry
        >>> from airlab.classroom import create_class, numbered_seats
        >>> room = create_class(Registry(), numbered_seats(1), name="demo")
        >>> folder = tempfile.mkdtemp(); _ = write_handouts(room, folder)
        >>> read_seat_file(Path(folder) / "seat-01.json") == room.cards[0]
        True
    """
    from airlab.aliyun import validate_platform_device_name, validate_platform_product_key

    file = Path(path).expanduser()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("seat", f"cannot read a seat file at {file}: no seat file there") from None
    except (OSError, ValueError) as exc:
        raise UsageError("seat", f"cannot read a seat file at {file}: {exc}") from None
    if not isinstance(data, dict) or data.get("airlab_seat") != 1:
        raise UsageError("seat", f"{file} is not an airlab seat file (from 'airlab class create')")
    try:
        return SeatCard(
            class_name=str(data.get("class") or ""),
            seat=str(data.get("seat") or ""),
            label=str(data.get("label") or ""),
            product_key=validate_platform_product_key(str(data["product_key"])),
            device_name=validate_platform_device_name(str(data["device_name"])),
            device_secret=str(data["device_secret"]),
            product_secret=str(data["product_secret"]),
            region=str(data.get("region") or TUTORIAL_REGION),
        )
    except KeyError as exc:
        raise UsageError("seat", f"the seat file {file} lacks {exc.args[0]}") from None


def seat_file_name(seat: str, suffix: str = ".json") -> str:
    """``seat-<seat><suffix>`` (seat ids are checked: safe in a file name)."""
    return f"seat-{seat}{suffix}"


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        f"<tr><th>{html.escape(k)}</th><td class='v'>{html.escape(v)}</td></tr>" for k, v in pairs
    )


def _page(card: SeatCard, endpoints: Mapping[str, Any] | None) -> str:
    e = html.escape
    who = f"seat {card.seat}" + (f" · {card.label}" if card.label else "")
    region = card.region
    names = [
        ("MQTT", f"{card.product_key}.iot-as-mqtt.{region}.aliyuncs.com:1883 (TLS or plain)"),
        ("HTTPS auth", f"https://iot-auth.{region}.aliyuncs.com/auth"),
        ("your topics", f"/{card.product_key}/{card.device_name}/user/update (publish), "
         f"/{card.product_key}/{card.device_name}/user/get (subscribe)"),
    ]  # fmt: skip
    served = ""
    if endpoints:
        pairs = [(k, str(endpoints[k])) for k in ("mqtt", "mqtts", "https") if endpoints.get(k)]
        if pairs:
            served = (
                "<h2>The class's cloud emulator</h2><table>" + _rows(pairs) + "</table>"
                "<p class='note'>The simulated module resolves the platform's host names to "
                "it; a real module dials these addresses.</p>"
            )
    seat_file = seat_file_name(card.seat)
    return f"""<section class="page">
<h1>airlab · class {e(card.class_name)} · {e(who)}</h1>
<h2>Your device certificate (设备证书)</h2>
<table>{
        _rows(
            [
                ("ProductKey", card.product_key),
                ("DeviceName", card.device_name),
                ("DeviceSecret", card.device_secret),
                ("Region", region),
            ]
        )
    }</table>
<h2>Product certificate (产品证书, for dynamic registration 一型一密)</h2>
<table>{_rows([("ProductKey", card.product_key), ("ProductSecret", card.product_secret)])}</table>
<h2>Where the device logs in</h2>
<table>{_rows(names)}</table>
{served}
<h2>Your lesson setting</h2>
<p>In the class's JupyterLab, every lesson's first cell becomes
<code>lab = open_lesson(seat="{e(card.seat)}")</code>, or set it once before starting
JupyterLab: <code>export AIRLAB_SEAT={e(card.seat)}</code>.</p>
<p>On your own laptop (<code>make lab</code>), save <code>{e(seat_file)}</code> and use
<code>open_lesson(seat="path/to/{e(seat_file)}")</code> or
<code>export AIRLAB_SEAT=path/to/{e(seat_file)}</code>.</p>
<p class="note">Keep this page to yourself: the DeviceSecret is your device's password. Two
people using one device kick each other off (the platform allows one session per
device).</p>
</section>"""


def handout_html(cards: list[SeatCard], endpoints: Mapping[str, Any] | None = None) -> str:
    """A printable HTML document with one page per card."""
    title = html.escape(f"airlab class {cards[0].class_name}" if cards else "airlab class")
    pages = "\n".join(_page(card, endpoints) for card in cards)
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body>\n{pages}\n</body></html>\n"
    )


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
    return path


def write_handouts(
    info: ClassInfo, out_dir: str | os.PathLike[str], endpoints: Mapping[str, Any] | None = None
) -> list[Path]:
    """Write the class's handouts into ``out_dir`` (created 0700) and return the files."""
    folder = Path(out_dir).expanduser()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = [_write_private(folder / "index.html", handout_html(list(info.cards), endpoints))]
    for card in info.cards:
        page = handout_html([card], endpoints)
        written.append(_write_private(folder / seat_file_name(card.seat, ".html"), page))
        seat = {"airlab_seat": 1, **card.as_dict()}
        written.append(
            _write_private(folder / seat_file_name(card.seat), json.dumps(seat, indent=2) + "\n")
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["seat", "name", "product_key", "device_name"])
    for card in info.cards:
        writer.writerow([card.seat, card.label, card.product_key, card.device_name])
    written.append(_write_private(folder / "roster.csv", buffer.getvalue()))
    return written
