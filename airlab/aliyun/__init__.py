"""Alibaba Cloud IoT Platform (阿里云物联网平台) device authentication, pure.

Signing for every device-auth method (direct MQTT, HTTPS auth then MQTT, HTTPS and MQTT
dynamic registration), client-id building and parsing, server-side checks for the cloud
emulator, and endpoint names. No I/O, no sockets, no clock reads; bad arguments raise
:class:`~airlab.errors.UsageError` naming the parameter.

Example:
    >>> from airlab.aliyun import direct_mqtt_credentials
    >>> direct_mqtt_credentials("k1hipglLdjU", "868488076506128",
    ...                         "fef32adf6dad46c2c7cbf335d3a7b021").password
    '0f655b12adf519b9a7a2b0a990f398b6'
"""

from __future__ import annotations

from airlab.aliyun.clientid import ParsedClientId, build_client_id, parse_client_id
from airlab.aliyun.dynreg import (
    REGISTER_PUSH_TOPIC,
    REGNWL_PUSH_TOPIC,
    TUTORIAL_REGISTER_SIGN_METHOD,
    DeviceTokenGrant,
    MqttRegisterAuthType,
    RegisteredDevice,
    connwl_mqtt_credentials,
    mqtt_register_credentials,
    new_random,
    parse_register_push,
    parse_register_reply,
    register_request,
)
from airlab.aliyun.endpoints import (
    DEFAULT_MQTT_PORT,
    DEFAULT_REGION,
    KNOWN_REGIONS,
    auth_devicename_url,
    auth_host,
    instance_mqtt_host,
    mqtt_host,
    register_device_url,
    validate_region,
)
from airlab.aliyun.forms import FORM_CONTENT_TYPE, HttpFormRequest, encode_form, parse_form
from airlab.aliyun.http_auth import (
    HttpAuthFieldOrder,
    HttpAuthReply,
    http_auth_request,
    mqtt_credentials_after_http_auth,
    parse_http_auth_reply,
)
from airlab.aliyun.identity import (
    is_hex,
    validate_client_id,
    validate_device_name,
    validate_hex_signature,
    validate_product_key,
    validate_secret,
    validate_secure_mode,
    validate_timestamp,
)
from airlab.aliyun.methods import DEFAULT_SIGN_METHOD, SignMethod, hmac_hex, parse_sign_method
from airlab.aliyun.mqtt_credentials import (
    MqttCredentials,
    direct_mqtt_credentials,
    mqtt_username,
    token_mqtt_credentials,
)
from airlab.aliyun.replies import MalformedReply
from airlab.aliyun.signing import (
    check_signature,
    form_sign_content,
    mqtt_sign_content,
    register_sign_content,
    sign,
    signatures_equal,
    verify_signature,
)
from airlab.aliyun.topics import (
    DEFAULT_TOPIC_CLASSES,
    LEGACY_TOPIC_CLASSES,
    MAX_TOPIC_BYTES,
    MAX_TOPIC_LEVELS,
    SYSTEM_TOPIC_CLASSES,
    TopicAccess,
    TopicClass,
    TopicPermission,
    check_topic_access,
    instantiate_topic,
    parse_topic_permission,
    topic_covers,
    topic_problem,
    validate_topic_class,
)
from airlab.aliyun.verification import (
    DEVICENAME_FORM_UNSIGNED,
    REGISTER_FORM_UNSIGNED,
    ParsedUsername,
    SignatureCheck,
    check_devicename_form,
    check_mqtt_connect,
    check_mqtt_register_connect,
    check_register_form,
    connect_sign_content,
    mask_secret,
    parse_username,
)

__all__ = [
    "DEFAULT_MQTT_PORT",
    "DEFAULT_REGION",
    "DEFAULT_SIGN_METHOD",
    "DEFAULT_TOPIC_CLASSES",
    "DEVICENAME_FORM_UNSIGNED",
    "FORM_CONTENT_TYPE",
    "KNOWN_REGIONS",
    "LEGACY_TOPIC_CLASSES",
    "MAX_TOPIC_BYTES",
    "MAX_TOPIC_LEVELS",
    "REGISTER_FORM_UNSIGNED",
    "REGISTER_PUSH_TOPIC",
    "REGNWL_PUSH_TOPIC",
    "SYSTEM_TOPIC_CLASSES",
    "TUTORIAL_REGISTER_SIGN_METHOD",
    "DeviceTokenGrant",
    "HttpAuthFieldOrder",
    "HttpAuthReply",
    "HttpFormRequest",
    "MalformedReply",
    "MqttCredentials",
    "MqttRegisterAuthType",
    "ParsedClientId",
    "ParsedUsername",
    "RegisteredDevice",
    "SignMethod",
    "SignatureCheck",
    "TopicAccess",
    "TopicClass",
    "TopicPermission",
    "auth_devicename_url",
    "auth_host",
    "build_client_id",
    "check_devicename_form",
    "check_mqtt_connect",
    "check_mqtt_register_connect",
    "check_register_form",
    "check_signature",
    "check_topic_access",
    "connect_sign_content",
    "connwl_mqtt_credentials",
    "direct_mqtt_credentials",
    "encode_form",
    "form_sign_content",
    "hmac_hex",
    "http_auth_request",
    "instance_mqtt_host",
    "instantiate_topic",
    "is_hex",
    "mask_secret",
    "mqtt_credentials_after_http_auth",
    "mqtt_host",
    "mqtt_register_credentials",
    "mqtt_sign_content",
    "mqtt_username",
    "new_random",
    "parse_client_id",
    "parse_form",
    "parse_http_auth_reply",
    "parse_register_push",
    "parse_register_reply",
    "parse_sign_method",
    "parse_topic_permission",
    "parse_username",
    "register_device_url",
    "register_request",
    "register_sign_content",
    "sign",
    "signatures_equal",
    "token_mqtt_credentials",
    "topic_covers",
    "topic_problem",
    "validate_client_id",
    "validate_device_name",
    "validate_hex_signature",
    "validate_product_key",
    "validate_region",
    "validate_secret",
    "validate_secure_mode",
    "validate_timestamp",
    "validate_topic_class",
    "verify_signature",
]
