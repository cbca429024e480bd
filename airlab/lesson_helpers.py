"""The few helpers the lessons need that the library lacks: :func:`publish_in_background`
(a QoS1 publish left waiting for its PUBACK) and :func:`post_form_declaring` (an HTTPS
form posted with a wrong ``AT+HTTPDATA`` length).

Example:
    >>> from airlab.lesson import open_lesson  # doctest: +SKIP
    >>> lab = open_lesson()  # doctest: +SKIP
    >>> topic = lab.identity.topic("user/update")  # doctest: +SKIP
    >>> future = publish_in_background(lab.session, topic, "x")  # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from dataclasses import dataclass

from airlab.aliyun.forms import HttpFormRequest
from airlab.at.commands import httpaction, httppara
from airlab.at.events import FinalResult
from airlab.errors import UsageError
from airlab.session import ModemSession, Response

__all__ = ["FormReply", "post_form_declaring", "publish_in_background"]


# ---------------------------------------------------------------------------- helpers


def publish_in_background(
    session: ModemSession, topic: str, payload: str | bytes, qos: int = 1
) -> concurrent.futures.Future[Response]:
    """Start ``session.publish(topic, payload, qos)`` in a worker thread and return once
    the module has accepted the ``AT+MPUB`` (its ``OK``): the PUBACK is then pending.

    ``future.result()`` is the publish's :class:`~airlab.session.Response` (after its
    PUBACK).  Lessons use it to show what a second QoS1 publish meets.
    """
    mark = session.mark()
    future: concurrent.futures.Future[Response] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(session.publish(topic, payload, qos))
        except BaseException as exc:  # handed over to the caller
            future.set_exception(exc)

    threading.Thread(target=run, name="airlab-lesson-publish", daemon=True).start()
    with contextlib.suppress(Exception):
        session.wait_for_event(lambda e: isinstance(e, FinalResult), since=mark)
    return future


@dataclass(frozen=True)
class FormReply:
    """What ``AT+HTTPREAD`` gave back for a posted form (see :func:`post_form_declaring`)."""

    declared: int
    actual: int
    status: int
    body: str
    kept: str


def post_form_declaring(
    session: ModemSession,
    request: HttpFormRequest,
    length: int,
    *,
    data_timeout_ms: int = 2000,
) -> FormReply:
    """POST ``request`` like the tutorial, but announce ``length`` bytes in
    ``AT+HTTPDATA`` whatever the body's real length: the mistake the session's guard
    normally stops.  The module keeps the first ``length`` bytes (the rest reaches its
    command line); with fewer bytes than announced it waits ``data_timeout_ms``.

    Returns the HTTP status and body of ``AT+HTTPREAD``.  ``AT+HTTPTERM`` always ends it.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
        raise UsageError("length", f"must be a positive number of bytes, got {length!r}")
    body = request.body.encode("utf-8")
    session.command("AT+HTTPTERM", check=False)
    session.command("AT+HTTPINIT")
    try:
        session.command(httppara("URL", request.url, quote_value=False))
        session.command(httppara("USER_DEFINED", f"Content-type: {request.content_type}"))
        line = f"AT+HTTPDATA={length},{data_timeout_ms}"
        session.send_data(
            line,
            body,
            timeout=session.default_timeout + data_timeout_ms / 1e3,
            allow_length_mismatch=True,  # the mistake this lesson shows
        )
        if length < len(body):  # the surplus bytes wait in the command line: end that line
            session.command("AT", check=False)
        r = session.command_and_wait(httpaction(1), urc="+HTTPACTION", fail=())
        assert r.urc is not None
        args = r.urc.args
        status = int(args[1]) if len(args) >= 2 and args[1].isdigit() else 0
        text = ""
        if len(args) >= 3 and args[2].isdigit() and int(args[2]) > 0:
            text = (session.command("AT+HTTPREAD").payload or b"").decode("utf-8", "replace")
    finally:
        session.command("AT+HTTPTERM", check=False)
    kept = body[:length].decode("utf-8", "replace")
    return FormReply(length, len(body), status, text, kept)
