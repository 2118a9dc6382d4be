"""What the API answers, as typed values. Fields the server adds later are ignored, so an older
client keeps working against a newer server."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def build(cls: type[T], data: dict[str, Any]) -> T:
    """An instance of the dataclass ``cls`` from the JSON object ``data``."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Tool:
    """A tool function of the whitelist."""

    name: str
    """How models and MCP clients name it: ``tool__function``."""
    path: str
    """Where to call it: ``/v1/tools/{tool}/{function}``."""
    input_schema: dict[str, Any]
    annotations: dict[str, bool]
    """``read_only``, ``destructive``, ``open_world``: derived from its grants."""
    title: str | None = None
    description: str | None = None
    output_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class CallResult:
    """What came of a tool call that was not refused."""

    decision: str
    """``ran``, or ``awaiting_approval`` (a person must decide; call again afterwards)."""
    function: str | None = None
    outcome: dict[str, Any] | None = None
    """``{"kind": "ok", "value": …}``, ``{"kind": "tool_error", "error": …}``, a stop, or
    ``withheld``."""
    fuel: int | None = None
    wall_us: int | None = None
    peak_memory: int | None = None
    denials: list[dict[str, Any]] = field(default_factory=list)
    approval: int | None = None

    @property
    def ok(self) -> bool:
        """Whether it ran and returned its ``ok`` value."""
        return self.outcome is not None and self.outcome.get("kind") == "ok"

    @property
    def value(self) -> Any:
        """The value it returned (``None`` unless :attr:`ok`)."""
        return self.outcome.get("value") if self.ok and self.outcome else None


@dataclass(frozen=True)
class RunReport:
    """A run that ended, or paused for approval."""

    run_id: str
    agent: str
    principal: str
    status: str
    """``answered``, ``paused``, ``budget_exhausted``, ``model_failed``, …"""
    answer: str
    """The model's answer, or a plain account of why there is none."""
    turns: int
    input_tokens: int
    output_tokens: int
    prompt_version: str
    events: list[dict[str, Any]] = field(default_factory=list)
    """Each step: ``{"event": "model" | "call" | "masked", …}``."""

    @property
    def answered(self) -> bool:
        return self.status == "answered"

    @property
    def paused(self) -> bool:
        return self.status == "paused"


@dataclass(frozen=True)
class RunAccepted:
    """A run going on in the background."""

    run_id: str
    location: str


@dataclass(frozen=True)
class RunStep:
    """One Server-Sent Event of a streamed run: ``run`` (its id), ``step`` (an event of the
    report, as it happens), then ``end`` (the report)."""

    kind: str
    data: dict[str, Any]

    @property
    def report(self) -> RunReport | None:
        """The report, on the ``end`` event."""
        return build(RunReport, self.data) if self.kind == "end" else None


@dataclass(frozen=True)
class Run:
    """A run as the audit log tells it."""

    run_id: str
    agent: str
    principal: str
    started_at: str
    status: str
    """``running`` (or its process stopped before it ended), ``paused``, or how it ended."""
    prompt_version: str
    canary: bool
    answer: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    """Its audit records (``seq``, ``at``, ``kind``, ``record``), when read one at a time."""

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first."""

    runs: list[Run]
    next: str | None = None


@dataclass(frozen=True)
class Feedback:
    """Feedback recorded on a run."""

    run_id: str
    author: str
    score: float
    prompt_version: str
    comment: str | None = None


@dataclass(frozen=True)
class Approval:
    """A human approval a call or run waits for (or waited for)."""

    id: int
    run_id: str
    function: str
    arguments: Any
    principal: str
    requested_at: str
    decision: str | None = None
    decided_by: str | None = None
    reason: str | None = None
    resumed: bool | None = None
    """On a decision: whether a paused run went on because of it."""


@dataclass(frozen=True)
class Switch:
    """A tool or agent switched off."""

    target: str
    reason: str
    at: str


@dataclass(frozen=True)
class Budget:
    """What one budget scope spent in its window."""

    scope: str
    spent: int
    limit: int
    window_secs: int
