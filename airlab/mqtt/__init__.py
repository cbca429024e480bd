"""MQTT 3.1.1 pieces shared by the cloud emulator and the simulated module.

Nothing here imports another part of airlab: :mod:`airlab.mqtt.codec` (packets as frozen
dataclasses, incremental framing, strict validation) and :mod:`airlab.mqtt.loopthread`
(an asyncio loop on its own thread, used by the broker and the module's network stack).
"""
