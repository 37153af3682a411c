"""The project's errors: one class per condition, the same class wherever it happens.

The CLI reports each as one line and exits with code 2; ``--debug`` shows the traceback.

- ``ConfigError``: ``params.yaml`` or a command-line option is invalid.
- ``InputNotFoundError``: a file the command needs does not exist (says what writes it).
- ``DataContractError``: a data file breaks the contract (file, column, first bad rows).
- ``RawDataChangedError`` / ``RawDataUnavailableError``: the raw data is not the pinned
  version, or cannot be fetched.
- ``ArtifactError``: a model or stage artifact is corrupt or not what it should be.
- ``ModelValidationError``: the model's predictions fail the validation contract.
- ``RegistryError``: the MLflow store or registry refused or failed; ``NoChampionError``: no
  version is champion yet (a fresh clone, an empty store).
- ``LockedError`` / ``RegistryLockedError``: another process held the checkout's lock, or the
  registry's, for longer than this one would wait.
- ``VerificationError``: artifacts do not match their manifest (one line each).
- ``PromotionRefusedError``: the promotion rule refused to move the champion alias. An
  expected outcome, not an error: the CLI tells it with its own exit code
  (``cli/options.py``: ``PROMOTION_REFUSED_EXIT_CODE``).
- ``WriteError``: a file cannot be written where it goes (read-only, full, not allowed); what
  was there before stays as it was. Such an ``OSError`` anywhere else is told in one line too
  (``ENVIRONMENT_ERRNOS``).

Two more are no user's error but signals inside the package: ``UnparsedCellError`` (read a CSV
file as text instead) and ``StopSignalError`` (the server was told to stop).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

# OSErrors of the place a file goes, not of the program: the user can fix them.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EFBIG}
)


class LeadConversionError(Exception):
    """Base class of every error a user can fix: bad input, bad config, bad artifact."""


class ConfigError(LeadConversionError):
    """``params.yaml`` or an option is invalid."""


class InputNotFoundError(LeadConversionError):
    """A file a command reads does not exist; ``hint`` says how to make it."""

    def __init__(self, path: Path | str, hint: str = "") -> None:
        self.path = str(path)
        self.hint = hint
        super().__init__(f"{path}: not found" + (f"; {hint}" if hint else ""))


class DataContractError(LeadConversionError):
    """A data file breaks the contract: it names the file, the column and the first bad rows.

    ``rows`` are 0-based positions among the data rows; the message shows them as line
    numbers of a CSV file (the header is line 1; ``lines`` when a quoted field spans several
    lines) or, with ``header=False``, as 1-based rows.
    """

    def __init__(
        self,
        file: Path | str,
        problem: str,
        column: str | None = None,
        rows: Sequence[int] = (),
        n_bad: int | None = None,
        header: bool = True,
        lines: Sequence[int] = (),
    ) -> None:
        self.file = str(file)
        self.problem = problem
        self.column = column
        self.rows = list(rows)
        self.n_bad = len(self.rows) if n_bad is None else n_bad
        self.header = header
        self.lines = list(lines)
        super().__init__(self._render())

    def at_lines(self, lines: Sequence[int]) -> DataContractError:
        """The same error, naming the file's physical ``lines`` of its rows."""
        return DataContractError(
            self.file, self.problem, self.column, self.rows, self.n_bad, self.header, lines
        )

    def _render(self) -> str:
        where = f"{self.file}: column '{self.column}'" if self.column else self.file
        message = f"{where}: {self.problem}"
        if self.rows:
            unit, first = ("line", 2) if self.header else ("row", 1)
            shown = self.lines[:5] or [row + first for row in self.rows[:5]]
            numbers = ", ".join(str(number) for number in shown)
            message += f" at {unit} {numbers}" if len(self.rows) == 1 else f" at {unit}s {numbers}"
            if self.n_bad > len(self.rows[:5]):
                message += f" ({self.n_bad} bad rows in all)"
        return message


class RawDataChangedError(LeadConversionError):
    """The raw data file is not the version pinned in its ``.dvc`` file."""


class RawDataUnavailableError(LeadConversionError):
    """Neither a DVC remote nor the upstream URL gave the raw data."""


class ArtifactError(LeadConversionError):
    """An artifact is corrupt, fails its checksum, or is not what the stage expects."""


class ModelValidationError(LeadConversionError):
    """The model's predictions fail the validation contract."""


class RegistryError(LeadConversionError):
    """The MLflow tracking store or model registry refused or failed an operation."""


class NoChampionError(RegistryError):
    """No version holds the champion alias yet: a fresh clone, or an empty tracking store."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"{name}: no champion yet; run 'make pipeline' first")


class VerificationError(ArtifactError):
    """One or more artifacts do not match their manifest; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class PromotionRefusedError(LeadConversionError):
    """The promotion rule refused to move the champion alias; the message says why."""


class LockedError(LeadConversionError):
    """Another process holds the lock, and the wait for it ran out."""


class RegistryLockedError(LeadConversionError):
    """Another process held the registry lock for longer than this one would wait."""


class WriteError(LeadConversionError):
    """A file cannot be written where it goes; the previous file, if any, is left as it was."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: cannot write it: {reason}; the previous file is unchanged")


class UnparsedCellError(Exception):
    """A cell of a CSV file does not parse as its column's type: read the file as text."""


class StopSignalError(Exception):
    """SIGTERM or SIGINT arrived: the server has shut down, the command ends cleanly."""
