"""How often a streaming answer shows its progress, given how many answers stream at once.

Each progress update (a draft or an edit) renders the whole answer so far and sends it: about 2 ms
of CPU. At 1 s a chat, 400 answers at once would ask for 400 updates a second, the event loop
saturates, and every answer's final message comes late. So the answers share a budget of updates
per second: while few stream, each keeps its own pace (1 s private, 3 s groups); in a burst, each
updates less often, and the final message, which is never skipped, goes out on time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ProgressPace:
    def __init__(self, updates_per_second: float = 50.0) -> None:
        if updates_per_second <= 0:
            raise ValueError("updates_per_second must be positive")
        self.updates_per_second = updates_per_second
        self._streaming = 0

    @property
    def streaming(self) -> int:
        """Answers showing progress right now."""
        return self._streaming

    @contextmanager
    def stream(self) -> Iterator[None]:
        """Counts one answer as streaming for as long as the block runs."""
        self._streaming += 1
        try:
            yield
        finally:
            self._streaming -= 1

    def interval(self, own: float) -> float:
        """Seconds between one answer's progress updates: its own pace, or longer in a burst."""
        return max(own, self._streaming / self.updates_per_second)
