"""Progress bars for the long steps: tqdm (Debian's python3-tqdm) on stderr, with rate and ETA.

On a terminal the bar redraws in place. In a log (stderr not a terminal) tqdm's carriage returns
would pile up on one line, so there each refresh becomes a line of its own, ASCII only, at most
every CTC_PROGRESS_SECONDS seconds (default 30). Each step prints one summary line when it ends
(`summary`, on stdout).
"""
import os, re, sys, time

from tqdm import tqdm


class _Lines:
    """A file for tqdm that writes each status as one line (tqdm writes '\\r' + status)."""

    def __init__(self, stream):
        self.stream, self.last = stream, None

    def write(self, s):
        s = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", s.replace("\r", "")).strip()  # (nested bars move the cursor)
        if s and s != self.last:  # (tqdm redraws the final status when it closes)
            self.stream.write(s + "\n")
            self.last = s

    def flush(self):
        self.stream.flush()


def bar(iterable=None, **kw):
    """tqdm over `iterable` (or a manual bar with total=...) suited to where stderr goes."""
    if sys.stderr.isatty():
        kw.setdefault("dynamic_ncols", True)
    else:
        kw.setdefault("file", _Lines(sys.stderr))
        kw.setdefault("mininterval", float(os.environ.get("CTC_PROGRESS_SECONDS", "30")))
        kw.setdefault("ascii", True)
        kw.setdefault("ncols", 100)
    return tqdm(iterable, **kw)


def elapsed(t0):
    """'1m05s' since t0 (time.time())."""
    s = time.time() - t0
    return f"{int(s // 60)}m{s % 60:04.1f}s" if s >= 60 else f"{s:.1f}s"


def summary(line):
    print(line, flush=True)
