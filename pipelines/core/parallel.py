"""Chunks of CPU-bound Python work (tokenising a corpus) over worker processes, results in order.

The results are those of the same calls made one after another, so a stage's
outputs do not depend on the number of CPUs. Workers are forked where the OS
can (no re-import of the caller's script, which `spawn` would run again without
an `if __name__ == "__main__"` guard); they run pure-Python text code only, so
the library threads a stage may hold (pyarrow's) are never needed in them.
"""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

# Below this many items the start-up of the workers (about a second) outweighs the gain.
MIN_PARALLEL_ITEMS = 4000
MAX_WORKERS = 8


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def map_chunks(chunk_fn, items, chunk_size=None, progress=None, workers=None):
    """Yields chunk_fn(items[i:i + chunk_size]) for i = 0, chunk_size, ... in order.

    `chunk_size` None: about 1% of the items, at most 500, so that progress moves in steady steps.

    `chunk_fn` must be a module-level function (or a functools.partial of one) so
    that workers can import it. `progress` (pipelines.core.progress.Progress) counts
    the items as their chunks finish. An exception in a chunk is raised here.
    """
    items = list(items)
    if chunk_size is None:
        chunk_size = max(1, min(500, len(items) // 100))
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    workers = min(MAX_WORKERS, usable_cpus()) if workers is None else int(workers)
    if workers < 2 or len(items) < MIN_PARALLEL_ITEMS:
        results = map(chunk_fn, chunks)
        pool = None
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)),
                                   mp_context=multiprocessing.get_context(method))
        results = pool.map(chunk_fn, chunks)
    try:
        for chunk, result in zip(chunks, results):
            if progress is not None:
                progress.update(len(chunk))
            yield result
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
