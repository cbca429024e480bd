"""The test session (tests/ and the nbval'd notebooks): no seat a developer picked with
``SeatPicker`` (``~/.config/airlab/seat.json``) may change what the lessons do, so
``AIRLAB_SEAT`` is set to nothing ("no seat") unless the run sets it; kernels inherit it."""

import os

os.environ.setdefault("AIRLAB_SEAT", "")
