"""What the client raises: a problem document from the server, or a server it cannot reach."""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """Anything that went wrong talking to Harness."""


class ProblemError(HarnessError):
    """The server refused or failed a request, with an RFC 9457 problem document.

    Branch on :attr:`kind` (the last part of the problem's ``type``, such as ``limited``,
    ``refused`` or ``may-not-act-for``); show :attr:`detail` to a person: it says what to do.
    """

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type", "about:blank"))
        self.title: str = str(problem.get("title", ""))
        self.detail: str = str(problem.get("detail", ""))
        self.gate: str | None = problem.get("gate")
        super().__init__(f"{status} {self.title}: {self.detail}")

    @property
    def kind(self) -> str:
        """The problem's name: ``limited`` for ``urn:harness:problem:limited``."""
        return self.type.rsplit(":", 1)[-1]


class Unreachable(HarnessError):
    """The server could not be reached, or the connection failed mid-request."""
