"""airlab: learn and debug an Air780EP 4G module talking AT, HTTP and MQTT to Alibaba Cloud IoT.

The subpackages are the API: :mod:`airlab.aliyun` (signing and the platform's auth
rules) and :mod:`airlab.at` (AT events, parser, command builders, transcripts).  The
most used names are re-exported here.

Example:
    >>> import airlab
    >>> airlab.direct_mqtt_credentials(
    ...     product_key="k1hipglLdjU", device_name="868488076506128",
    ...     device_secret="fef32adf6dad46c2c7cbf335d3a7b021").password
    '0f655b12adf519b9a7a2b0a990f398b6'
"""

__version__ = "0.1.0"

from airlab import aliyun, at
from airlab.aliyun import (
    SignMethod,
    connwl_mqtt_credentials,
    direct_mqtt_credentials,
    http_auth_request,
    mqtt_credentials_after_http_auth,
    mqtt_register_credentials,
    parse_http_auth_reply,
    parse_register_reply,
    register_request,
)
from airlab.at import AtParser, Direction, Transcript, TranscriptWriter, parse_stream, read_capture
from airlab.errors import AirlabError, CaptureFormatError, CloudRejected, UsageError
from airlab.session import (
    CommandError,
    ConnectFailed,
    ConnectionClosed,
    ModemSession,
    PortClosed,
    ResponseTimeout,
    UrcTimeout,
)
from airlab.sim.urlhandler import register_url_handler

register_url_handler()  # serial.serial_for_url("airsim://...") opens a simulated module

__all__ = [
    "AirlabError",
    "AtParser",
    "CaptureFormatError",
    "CloudRejected",
    "CommandError",
    "ConnectFailed",
    "ConnectionClosed",
    "Direction",
    "ModemSession",
    "PortClosed",
    "ResponseTimeout",
    "SignMethod",
    "Transcript",
    "TranscriptWriter",
    "UrcTimeout",
    "UsageError",
    "__version__",
    "aliyun",
    "at",
    "connwl_mqtt_credentials",
    "direct_mqtt_credentials",
    "http_auth_request",
    "mqtt_credentials_after_http_auth",
    "mqtt_register_credentials",
    "parse_http_auth_reply",
    "parse_register_reply",
    "parse_stream",
    "read_capture",
    "register_request",
]
