"""Run one function over many files with a progress bar, in ``nj`` processes, collecting user errors.

Workers never outlive their parent: each asks the kernel for SIGKILL when its parent dies (Linux
``PR_SET_PDEATHSIG``; elsewhere a thread that watches the parent), so a parent killed by SIGINT, SIGTERM or
SIGKILL takes its workers with it; they ignore SIGINT (Ctrl-C reaches the whole process group) and leave the
clean-up to the parent, which terminates them on any exception or signal.
"""

import ctypes
import functools
import mmap
import multiprocessing
import os
import signal
import sys
import threading
import time

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import remove_temporaries

_PR_SET_PDEATHSIG = 1


def _watch_parent(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def die_with(parent):
    """This process ends when the process ``parent`` does (SIGKILL, or a watching thread off Linux)."""
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):  # not Linux
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before we asked
        os._exit(1)


def worker_init(parent, threads=1):
    """Pool initializer: ``threads`` torch threads, no SIGINT, and death with the process ``parent``. SIGTERM (the
    pool's terminate) kills at once, as it must: a Python handler can lose a SIGTERM that arrives just before a
    blocking C call (the queue's lock), and the pool's terminate then waits for the worker for ever. The parent
    removes what a killed worker leaves (``Pool(out_dir=...)``); the parent's handler (errors.cli) is not ours."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(threads)
    die_with(parent)


def on_a_copy(run, n):
    """``run()`` -> (n,) float32 array, run in a forked child: on a copy-on-write copy of this process, so whatever
    state ``run`` changes (a C library's, say) is the same, unchanged, for every call, and is never created again.
    The child touches no torch (its thread pools do not survive a fork). POSIX only, as the front ends' wheels."""
    out, parent = mmap.mmap(-1, 4 * max(n, 1)), os.getpid()  # anonymous and shared: the child's result
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            die_with(parent)
            np.frombuffer(out, np.float32, n)[:] = run()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise UserError(f"a front end's child process failed (wait status {status})")
    return np.frombuffer(out, np.float32, n).copy()


class Pool:
    """``nj`` worker processes (``worker_init``) of the ``multiprocessing`` ``context``. ``map`` yields results in
    order and raises ``UserError`` if a worker dies (a plain pool would wait for its lost job for ever); leaving
    the ``with`` block, by an exception or a signal too, terminates the workers, then removes the temporaries of
    their unfinished writes under ``out_dir`` (``utils.io.atomic_path``), if given."""

    def __init__(self, nj, context="fork", threads=1, out_dir=None):
        self.out_dir = out_dir
        before = set(multiprocessing.active_children())
        self.pool = multiprocessing.get_context(context).Pool(nj, worker_init, (os.getpid(), threads))
        self.workers = [p for p in multiprocessing.active_children() if p not in before]

    def map(self, fn, items, desc="jobs"):
        results = self.pool.imap(fn, items)
        while True:
            try:
                yield results.next(timeout=1)
            except StopIteration:
                return
            except multiprocessing.TimeoutError:
                dead = [p for p in self.workers if p.exitcode is not None]
                if dead:
                    raise UserError(
                        f"{desc}: worker process {dead[0].pid} died (exit status {dead[0].exitcode}: out of memory? "
                        "try a smaller --nj)"
                    ) from None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc_info):
        self.pool.terminate()
        self.pool.join()
        if exc_type is not None and self.out_dir is not None:
            remove_temporaries(self.out_dir, [p.pid for p in self.workers])
        return False


def _safe_call(fn, item):
    try:
        fn(item)
    except UserError as e:
        return str(e)
    return None


def run_jobs(fn, items, nj=1, desc=None, out_dir=None):
    """Apply ``fn`` to every item; each failing item prints ``error: ...``; then one ``UserError`` if any failed.
    ``out_dir``: where ``fn`` writes (``Pool``'s).

    ``fn`` must be picklable when ``nj > 1`` (a module-level function or a ``functools.partial`` of one).
    """
    items = list(items)
    if nj > 1:
        with Pool(nj, out_dir=out_dir) as workers:
            calls = workers.map(functools.partial(_safe_call, fn), items, desc)
            results = list(tqdm(calls, total=len(items), desc=desc))
    else:
        results = [_safe_call(fn, item) for item in tqdm(items, desc=desc)]
    errors = [r for r in results if r is not None]
    for message in errors[1:]:
        print(f"error: {message}", file=sys.stderr)
    if errors:
        more = f" ({len(errors)} of {len(items)} files failed, listed above)" if len(errors) > 1 else ""
        raise UserError(errors[0] + more)
