"""airlab: learn and debug an Air780EP 4G module talking AT, HTTP and MQTT to Alibaba Cloud IoT."""

__version__ = "0.1.0"
