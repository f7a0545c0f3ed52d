"""Errors that come from the user's input: printed as one paragraph (no traceback), exit status 2."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Something the user gave (a setting, a name, a file) is wrong; the message names it and the fix."""


def _library_user_errors() -> tuple[type[BaseException], ...]:
    """The library's own "bad input" exceptions, imported lazily so that `sms --help` stays light."""
    from data.files import DataError
    from sms.config import ConfigError
    from sms.exemplars import ExemplarError
    from sms.images import ImageLoadError
    from sms.models.errors import ModelLoadError
    from sms.registry import UnknownName
    from sms.runner import InputError

    return (UserError, DataError, ConfigError, ExemplarError, ImageLoadError, InputError, ModelLoadError, UnknownName)


@contextmanager
def reported(prog: str) -> Iterator[Callable[[], int]]:
    """Run a command; a user error becomes ``prog: error: <paragraph>`` on stderr and exit status 2."""
    try:
        yield lambda: 0
    except Exception as error:  # noqa: BLE001  (narrowed below; anything else keeps its traceback)
        if not isinstance(error, _library_user_errors()):
            raise
        message = " ".join(str(error).split()) if "\n" not in str(error).strip() else str(error).strip()
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
