"""Configuration of the simulated Air780EP firmware (:class:`FirmwareConfig`).

Identity fields (model, revision, IMEI ...) and network facts (APN, IP, signal) are what
the answers print.  Every behaviour that the public material does not confirm is a
*named option* here; its default is the most plausible model, with the reason next to
it.  ``spec`` below means ``spec/at_commands.md``; ``T01``… the captures in
``data/captures/luat_docs``.

Example:
    >>> FirmwareConfig().revision
    'AirM2M_780EP_V1007_LTE_AT'
    >>> FirmwareConfig(echo=False).echo
    False
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FirmwareConfig"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "qos1_overlap": ("error", "cme767", "accept"),
    "httpdata_short": ("keep", "error"),
    "mconnect_failure": ("error",),
    "msub_refused": ("error", "suback"),
    "httpaction_busy": ("error", "urc604"),
    "http_len_reported": ("full", "stored"),
    "non_at_line": ("ignore", "error"),
    "pdp_loss_mqtt": ("silent", "closed"),
    "sapbr_ip_style": ("quoted", "padded"),
    "httphead_case": ("original", "lower"),
    "http_bearer": ("required", "ignored"),
}


@dataclass(frozen=True)
class FirmwareConfig:
    """What the simulated module is, and how it resolves the unconfirmed behaviours."""

    # ---------------------------------------------------------------- identity
    model: str = "Air780EP"
    revision: str = "AirM2M_780EP_V1007_LTE_AT"
    manufacturer: str = "AirM2M"
    imei: str = "868488076506128"
    imsi: str = "460040765061280"
    iccid: str = "898604981022C0256459"  # the 780EP SIM of T04
    # ---------------------------------------------------------------- network
    apn: str = "cmiot"
    ip: str = "10.222.163.213"  # T05
    csq: tuple[int, int] = (25, 0)  # T02 (780E prints ber 0; Air724 prints 99: T11)
    cesq: str = "99,99,255,255,22,48"  # T02
    tac: str = "4844"  # T02: +CEREG: 2,1,"4844","0EA2D0CA",7
    cell_id: str = "0EA2D0CA"
    act: int = 7
    operator_numeric: str = "46000"
    operator_long: str = "CHINA MOBILE"
    operator_short: str = "CMCC"
    # ---------------------------------------------------------------- defaults at power-on
    echo: bool = True  # every official capture shows the echo without ATE1 [C]
    cmee: int = 1  # numeric +CME ERROR seen without any AT+CMEE [C: T03, T06] (inferred)
    sim_inserted: bool = True
    # ---------------------------------------------------------------- platform variants (spec §10)
    cgev_pdn_act: str = "1"  # "+CGEV: ME PDN ACT 1" (780EP) vs "1,0" (780E) [C: T03/T04]
    nitz_year_digits: int = 2  # 780EP "24/08/22" vs 780E "2024/08/27" [C]
    nitz_tz_quarters: int = 32  # "+32" = UTC+8 in quarter hours (the 780E prints +0) [C]
    nitz_suffix: str = ""  # text after the last comma: "" (T04) or "0" (T05, T06)
    boot_rdy: bool = True  # 780EP prints RDY after a reset (T04); the 780E does not (T03)
    boot_noise: bytes = b""  # bytes before "\r\nRDY\r\n": T04 shows one undecodable byte
    cgdcont_fields: int = 4  # 4 fields in the 780EP logs; the manual example has 6
    sapbr_ip_style: str = "quoted"  # +SAPBR: 1,1,"10.x" (current) | 010.169.179.213 (old)
    # ---------------------------------------------------------------- unconfirmed behaviour
    #: second QoS1 AT+MPUB before PUBACK (spec §7.5, open question 2): nothing public; the
    #: firmware has a single "wait for PUBACK" slot, so rejecting is the likeliest:
    #: "error" → ERROR | "cme767" → +CME ERROR: 767 | "accept" → OK, acks interleave.
    qos1_overlap: str = "error"
    #: AT+HTTPACTION needs the bearer of HTTPPARA "CID" (default 1) opened by
    #: AT+SAPBR=1,<cid>: the HTTP guides' first step is "激活PDP" (S7, S5), after
    #: "+SAPBR 1: DEACT" the request ends "+HTTPACTION: 0,601,0" and "如果没做任何处理，
    #: 接着做http请求会失败" (S7) until the bearer is activated again, and SIMCom (whose
    #: syntax the HTTP commands copy) answers 601 without a bearer.  "required": OK then
    #: +HTTPACTION: <m>,601,0 while AT+SAPBR=2,<cid> shows status 3; "ignored": any
    #: request is served while the module is attached.
    http_bearer: str = "required"
    #: AT+HTTPDATA timer expires with fewer bytes (open question 1): SIMCom keeps what
    #: arrived and prints OK ("keep"); "error" drops it and prints ERROR.
    httpdata_short: str = "keep"
    #: CONNACK return code != 0: the single line ERROR is the only documented form.
    mconnect_failure: str = "error"
    #: SUBACK granting 0x80: the manual's failure answer for MSUB is ERROR ("error");
    #: "suback" prints SUBACK anyway.
    msub_refused: str = "error"
    #: +MSUB: "<topic>",n byte,... (current docs) vs the older bare topic.
    msub_topic_quoted: bool = True
    #: AT+HTTPACTION while a request is in flight: SIMCom answers ERROR ("error");
    #: "urc604" answers OK then +HTTPACTION: m,604,0 (module code 604 "stack busy").
    httpaction_busy: str = "error"
    #: <datalen> of +HTTPACTION when the body exceeds the buffer: T08 prints the full
    #: length (154293) while HTTPREAD gives only the stored part ("full"); "stored".
    http_len_reported: str = "full"
    #: AT+HTTPHEAD's header lines: the Air780EP HTTP guide (S7, V1007) prints them as the
    #: server sent them ("original": "+HTTPHEAD: 247" / "Accept-Ranges: bytes" ..., 247 =
    #: the 8 lines joined by CRLF); the Air780E guide (T08, V1169) prints them lower-cased
    #: ("lower": "server: aliyunoss" ..., "+HTTPHEAD: 454").
    httphead_case: str = "original"
    #: response bytes kept for HTTPREAD ("~4 KB on the AT build"; T08 reads 3072).
    http_buffer: int = 4096
    httpdata_max: int = 3356  # AT build (LSAT: 130048)
    mpub_max: int = 4100  # 780EP guide (780E FAQ: 2384)
    mqtt_recv_max: int = 4100  # longer incoming payloads are truncated to this
    #: prompt printed by AT+MPUBEX (spec open question 6): CIPSEND's "> " form, framed.
    mpubex_prompt: bytes = b"\r\n> "
    mpubex_echo: bool = False  # data after '>' not echoed (like HTTPDATA data)
    mpubex_idle: float = 5.0  # without <len>: end after this gap between bytes
    #: STATE text before CONNECT FAIL for MIPSTART (open question 4): the only captured
    #: form is the TCP analogue's "STATE: IP STATUS" (T06).
    connect_fail_state: str = "IP STATUS"
    #: an open MQTT link when the PDP context drops: T07 shows only
    #: "+CGEV: NW PDN DEACT 1" and a later MIPCLOSE answering OK ("silent": the link
    #: is dead but the module has not noticed); "closed" prints CLOSED as well.
    pdp_loss_mqtt: str = "silent"
    pdp_loss_cgev: bool = True  # print "+CGEV: NW PDN DEACT 1" on PDP loss (780EP guide)
    #: a command line without "AT" anywhere: "ignore" (the line is echoed, no answer)
    #: or "error".
    non_at_line: str = "ignore"
    max_line: int = 8192  # longer command lines are discarded with ERROR
    reboot_seconds: float = 1.5  # AT+RESET: OK, then RDY after this (T04: 1.5 s)
    register_seconds: float = 1.5  # AT+CFUN=1: registration URCs after this (T03/T04)

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"FirmwareConfig.{name} must be one of {allowed}, got {value!r}")
        if self.cmee not in (0, 1, 2):
            raise ValueError(f"FirmwareConfig.cmee must be 0, 1 or 2, got {self.cmee!r}")
        if self.nitz_year_digits not in (2, 4):
            raise ValueError("FirmwareConfig.nitz_year_digits must be 2 or 4")
        if self.cgdcont_fields not in (4, 6):
            raise ValueError("FirmwareConfig.cgdcont_fields must be 4 or 6")
