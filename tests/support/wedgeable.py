"""`llmop run` whose event loop SIGUSR1 wedges: the handler runs on the main thread, the loop's, and blocks it."""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType

from llmop.cli import main

WEDGE_SECONDS_ENV = "LLMOP_TEST_WEDGE_SECONDS"


def _wedge(signum: int, frame: FrameType | None) -> None:
    """Block the thread that runs the asyncio loop (Python runs signal handlers on the main thread)."""
    time.sleep(float(os.environ.get(WEDGE_SECONDS_ENV) or 3600))


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _wedge)
    sys.exit(main())
