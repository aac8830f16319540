"""User-facing errors: one clear line, exit code 2, no traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class InputError(Exception):
    """A problem with what the user gave us (a file, a flag, a config key).

    The message names the input and the problem in one line; the CLI prints it and exits with code 2.
    """


def cli_entry(prog: str) -> Callable[[Callable[..., int | None]], Callable[..., int]]:
    """Wrap a CLI ``main`` so that :class:`InputError` becomes ``prog: error: ...`` and exit code 2."""

    def wrap(fn: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(fn)
        def main(*args, **kwargs) -> int:
            try:
                code = fn(*args, **kwargs) or 0
            except InputError as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                code = 2
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                code = 130
            except BrokenPipeError:  # output piped into `head` and the like
                sys.stderr.close()
                code = 0
            sys.exit(code)

        return main

    return wrap
