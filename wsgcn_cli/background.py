"""One background thread that processes submitted items in order.

:meth:`wsgcn_cli.pipeline.Pipeline.stream` runs the detector on the calling thread and
the stages after it (2D stage, lifter, refiner) on a :class:`BackgroundWorker`; the
video writer draws the overlay and encodes on another (:class:`wsgcn_cli.io.video.VideoWriter`):
BlazePose, PyTorch, OpenCV and x264 release the GIL, so on two cores the work after
detection overlaps with it instead of adding to its time.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable

_STOP = object()


class BackgroundWorker:
    """Call ``fn(item)`` for every submitted item, in order, in one daemon thread.

    Args:
        fn: the work; its exceptions are kept and re-raised in the submitting thread
            by the next :meth:`submit` or by :meth:`close`.
        queue_size: at most this many items wait; :meth:`submit` blocks beyond it,
            which bounds memory when the worker is slower than the producer.
        name: the thread's name.
        nice: raise the thread's nice value by this much (Linux: per thread; threads it
            starts inherit it), so that it yields the CPU to the producer: the work
            behind a bounded queue then waits instead of slowing the producer down.

    After an error, or after :meth:`abort`, the thread keeps taking items off the
    queue without processing them, so a producer never blocks forever.
    """

    def __init__(self, fn: Callable, queue_size: int = 8, name: str = "worker", nice: int = 0):
        self._fn = fn
        self._nice = nice
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self.error: BaseException | None = None
        self._discard = False
        self._thread: threading.Thread | None = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._nice > 0 and hasattr(os, "setpriority"):
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except OSError:
                pass
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self.error is not None or self._discard:
                continue
            try:
                self._fn(item)
            except BaseException as e:
                self.error = e

    def submit(self, item) -> None:
        """Queue ``item``; re-raises an error of an earlier item (the worker stops).

        Raises:
            RuntimeError: the worker was closed or aborted.
        """
        if self._thread is None:
            raise RuntimeError("the background worker is closed")
        if self.error is not None:
            self.abort()
            raise self.error
        self._queue.put(item)

    def _join(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Process every queued item, stop the thread; re-raises the first error."""
        self._join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Drop the items still queued and stop the thread (errors are not raised)."""
        self._discard = True
        self._join()
