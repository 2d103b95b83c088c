"""Progress of long work, on stderr: a bar redrawn in place on a terminal, else a line every ~10 s.

DVC captures a stage's output without a terminal, so a redrawn bar would be
one endless line there; the periodic lines keep its log moving instead.
"""

import sys
import time


def format_seconds(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts done units of `total` (None when unknown) and reports them now and then.

    with Progress("prepare: reading train.jsonl", total=25000, unit="reviews") as progress:
        for record in records:
            progress.update()
    """

    def __init__(self, desc, total=None, unit="items", every=None, stream=None, clock=time.monotonic,
                 heartbeat=False):
        self.desc = desc
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every if every is not None else (0.5 if self.tty else 10.0)
        self.clock = clock
        self.done = 0
        self.start = clock()
        self._last = self.start
        self._printed_at = None  # `done` when the last line was written
        self.extra = ""
        self.heartbeat = heartbeat  # inside `with`, also write while no update comes (a long library call)
        self._stop = None

    def __enter__(self):
        if self.heartbeat and self.every > 0:
            import threading

            self._stop = threading.Event()
            threading.Thread(target=self._beat, daemon=True).start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop_heartbeat()
        self.close(failed=exc_type is not None)

    def stop_heartbeat(self):
        if self._stop is not None:
            self._stop.set()

    def _beat(self):
        while not self._stop.wait(self.every / 2):
            self.update(0)

    def update(self, n=1, extra=None):
        self.done += n
        if extra is not None:
            self.extra = extra
        now = self.clock()
        if now - self._last >= self.every:
            self._last = now
            self._write(self.line(now))

    def line(self, now=None):
        elapsed = (now if now is not None else self.clock()) - self.start
        text = f"{self.desc}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {format_seconds(elapsed)}"
        if self.total and 0 < self.done < self.total:
            text += f", ETA {format_seconds(elapsed * (self.total - self.done) / self.done)}"
        if self.extra:
            text += f", {self.extra}"
        return text

    def _write(self, text):
        self._printed_at = self.done
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self, failed=False):
        """A final line, unless nothing was ever printed and the work took under `every` seconds."""
        if not failed and self._printed_at != self.done and (
                self._printed_at is not None or self.clock() - self.start >= self.every):
            self._write(self.line())
        if self.tty and self._printed_at is not None:
            self.stream.write("\n")
        self.stream.flush()


class heartbeat(Progress):
    """A line every ~10 s while a step that reports nothing runs (loading, building a model).

    with heartbeat("train: loading the prepared data"):
        ...
    """

    def __init__(self, desc, every=None, stream=None):
        super().__init__(desc, unit="s", every=every, stream=stream, heartbeat=True)

    def line(self, now=None):
        return f"{self.desc}: {format_seconds((now if now is not None else self.clock()) - self.start)}"

    def close(self, failed=False):
        pass  # the step's own output follows
