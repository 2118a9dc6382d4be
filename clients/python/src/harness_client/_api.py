"""Each endpoint once: the request to send and how to read its answer. The sync and async
clients only send what these describe."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

import httpx

from .errors import ProblemError
from .types import (
    Approval,
    Budget,
    CallResult,
    Feedback,
    Run,
    RunAccepted,
    RunPage,
    RunReport,
    RunStep,
    Switch,
    Tool,
    build,
)


@dataclass(frozen=True)
class Request:
    """One request and the reading of its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], Any]
    body: Any = None
    params: dict[str, Any] | None = None


def check(response: httpx.Response) -> httpx.Response:
    """``response``, unless it is an error: then a :class:`ProblemError` with its problem
    document (or one made of the status and text when the answer is not one)."""
    if response.is_success:
        return response
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {
            "type": "about:blank",
            "title": response.reason_phrase,
            "status": response.status_code,
            "detail": response.text,
        }
    raise ProblemError(response.status_code, problem)


def _some(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _segment(value: str) -> str:
    return quote(value, safe="")


def tools() -> Request:
    return Request("GET", "/v1/tools", lambda r: [build(Tool, t) for t in r.json()])


def call(tool: str, function: str, arguments: dict[str, Any]) -> Request:
    return Request(
        "POST",
        f"/v1/tools/{_segment(tool)}/{_segment(function)}",
        lambda r: build(CallResult, r.json()),
        body=arguments,
    )


def run_body(
    agent: str,
    input: str,
    principal: str | None,
    roles: list[str] | None,
    wait: bool,
) -> dict[str, Any]:
    return _some(
        {
            "agent": agent,
            "input": input,
            "principal": principal,
            "roles": roles,
            "wait": None if wait else False,
        }
    )


def run(
    agent: str, input: str, principal: str | None, roles: list[str] | None
) -> Request:
    return Request(
        "POST",
        "/v1/runs",
        lambda r: build(RunReport, r.json()),
        body=run_body(agent, input, principal, roles, True),
    )


def start_run(
    agent: str, input: str, principal: str | None, roles: list[str] | None
) -> Request:
    return Request(
        "POST",
        "/v1/runs",
        lambda r: build(RunAccepted, r.json()),
        body=run_body(agent, input, principal, roles, False),
    )


def get_run(run_id: str) -> Request:
    return Request("GET", f"/v1/runs/{_segment(run_id)}", lambda r: build(Run, r.json()))


def list_runs(
    principal: str | None,
    status: str | None,
    since: str | None,
    within: str | None,
    limit: int | None,
) -> Request:
    return Request(
        "GET",
        "/v1/runs",
        read_page,
        params=_some(
            {
                "principal": principal,
                "status": status,
                "since": since,
                "within": within,
                "limit": limit,
            }
        ),
    )


def next_page(address: str) -> Request:
    """The page at ``address``, a page's ``next``."""
    return Request("GET", address, read_page)


def read_page(response: httpx.Response) -> RunPage:
    page = response.json()
    return RunPage(runs=[build(Run, r) for r in page["runs"]], next=page.get("next"))


def feedback(
    run_id: str, score: float, comment: str | None, principal: str | None
) -> Request:
    return Request(
        "POST",
        f"/v1/runs/{_segment(run_id)}/feedback",
        lambda r: build(Feedback, r.json()),
        body=_some({"score": score, "comment": comment, "principal": principal}),
    )


def approvals(all: bool) -> Request:
    return Request(
        "GET",
        "/v1/approvals",
        lambda r: [build(Approval, a) for a in r.json()],
        params={"all": "true"} if all else None,
    )


def decide(
    approval: int, verdict: str, reason: str | None, principal: str | None
) -> Request:
    return Request(
        "POST",
        f"/v1/approvals/{int(approval)}/{verdict}",
        lambda r: build(Approval, r.json()),
        body=_some({"reason": reason, "principal": principal}),
    )


def switches() -> Request:
    return Request("GET", "/v1/switches", lambda r: [build(Switch, s) for s in r.json()])


def kill(kind: str, name: str, reason: str) -> Request:
    return Request(
        "PUT",
        f"/v1/switches/{_segment(kind)}/{_segment(name)}",
        lambda r: build(Switch, r.json()),
        body={"reason": reason},
    )


def enable(kind: str, name: str) -> Request:
    return Request(
        "DELETE", f"/v1/switches/{_segment(kind)}/{_segment(name)}", lambda r: None
    )


def budgets() -> Request:
    return Request("GET", "/v1/budgets", lambda r: [build(Budget, b) for b in r.json()])


def metrics(window: str | None) -> Request:
    return Request(
        "GET", "/v1/metrics", lambda r: r.json(), params=_some({"window": window})
    )


def switch_kind(kind: str) -> str:
    """``tools`` or ``agents``, from either form."""
    plural = kind if kind.endswith("s") else f"{kind}s"
    if plural not in ("tools", "agents"):
        raise ValueError(f"a switch is for a tool or an agent, not {kind!r}")
    return plural


class EventStream:
    """Reads Server-Sent Events line by line into :class:`RunStep` values."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> RunStep | None:
        """The step a line completes, if it completes one."""
        if line == "":
            if not self._data:
                return None
            step = RunStep(kind=self._event, data=json.loads("\n".join(self._data)))
            self._event, self._data = "message", []
            return step
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def stream_error(step: RunStep) -> ProblemError | None:
    """The problem an ``error`` event carries."""
    if step.kind != "error":
        return None
    return ProblemError(int(step.data.get("status", 500)), step.data)
