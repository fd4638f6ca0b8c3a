"""A one-slot mailbox between the subscription callback and the inference worker.

The callback never waits: :meth:`LatestMailbox.put` replaces whatever is waiting (that
frame is dropped and counted), so when frames come faster than inference the worker
always takes the newest one, latency stays bounded by one inference, and memory holds at
most one pending frame.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

Item = TypeVar("Item")


class MailboxClosedError(Exception):
    """Raised by :meth:`LatestMailbox.take` once the mailbox is closed and empty."""


class LatestMailbox(Generic[Item]):
    """Holds at most one item; a new item replaces an untaken one."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Item | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Item) -> bool:
        """Leave ``item`` for the worker.

        :return: True when an older, untaken item was replaced (dropped).
        """
        with self._condition:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Item | None:
        """Wait for an item and remove it.

        :param timeout: seconds to wait; None waits until an item comes or the mailbox closes.
        :return: the newest item, or None when ``timeout`` passed without one.
        :raises MailboxClosedError: the mailbox was closed (pending items are discarded).
        """
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            if self._closed:
                raise MailboxClosedError
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the worker and make every later :meth:`take` raise :class:`MailboxClosedError`."""
        with self._condition:
            self._closed = True
            self._item = None
            self._condition.notify_all()
