"""Whether a process of this machine is still alive, by its pid."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs: ``kill(pid, 0)``, and a zombie (dead, not yet reaped) counts as dead.

    A process owned by another user is alive (``PermissionError``); when ``/proc`` cannot tell, it is too.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
