"""The errors a stage reports as one line (`<stage>: error: <what>`) instead of a traceback.

They live here, in a module that is never `__main__`, so that every module
catches the same classes whatever `python -m` ran.
"""


class DataError(ValueError):
    """Bad input data; the message names the file and line (or record) and the problem."""


class ParamsError(ValueError):
    """A params.yaml value that cannot work; the message names the key."""


class StageError(RuntimeError):
    """A stage cannot run or its result is wrong (missing input, failed parity check)."""
