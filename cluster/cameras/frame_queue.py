"""A bounded hand-over between a camera's decoder and its consumer that never blocks the camera.

A camera cannot wait for a slow consumer (it would fall behind live and its source would
drop it), so when the queue is full the oldest frame is dropped and counted: the consumer
always gets the most recent frames, and the count says how much it missed.
"""

import threading
import time
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class DropOldestQueue(Generic[Item]):
    """A thread-safe FIFO of at most `maxsize` items; `put` never blocks, it evicts the oldest."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[Item] = deque()
        self._ready = threading.Condition()
        self._dropped = 0

    def put(self, item: Item) -> bool:
        """Append `item`; returns True when the oldest item was dropped to make room."""
        with self._ready:
            dropped = len(self._items) >= self.maxsize
            if dropped:
                self._items.popleft()
                self._dropped += 1
            self._items.append(item)
            self._ready.notify()
        return dropped

    def get_many(self, max_items: int, timeout_s: float, newest_only: bool = False) -> list[Item]:
        """Up to `max_items`, oldest first; waits at most `timeout_s` for the first one, then returns what is there.

        newest_only: drop (and count) everything older than the newest `max_items` first, for a
        consumer that takes only what it can use at once and wants it fresh.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._ready:
            while not self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._ready.wait(remaining)
            if newest_only:
                while len(self._items) > max_items:
                    self._items.popleft()
                    self._dropped += 1
            count = min(max_items, len(self._items))
            return [self._items.popleft() for _ in range(count)]

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)

    @property
    def dropped(self) -> int:
        """How many items were evicted unread since the queue was made."""
        with self._ready:
            return self._dropped
