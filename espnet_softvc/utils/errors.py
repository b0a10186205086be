"""User-facing errors: one line naming the file and the problem, non-zero exit, no traceback."""

import functools
import signal
import sys
import threading

from tqdm import tqdm


class UserError(Exception):
    """A problem with the user's input (file, option, checkpoint), reported as one line."""


class Terminated(BaseException):
    """SIGTERM (``timeout``, job schedulers), raised in the main thread so that clean-up runs as for Ctrl-C."""


def not_installed(package, install, needed_by=None):
    """The error for an optional package that is missing: which one, who needs it, and how to install it."""
    return UserError(f"{package} is not installed{f' ({needed_by} needs it)' if needed_by else ''}: {install}")


def _terminate(signum, frame):
    raise Terminated


def cli(main):
    """Wrap a CLI ``main(argv=None)`` so that a ``UserError`` prints ``error: ...`` and exits 1."""

    @functools.wraps(main)
    def wrapper(argv=None):
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
        try:
            return main(argv)
        except UserError as e:
            _end_progress()
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            _end_progress()
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)
        except Terminated:
            _end_progress()
            print("error: terminated (SIGTERM)", file=sys.stderr)
            sys.exit(143)
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _end_progress():
    for bar in list(getattr(tqdm, "_instances", ())):  # end progress lines: the error gets a line of its own
        bar.close()
