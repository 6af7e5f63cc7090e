"""Map every expected failure to one line on stderr and exit code 1: users never see a traceback."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from modelplane.api.errors import InvalidObjectError
from modelplane.catalog.errors import CatalogError

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_INFEASIBLE = 2


class InputFileError(Exception):
    """Raised when a file named on the command line is not text modelplane can read or holds nothing to plan."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


EXPECTED_ERRORS: tuple[type[Exception], ...] = (InvalidObjectError, CatalogError, InputFileError, OSError)


def printable(text: str) -> str:
    """Escape what a terminal would act on: a user's field name must not break the line or inject escapes."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


@contextmanager
def user_errors(extra: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn expected errors into `modelplane: error: <message>` and exit 1."""
    try:
        yield
    except (*EXPECTED_ERRORS, *extra) as error:
        message = str(error)
        if isinstance(error, OSError) and error.filename:
            message = f"{error.filename}: {error.strerror}"
        typer.echo(f"modelplane: error: {printable(message)}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


# Every click parsing error (unknown option or command, bad value, missing argument) derives from UsageError;
# typer exports only its subclass BadParameter (newer typer vendors click as a private module).
USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]


@contextmanager
def _usage_errors_are_bad_input() -> Iterator[None]:
    try:
        yield
    except USAGE_ERROR as error:
        error.exit_code = EXIT_BAD_INPUT  # type: ignore[attr-defined]
        raise


class BadInputGroup(TyperGroup):
    """click exits 2 on a usage error, our code for "infeasible"; a wrong option or missing argument is bad input.

    click still prints its usage message; only the exit code changes. Subcommands are parsed inside `invoke`.
    The contexts are typed Any: typer types them with its private copy of click.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with _usage_errors_are_bad_input():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_are_bad_input():
            return super().invoke(ctx)
