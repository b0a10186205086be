"""User-facing errors: one line naming the file and the problem, non-zero exit, no traceback."""

import functools
import sys

from tqdm import tqdm


class UserError(Exception):
    """A problem with the user's input (file, option, checkpoint), reported as one line."""


def cli(main):
    """Wrap a CLI ``main(argv=None)`` so that a ``UserError`` prints ``error: ...`` and exits 1."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv)
        except UserError as e:
            for bar in list(getattr(tqdm, "_instances", ())):  # end progress lines: the error gets a line of its own
                bar.close()
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
