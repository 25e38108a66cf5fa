"""The one exception type for bad input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in an instance: where (``path``, a dotted key path) and what (``message``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InstanceError(ValueError):
    """An instance file or mapping is invalid.

    ``problems`` lists every problem found (validation never stops at the first
    one); ``source`` names the file when there is one.
    """

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.source or "instance"
        n = len(self.problems)
        head = f"{where}: {n} problem{'s' if n != 1 else ''}"
        return head + "".join(f"\n  - {p}" for p in self.problems)

    @property
    def paths(self) -> list[str]:
        """The key path of each problem, in order."""
        return [p.path for p in self.problems]
