"""Map every expected failure to one line on stderr and exit code 1: users never see a traceback."""

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from modelplane.api.errors import InvalidObjectError
from modelplane.catalog.errors import CatalogError

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_INFEASIBLE = 2

EXPECTED_ERRORS: tuple[type[Exception], ...] = (InvalidObjectError, CatalogError, OSError)


@contextmanager
def user_errors(extra: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn expected errors into `modelplane: <message>` and exit 1."""
    try:
        yield
    except (*EXPECTED_ERRORS, *extra) as error:
        message = str(error)
        if isinstance(error, OSError) and error.filename:
            message = f"{error.filename}: {error.strerror}"
        typer.echo(f"modelplane: error: {message}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
