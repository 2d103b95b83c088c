"""map_chunks: worker processes give the results of the serial calls, in order, and raise their errors."""

import functools

import pytest

from pipelines.core import parallel
from pipelines.core.progress import Progress


def squares(chunk, offset=0):
    return [x * x + offset for x in chunk]


def fails_on_seven(chunk):
    if 7 in chunk:
        raise ValueError("item 7 is bad")
    return chunk


@pytest.fixture
def always_parallel(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ITEMS", 0)


def test_workers_return_the_serial_results_in_order(always_parallel):
    fn = functools.partial(squares, offset=1)
    items = list(range(1000))
    serial = list(parallel.map_chunks(fn, items, chunk_size=7, workers=1))
    assert list(parallel.map_chunks(fn, items, chunk_size=7, workers=2)) == serial
    assert [x for chunk in serial for x in chunk] == [x * x + 1 for x in items]


def test_a_worker_error_reaches_the_caller(always_parallel):
    with pytest.raises(ValueError, match="item 7 is bad"):
        list(parallel.map_chunks(fails_on_seven, range(100), chunk_size=5, workers=2))


def test_progress_counts_items_and_small_inputs_stay_in_process(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", lambda **kw: calls.append(kw))
    with Progress("work", total=10, unit="items") as progress:
        assert list(parallel.map_chunks(squares, range(10), chunk_size=4, progress=progress)) == \
            [[0, 1, 4, 9], [16, 25, 36, 49], [64, 81]]
        assert progress.done == 10
    assert calls == []  # under MIN_PARALLEL_ITEMS: no pool started
