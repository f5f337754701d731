"""Group commit: callers that arrive while a batch is being written are written together in the
next batch, in one transaction and one sync of the log, instead of one each.

No thread of its own. The first caller to find nobody writing becomes the leader: it takes
everything pending, runs the batch, hands each caller its answer, and, if more arrived meanwhile,
passes the lead to the first of them. A caller returns once its own batch has committed, so
what it is told is durable, as with one transaction each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T]):
    __slots__ = ("item", "done", "lead", "answer")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = threading.Event()
        self.lead = False
        self.answer: object = None


class GroupCommit(Generic[T, R]):
    """`run(items)` answers each item with a result or the exception to raise to its caller;
    an exception out of `run` itself is raised to every caller of the batch. `run` is called by
    one caller at a time."""

    def __init__(self, run: Callable[[list[T]], Sequence[R | Exception]]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._pending: list[_Slot[T]] = []
        self._writing = False

    def submit(self, item: T) -> R:
        slot = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            if not self._writing:
                self._writing = slot.lead = True
        if not slot.lead:
            slot.done.wait()
        if slot.lead:  # first in, or handed the lead by the batch before
            self._write()
        if isinstance(slot.answer, BaseException):
            raise slot.answer
        return slot.answer  # type: ignore[return-value]

    def _write(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        try:
            answers: Sequence[object] = self._run([s.item for s in batch])
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch is told
            answers = [exc] * len(batch)
        for slot, answer in zip(batch, answers, strict=True):
            slot.answer, slot.lead = answer, False
        with self._lock:
            if self._pending:
                self._pending[0].lead = True
                self._pending[0].done.set()
            else:
                self._writing = False
        for slot in batch:
            slot.done.set()
