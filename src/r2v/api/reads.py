"""Coalescing task reads: the pollers' requests of one moment share one query.

Under load, every `GET /v1/tasks/{id}` that arrives while a read is under way waits for the
next one, which fetches all their tasks with one `WHERE id IN (…)` in one thread hop. A
lone poller pays one query, as before; two hundred pay a handful, and the event loop never
waits on the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from r2v.errors import RequestError
from r2v.protocol import TaskObject

Wanted = tuple[str, str, str]
"""(key id, task id, base URL) of one read."""

MAX_BATCH = 256


class TaskReads:
    """Answers task reads in batches, off the event loop."""

    def __init__(
        self,
        read_many: Callable[[Sequence[Wanted]], list[TaskObject | RequestError]],
        threads: int = 2,
    ) -> None:
        self._read_many = read_many
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="r2v-reads")
        self._waiting: list[tuple[Wanted, asyncio.Future[TaskObject | RequestError]]] = []
        self._in_flight = 0
        self._threads = threads

    async def get(self, key_id: str, task_id: str, base_url: str) -> TaskObject:
        """The task, or the domain error a single read would raise."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[TaskObject | RequestError] = loop.create_future()
        self._waiting.append(((key_id, task_id, base_url), answer))
        if self._in_flight < self._threads:
            self._flush(loop)
        result = await answer
        if isinstance(result, RequestError):
            raise result
        return result

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if not batch:
            return
        self._in_flight += 1
        done = loop.run_in_executor(self._executor, self._read_many, [w for w, _ in batch])
        done.add_done_callback(lambda read: self._deliver(loop, batch, read))

    def _deliver(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Wanted, asyncio.Future[TaskObject | RequestError]]],
        read: asyncio.Future[list[TaskObject | RequestError]],
    ) -> None:
        self._in_flight -= 1
        failure = read.exception()
        for index, (_wanted, answer) in enumerate(batch):
            if answer.done():
                continue  # the client went away
            if failure is not None:
                answer.set_exception(failure)
            else:
                answer.set_result(read.result()[index])
        # whatever arrived during this read goes in the next one
        if self._waiting and self._in_flight < self._threads:
            self._flush(loop)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
