"""Whether a process still runs: for cleaning up what killed runs left behind."""

from __future__ import annotations

import os

#: Whether a PID can be asked about without harm (``os.kill(pid, 0)`` on POSIX;
#: on Windows the same call ends the process).
CAN_SIGNAL_ZERO = os.name == "posix"


def process_alive(pid: int) -> bool:
    """True unless ``pid`` is known to be gone.

    Where that cannot be told cheaply (not POSIX), the answer is True, so
    callers leave files alone rather than delete another writer's.
    """
    if pid == os.getpid() or not CAN_SIGNAL_ZERO:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
