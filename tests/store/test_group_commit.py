"""Group commit: every caller gets its own answer, batches form while one is written, and a
failure reaches exactly the callers of its batch."""

from __future__ import annotations

import threading
import time

import pytest

from tsunagu.store.group_commit import GroupCommit


def test_callers_that_arrive_during_a_write_share_the_next_batch() -> None:
    batches: list[list[int]] = []
    started = threading.Event()
    release = threading.Event()

    def run(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        if len(batches) == 1:
            started.set()
            release.wait(10)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(run)
    answers: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            answers[i] = commit.submit(i)
        except ValueError as exc:
            answers[i] = str(exc)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert started.wait(10)
    rest = [threading.Thread(target=call, args=(i,)) for i in range(1, 9)]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 10
    while len(commit._pending) < 8 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for t in [first, *rest]:
        t.join(10)
    assert batches[0] == [0]
    assert sorted(batches[1]) == list(range(1, 9)) and len(batches) == 2
    assert answers == {i: (f"odd {i}" if i % 2 else i * 10) for i in range(9)}


def test_a_failing_batch_fails_its_callers_only_and_the_next_batch_runs() -> None:
    def run(items: list[str]) -> list[str | Exception]:
        if "boom" in items:
            raise RuntimeError("disk full")
        return [s.upper() for s in items]

    commit: GroupCommit[str, str] = GroupCommit(run)
    with pytest.raises(RuntimeError, match="disk full"):
        commit.submit("boom")
    assert commit.submit("ok") == "OK"


def test_many_threads_each_get_their_own_answer() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int | Exception]:
        sizes.append(len(items))
        time.sleep(0.002)  # a commit's sync, during which callers queue
        return [i * i for i in items]

    commit: GroupCommit[int, int] = GroupCommit(run)
    answers: dict[int, int] = {}
    threads = [
        threading.Thread(target=lambda i=i: answers.__setitem__(i, commit.submit(i)))
        for i in range(200)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == {i: i * i for i in range(200)}
    assert sum(sizes) == 200 and max(sizes) > 1 and len(sizes) < 200
