"""Named fault points for crash-safety tests.

A writer calls `fault_point("name")` at the moments worth crashing at; when the environment
variable HASHINDEX_KILL_AT names that point, the process sends itself SIGKILL there: no
cleanup, no flush, exactly what a power cut or the OOM killer leaves behind. Unset (always, in
normal use), it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "HASHINDEX_KILL_AT"


def fault_point(name: str) -> None:
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
