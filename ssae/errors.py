"""The one exception type for expected failures (bad input, bad run directory, NaN loss).

The command line prints ``ssae: error: <message>`` and exits with status 2, without a
traceback. The message is one line and names the file or the cause.
"""


class SsaeError(Exception):
    """An expected, user-facing failure. ``str(err)`` is a single line naming the file or cause."""
