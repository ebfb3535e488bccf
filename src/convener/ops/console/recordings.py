"""Room recordings: ARI bridge recording, named after the conversation, served from Asterisk.

Made only with ``[ops] record_calls = true`` (callers must be told). Asterisk writes the file in
its recording directory (``/var/spool/asterisk/recording``) and stops when the room's bridge is
destroyed; the console fetches it back through ARI (``GET /recordings/stored/{name}/file``).
"""

from __future__ import annotations

import re

PREFIX = "convener-"
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


def recording_name(conversation_id: str) -> str:
    """The recording of a conversation: its id with anything but letters, digits, - and _ as -."""
    return PREFIX + re.sub(r"[^A-Za-z0-9_\-]", "-", conversation_id.removeprefix("conv:"))[:100]


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name)) and name.startswith(PREFIX)
