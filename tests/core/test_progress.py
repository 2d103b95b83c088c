"""core.progress: periodic lines for DVC's log, a bar on a terminal, a heartbeat for silent steps."""

import io
import time

from pipelines.core.progress import Progress, format_seconds, heartbeat


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_lines_come_every_period_with_an_eta_and_one_final_line():
    clock, out = Clock(), io.StringIO()
    with Progress("prepare: reading", total=100, unit="docs", stream=out, clock=clock) as progress:
        for _ in range(100):
            clock.now += 0.5
            progress.update()
    assert out.getvalue().splitlines() == [
        "prepare: reading: 20/100 docs (20%), 10 s, ETA 40 s",
        "prepare: reading: 40/100 docs (40%), 20 s, ETA 30 s",
        "prepare: reading: 60/100 docs (60%), 30 s, ETA 20 s",
        "prepare: reading: 80/100 docs (80%), 40 s, ETA 10 s",
        "prepare: reading: 100/100 docs (100%), 50 s",
    ]


def test_short_work_prints_nothing():
    out = io.StringIO()
    with Progress("quick", total=3, stream=out) as progress:
        progress.update(3)
    assert out.getvalue() == ""


def test_heartbeat_writes_while_nothing_updates():
    out = io.StringIO()
    with heartbeat("train: loading the prepared data", every=0.2, stream=out):
        time.sleep(0.7)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("train: loading the prepared data: ") for line in lines)


def test_format_seconds():
    assert [format_seconds(s) for s in (4.4, 75, 3725)] == ["4 s", "1 min 15 s", "1 h 02 min"]
