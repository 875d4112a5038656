"""Running one piece of test work on several threads at the same moment (races between connections or processes)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_together(work: Callable[[int], T], count: int) -> list[T]:
    """`work(0)` … `work(count - 1)` on `count` threads released together by a barrier; their results in that order.

    Every thread is waited for; then the first error any of them raised is raised here.
    """
    start = threading.Barrier(count)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def one(n: int) -> None:
        try:
            start.wait()
            results[n] = work(n)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[n] for n in range(count)]
