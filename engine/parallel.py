"""The images of a batch in worker processes (``process_batch(workers=N)``).

Each worker is a spawned process with its own copy of the model; a worker that dies (the
out-of-memory killer, a crash in native code) costs only the image that kills it, and a
cancel stops every image at its next check. How many workers suit a machine:
:func:`auto_workers`.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .planes import ImageResult, Plane

__all__ = ["auto_workers", "in_processes", "usable_cores"]


def usable_cores() -> int:
    """CPU cores this process may run on: a cluster job's share, not the whole machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity call (macOS, Windows): every core
        return max(1, os.cpu_count() or 1)


#: A worker's peak memory on a 1040 x 1392 phase-contrast frame was 0.8 GB (README,
#: Performance); auto_workers allows one per this many bytes of the machine's memory.
_BYTES_PER_WORKER = 2 << 30


def auto_workers(images: int | None = None) -> int:
    """Images at once for ``workers="auto"``: one per usable core, at most four, at most one
    per 2 GB of the machine's memory (where the platform tells it), and, for a batch of
    ``images``, at least two images per worker.

    A worker is a new process that opens its own copy of the model: on two cores that took
    about as long as segmenting one 512 x 512 image (README, Performance), so a worker with a
    single image gains nothing. Four: more workers leave each fewer cores for onnxruntime.
    """
    n = min(4, usable_cores())
    if images is not None:
        n = min(n, images // 2)
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf
        total = 0
    if total > 0:
        n = min(n, total // _BYTES_PER_WORKER)
    return max(1, int(n))


#: The model and the cancel flag of a worker process (process_batch with workers > 1).
_WORKER: dict = {}


def _start_worker(model_bytes: bytes, threads: int, stop) -> None:
    # Ctrl-C is the parent's to handle: it raises the stop flag, and each worker then stops
    # its image the way a cancelled one stops (no half-written files).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Set before the model opens its sessions (engine.model reads it), unless the user chose.
    os.environ.setdefault("CELLPROP_THREADS", str(threads))
    _WORKER["model"] = pickle.loads(model_bytes)
    _WORKER["stop"] = stop
    _end_with_parent()


def _end_with_parent() -> None:
    """End this worker as soon as the process that started it is gone (killed by the
    out-of-memory killer or ``kill -9``, or crashed): it would otherwise finish its image,
    wait for more for ever, and keep its memory. Its temporary files are removed when the
    run is continued."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def _work(task: Callable, plane: Plane, args: tuple) -> ImageResult:
    return task(plane, _WORKER["model"], args, _WORKER["stop"].is_set)


def in_processes(
    files: list[Plane],
    task: Callable,
    model,
    args: tuple,
    workers: int,
    cancel: Callable[[], bool] | None,
    retry_args: Callable[[int], tuple],
):
    """Yield (index, ImageResult) as images finish in ``workers`` processes ("spawn": no
    fork of a process that runs threads, and the same on every platform): ``task(plane,
    model, args, cancel)`` for each of ``files`` (a module-level function, which a worker
    imports; ``model`` is pickled once per worker).

    A worker that dies (the out-of-memory killer, a crash in native code) takes its pool with
    it, and every image then running with it. Those images are tried again, each alone in a
    fresh process, so that only the one that kills its worker again fails, by name; the images
    not started yet go on in a fresh pool. An image lost so may have written some of its files
    (each is written whole) before its pool went: those are this run's, and its second try
    replaces them (``retry_args(index)``: the arguments of that second try); files that were
    there before the run stay protected as ever.
    """
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    threads = max(1, usable_cores() // workers)
    pool = functools.partial(
        _pool_run,
        files=files,
        task=task,
        args=args,
        context=context,
        start=(pickle.dumps(model), threads, stop),
        stop=stop,
        cancel=cancel,
    )
    todo = deque(range(len(files)))
    while todo:
        lost = []
        for i, res in pool(todo, workers):
            if res is None:
                lost.append(i)
            else:
                yield i, res
        for i in lost:
            for _, res in pool(deque([i]), 1, args=retry_args(i)):
                if res is None:  # it killed its worker again, alone this time
                    res = files[i].result(
                        status="failed",
                        error=f"{files[i].where}: its worker process stopped while segmenting "
                        "it (out of memory, or a crash in a library)",
                    )
                yield i, res


def _pool_run(todo: deque, size: int, files, task, args, context, start, stop, cancel):
    """Run the images ``todo`` (indices, taken from the left) in ``size`` processes, no more
    at a time than there are processes, so that those running are known. Yields (index,
    ImageResult), or (index, None) for an image whose worker died; after a death nothing more
    is started, and what was not started stays in ``todo``."""
    with ProcessPoolExecutor(
        size, mp_context=context, initializer=_start_worker, initargs=start
    ) as pool:
        running: dict = {}
        broken = False
        try:
            while running or (todo and not broken):
                if cancel is not None and not stop.is_set() and cancel():
                    stop.set()  # images under way stop at their next check
                while todo and not broken and len(running) < size:
                    if stop.is_set():  # cancelled: the rest is not started at all
                        i = todo.popleft()
                        yield i, files[i].result(status="cancelled")
                        continue
                    try:
                        running[pool.submit(_work, task, files[todo[0]], args)] = todo[0]
                    except BrokenProcessPool:
                        broken = True
                    else:
                        todo.popleft()
                if not running:
                    continue
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = running.pop(fut)
                    try:
                        yield i, fut.result()
                    except BrokenProcessPool:
                        broken = True
                        yield i, None
        except BaseException:  # Ctrl-C, or the caller gave up: no image goes on without it
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
