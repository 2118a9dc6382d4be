"""The synchronous client: for Django views, management commands, scripts."""

from __future__ import annotations

import time
from typing import Any, Iterator

import httpx

from . import _api
from .errors import Unreachable
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
)

DEFAULT_TIMEOUT = 300.0
"""Seconds a request may take: a run waits for its model and tools."""


class Client:
    """A Harness server's HTTP API.

    ``key`` is the client's key (``harness keys new NAME``); ``None`` for a server without
    clients (the local user). Methods that take ``principal`` act for that end user, which the
    client's entry must allow (``act_for = true``); budgets, rates and roles then apply to them.

    >>> with Client("http://127.0.0.1:7878", key="hk_…") as harness:  # doctest: +SKIP
    ...     report = harness.run("support", "Is the VPN down?", principal="ana")
    ...     print(report.answer)
    """

    def __init__(
        self,
        base_url: str,
        key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections."""
        self._http.close()

    def _send(self, request: _api.Request) -> Any:
        try:
            response = self._http.request(
                request.method, request.path, json=request.body, params=request.params
            )
        except httpx.TransportError as error:
            raise Unreachable(f"{request.method} {request.path}: {error}") from error
        return request.read(_api.check(response))

    # Tools

    def tools(self) -> list[Tool]:
        """The tool functions not switched off."""
        return self._send(_api.tools())

    def call(self, tool: str, function: str, arguments: dict[str, Any]) -> CallResult:
        """Calls ``tool.function`` through the gates and the sandbox. A refusal raises
        :class:`ProblemError` (``refused``, ``limited``, ``switched-off``, …)."""
        return self._send(_api.call(tool, function, arguments))

    # Runs

    def run(
        self,
        agent: str,
        input: str,
        *,
        principal: str | None = None,
        roles: list[str] | None = None,
    ) -> RunReport:
        """Runs ``agent`` on ``input`` and returns its report once it ends or pauses."""
        return self._send(_api.run(agent, input, principal, roles))

    def start_run(
        self,
        agent: str,
        input: str,
        *,
        principal: str | None = None,
        roles: list[str] | None = None,
    ) -> RunAccepted:
        """Starts a run that goes on in the server; read it with :meth:`get_run`."""
        return self._send(_api.start_run(agent, input, principal, roles))

    def stream_run(
        self,
        agent: str,
        input: str,
        *,
        principal: str | None = None,
        roles: list[str] | None = None,
    ) -> Iterator[RunStep]:
        """Runs ``agent`` and yields each step as it happens; the last has the report."""
        body = _api.run_body(agent, input, principal, roles, True)
        headers = {"Accept": "text/event-stream"}
        try:
            with self._http.stream(
                "POST", "/v1/runs", json=body, headers=headers
            ) as response:
                if not response.is_success:
                    response.read()
                    _api.check(response)
                events = _api.EventStream()
                for line in response.iter_lines():
                    step = events.feed(line)
                    if step is None:
                        continue
                    error = _api.stream_error(step)
                    if error is not None:
                        raise error
                    yield step
        except httpx.TransportError as error:
            raise Unreachable(f"POST /v1/runs: {error}") from error

    def get_run(self, run_id: str) -> Run:
        """Run ``run_id`` with its audit records."""
        return self._send(_api.get_run(run_id))

    def wait_run(self, run_id: str, *, timeout: float = 60.0, every: float = 0.1) -> Run:
        """Run ``run_id`` once it is no longer running (ended or paused), read every
        ``every`` seconds; :class:`TimeoutError` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get_run(run_id)
            if not run.running:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still runs after {timeout} s")
            time.sleep(every)

    def list_runs(
        self,
        *,
        principal: str | None = None,
        status: str | None = None,
        since: str | None = None,
        within: str | None = None,
        limit: int | None = None,
    ) -> RunPage:
        """One page of runs, newest first; ``since`` is a time (RFC 3339), ``within`` a span
        back from now (``1h``)."""
        return self._send(_api.list_runs(principal, status, since, within, limit))

    def next_page(self, page: RunPage) -> RunPage | None:
        """The page after ``page``, if there may be one."""
        return self._send(_api.next_page(page.next)) if page.next else None

    def iter_runs(
        self,
        *,
        principal: str | None = None,
        status: str | None = None,
        since: str | None = None,
        within: str | None = None,
    ) -> Iterator[Run]:
        """Every run the filters select, newest first, a page at a time."""
        page: RunPage | None = self.list_runs(
            principal=principal, status=status, since=since, within=within
        )
        while page is not None:
            yield from page.runs
            page = self.next_page(page)

    def feedback(
        self,
        run_id: str,
        score: float,
        *,
        comment: str | None = None,
        principal: str | None = None,
    ) -> Feedback:
        """Records what the end user (or a reviewer) thought of a run: a score from 0 to 1,
        once per author."""
        return self._send(_api.feedback(run_id, score, comment, principal))

    # Approvals

    def approvals(self, *, all: bool = False) -> list[Approval]:
        """The approvals still waiting (``all``: every one). Needs the role ``approver``."""
        return self._send(_api.approvals(all))

    def approve(
        self, approval: int, *, reason: str | None = None, principal: str | None = None
    ) -> Approval:
        """Approves; a paused run whose last approval it was goes on in the server."""
        return self._send(_api.decide(approval, "approve", reason, principal))

    def deny(
        self, approval: int, reason: str, *, principal: str | None = None
    ) -> Approval:
        """Denies with a reason, which the caller (or the run's model) is told."""
        return self._send(_api.decide(approval, "deny", reason, principal))

    # Switches and figures

    def switches(self) -> list[Switch]:
        """The tools and agents switched off. Needs the role ``operator``."""
        return self._send(_api.switches())

    def kill(self, kind: str, name: str, reason: str) -> Switch:
        """Switches a ``tool`` or ``agent`` off for every process sharing the state."""
        return self._send(_api.kill(_api.switch_kind(kind), name, reason))

    def enable(self, kind: str, name: str) -> None:
        """Switches a ``tool`` or ``agent`` back on."""
        self._send(_api.enable(_api.switch_kind(kind), name))

    def budgets(self) -> list[Budget]:
        """What each budget scope spent in its window. Needs the role ``operator``."""
        return self._send(_api.budgets())

    def metrics(self, window: str | None = None) -> dict[str, Any]:
        """Runs, feedback and tokens per prompt version, calls per tool, refusals per gate."""
        return self._send(_api.metrics(window))
