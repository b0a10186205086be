"""Run one function over many files with a progress bar, in ``nj`` processes, collecting user errors."""

import sys
from concurrent.futures import ProcessPoolExecutor

import torch
from tqdm import tqdm

from espnet_softvc.utils.errors import UserError


def _safe_call(fn, item):
    try:
        fn(item)
    except UserError as e:
        return str(e)
    return None


def run_jobs(fn, items, nj=1, desc=None):
    """Apply ``fn`` to every item; each failing item prints ``error: ...``; then one ``UserError`` if any failed.

    ``fn`` must be picklable when ``nj > 1`` (a module-level function or a ``functools.partial`` of one).
    """
    items = list(items)
    if nj > 1:
        with ProcessPoolExecutor(nj, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            results = list(tqdm(pool.map(_safe_call, [fn] * len(items), items), total=len(items), desc=desc))
    else:
        results = [_safe_call(fn, item) for item in tqdm(items, desc=desc)]
    errors = [r for r in results if r is not None]
    for message in errors[1:]:
        print(f"error: {message}", file=sys.stderr)
    if errors:
        more = f" ({len(errors)} of {len(items)} files failed, listed above)" if len(errors) > 1 else ""
        raise UserError(errors[0] + more)
