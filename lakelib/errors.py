"""Every exception lakelib raises on purpose, in one place.

A job's ``main`` maps them to exit codes: :class:`UsageError` and :class:`ConfigError` exit 2 (the command
or the config must change), every other :class:`LakelibError` exits 1 (the run failed). The message of each
is one line that says what is wrong and, where it can, what to do.
"""
from __future__ import annotations

from typing import Mapping, Sequence


class LakelibError(Exception):
    """Base class of lakelib's own errors; ``str(error)`` is the one line shown to the user."""

    exit_code = 1


class UsageError(LakelibError, ValueError):
    """The command line is wrong (a bad date, ``--end-date`` before ``--date``, an unknown table...)."""

    exit_code = 2


class ConfigError(LakelibError, ValueError):
    """The YAML config is wrong: unknown or missing key, bad URI, an output root inside ``lake.raw``."""

    exit_code = 2


class InputError(LakelibError):
    """The raw input cannot be used: no data for the requested day, a truncated or corrupt gzip file."""


class IdsFileError(InputError):
    """A line of ``forget_users``' ids file is not what it must be; the message names its line, never its content."""


class ErasureError(LakelibError):
    """Erasure cannot go on safely: the store of forgotten ids is inconsistent, or linking ids does not settle."""


class CatalogError(LakelibError):
    """The metastore (Spark's or AWS Glue) refused or failed an operation."""


class ForeignTableError(CatalogError):
    """A table of the catalog's database that lakelib did not create stands where lakelib would write."""


class PartialRegistrationError(CatalogError):
    """The catalog refused a registration part way: some partitions are registered, the others are not.

    Registering is idempotent, so a rerun of the job finishes it. The message says how many are registered; the
    attributes say which (each partition as its key values), for the run report
    (:func:`lakelib.report.record_registration`).

    Attributes
    ----------
    table
        The table's name.
    registered
        Partitions the catalog holds at the location asked for.
    not_registered
        Partitions it does not hold, or holds at another location.
    unknown
        Partitions whose state could not be read back (the catalog failed that too).
    """

    def __init__(
        self,
        message: str,
        *,
        table: str,
        registered: Sequence[Mapping[str, str]] = (),
        not_registered: Sequence[Mapping[str, str]] = (),
        unknown: Sequence[Mapping[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.table = table
        self.registered = [dict(v) for v in registered]
        self.not_registered = [dict(v) for v in not_registered]
        self.unknown = [dict(v) for v in unknown]


class LockError(LakelibError):
    """Another run holds the lock of a step that must not run twice at once."""


class VerificationError(LakelibError):
    """Rewritten data does not match the data it replaces; nothing was published."""


class SubmitError(LakelibError):
    """An EMR submission could not be built or sent."""


class MissingExtraError(LakelibError, ImportError):
    """An optional dependency is not installed (matplotlib for charts); the message names the pip extra."""


def one_line(text: object, limit: int = 400) -> str:
    """The first non-blank line of ``text`` (an exception or a message), spaces collapsed, cut to ``limit``.

    The one way lakelib turns an error into the single line a user sees.

    >>> one_line("\\n  Table  not found:\\n   at org.apache...")
    'Table not found:'
    >>> one_line(ValueError(""))
    'ValueError'
    """
    lines = (" ".join(line.split()) for line in str(text).splitlines())
    first = next((line for line in lines if line), type(text).__name__ if isinstance(text, BaseException) else "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def aws_error(exc: BaseException) -> tuple[str, str]:
    """``(code, message)`` of a botocore error (``ClientError``, a waiter's failure), the message on one line.

    >>> aws_error(RuntimeError("boom"))
    ('RuntimeError', 'boom')
    """
    response = getattr(exc, "response", None) or getattr(exc, "last_response", None) or {}
    error = response.get("Error") or {}
    return str(error.get("Code") or type(exc).__name__), one_line(error.get("Message") or exc)
