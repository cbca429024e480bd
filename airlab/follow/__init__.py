"""Follow the tutorial: check, step by step, the AT commands a student types by hand.

For each of the tutorial's methods (HTTPS auth then MQTT, direct MQTT, HTTPS dynamic
registration then login, publish/subscribe), the steps come from the tutorial's own
captures (:func:`tutorial_steps`); a typed session's events are split into turns, each
matched to a step and marked ok / differs / missing, with why it differs (which input
of a sign, how many bytes off, a header's space, the order of MCONFIG's values, a host
without the productKey, a late MCONNECT, a refusal with its meaning).  Pure: events in,
frozen reports out; :class:`~airlab.widgets.follow.FollowTutorial` shows it live.

Example:
    >>> from airlab.follow import tutorial_steps
    >>> [s.name_zh for s in tutorial_steps("publish_subscribe")]
    ['发布Qos0消息', '发布Qos1消息', '订阅主题', '设置收到数据时的打印方式']
"""

from airlab.follow.check import (
    MCONNECT_WINDOW,
    DeviceLike,
    Finding,
    FollowReport,
    StepCheck,
    TutorialFollower,
    Verdict,
    follow_events,
)
from airlab.follow.tutorial import (
    CAPTURES_ENV,
    STEP_NAMES,
    Method,
    Turn,
    TutorialStep,
    captures_dir,
    split_turns,
    step_key,
    steps_from_events,
    tutorial_steps,
)

__all__ = [
    "CAPTURES_ENV",
    "MCONNECT_WINDOW",
    "STEP_NAMES",
    "DeviceLike",
    "Finding",
    "FollowReport",
    "Method",
    "StepCheck",
    "Turn",
    "TutorialFollower",
    "TutorialStep",
    "Verdict",
    "captures_dir",
    "follow_events",
    "split_turns",
    "step_key",
    "steps_from_events",
    "tutorial_steps",
]
