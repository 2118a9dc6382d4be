"""The client against a real ``harness serve``: every part of the API, sync and async."""

from __future__ import annotations

import asyncio

import pytest

from conftest import APP, DESK, OPS, VIEWER
from harness_client import AsyncClient, Client, ProblemError, Unreachable


@pytest.fixture
def app(server):
    with Client(server.url, key=APP) as client:
        yield client


@pytest.fixture
def desk(server):
    with Client(server.url, key=DESK) as client:
        yield client


@pytest.fixture
def ops(server):
    with Client(server.url, key=OPS) as client:
        yield client


def test_tools_are_listed_and_called_through_the_gates(desk, server):
    names = [tool.name for tool in desk.tools()]
    assert "calc__apply" in names and "tickets__create" in names
    apply = next(t for t in desk.tools() if t.name == "calc__apply")
    assert apply.path == "/v1/tools/calc/apply"
    assert apply.annotations["read_only"] is True

    result = desk.call("calc", "apply", {"op": "mul", "a": 6, "b": 7})
    assert result.decision == "ran" and result.ok and result.value == 42.0
    assert result.fuel > 0

    with pytest.raises(ProblemError) as refused:
        Client(server.url, key=VIEWER).call("tickets", "list", {})
    assert (refused.value.status, refused.value.kind, refused.value.gate) == (403, "refused", "role")
    assert "needs one of the roles support" in refused.value.detail

    with pytest.raises(ProblemError) as invalid:
        desk.call("calc", "apply", {"op": "mul", "a": "six", "b": 7})
    assert invalid.value.kind == "invalid-arguments"

    waiting = desk.call("tickets", "create", {"title": "Printer", "body": "", "priority": "urgent"})
    assert waiting.decision == "awaiting_approval" and waiting.approval is not None


def test_a_run_is_reported_read_back_listed_and_judged(app):
    report = app.run("math", "What is 6 times 7?", principal="bob")
    assert (report.status, report.answer, report.principal) == ("answered", "6 × 7 = 42", "bob")
    assert [e["event"] for e in report.events] == ["model", "call", "model"]
    assert report.answered

    run = app.get_run(report.run_id)
    assert run.status == "answered" and run.agent == "math"
    assert [r["kind"] for r in run.records][0] == "run.started"
    assert "tool.called" in [r["kind"] for r in run.records]

    page = app.list_runs(principal="bob", status="answered", limit=1)
    assert page.runs[0].run_id == report.run_id
    assert report.run_id in [r.run_id for r in app.iter_runs(principal="bob")]

    given = app.feedback(report.run_id, 1.0, comment="right", principal="bob")
    assert (given.author, given.score, given.prompt_version) == ("bob", 1.0, report.prompt_version)
    with pytest.raises(ProblemError) as again:
        app.feedback(report.run_id, 0.0, principal="bob")
    assert (again.value.status, again.value.kind) == (409, "feedback-given")
    with pytest.raises(ProblemError) as unknown:
        app.run("nobody", "hi")
    assert unknown.value.kind == "unknown-agent"


def test_a_streamed_run_yields_its_steps_then_the_report(app):
    steps = list(app.stream_run("math", "6 × 7?", principal="bob"))
    assert [s.kind for s in steps] == ["run", "step", "step", "step", "end"]
    assert steps[0].data["principal"] == "bob"
    assert [s.data["event"] for s in steps[1:-1]] == ["model", "call", "model"]
    report = steps[-1].report
    assert report is not None and report.answered and report.run_id == steps[0].data["run_id"]


def test_a_background_run_waits_for_approval_then_finishes(app):
    accepted = app.start_run("clerk", "Open a ticket: VPN down.", principal="ana")
    assert accepted.location == f"/v1/runs/{accepted.run_id}"
    assert app.wait_run(accepted.run_id).status == "paused"

    pending = [a for a in app.approvals() if a.run_id == accepted.run_id]
    assert len(pending) == 1 and pending[0].function == "tickets.create"
    decided = app.approve(pending[0].id, reason="looks right", principal="sam")
    assert (decided.decision, decided.decided_by, decided.resumed) == ("approved", "sam", True)

    run = app.wait_run(accepted.run_id)
    assert (run.status, run.answer) == ("answered", "Ticket 1 is open.")
    with pytest.raises(ProblemError) as twice:
        app.deny(pending[0].id, "too late")
    assert twice.value.kind == "decided"


def test_acting_for_others_needs_the_entry_to_allow_it(desk, server):
    with pytest.raises(ProblemError) as refused:
        desk.run("math", "6 × 7?", principal="bob")
    assert (refused.value.status, refused.value.kind) == (403, "may-not-act-for")
    assert "act_for = true" in refused.value.detail
    with pytest.raises(ProblemError) as anonymous:
        Client(server.url).tools()
    assert (anonymous.value.status, anonymous.value.kind) == (401, "unauthorized")


def test_operators_switch_tools_and_read_figures(ops, desk):
    switched = ops.kill("tool", "calc", "maintenance")
    assert (switched.target, switched.reason) == ("tool:calc", "maintenance")
    assert [s.target for s in ops.switches()] == ["tool:calc"]
    with pytest.raises(ProblemError) as off:
        desk.call("calc", "apply", {"op": "add", "a": 1, "b": 2})
    assert (off.value.status, off.value.kind) == (503, "switched-off")
    ops.enable("tool", "calc")
    assert desk.call("calc", "apply", {"op": "add", "a": 1, "b": 2}).value == 3.0
    with pytest.raises(ValueError):
        ops.kill("gadget", "calc", "no such kind")

    assert isinstance(ops.budgets(), list)
    metrics = ops.metrics("1h")
    assert metrics["window_secs"] == 3600
    assert any(t["function"] == "calc.apply" for t in metrics["tools"])
    with pytest.raises(ProblemError) as not_operator:
        desk.metrics()
    assert not_operator.value.kind == "missing-role"


def test_the_async_client_does_the_same(server):
    async def scenario() -> None:
        async with AsyncClient(server.url, key=APP) as app:
            assert "calc__apply" in [t.name for t in await app.tools()]
            report = await app.run("math", "6 × 7?", principal="cy")
            assert report.answered
            kinds = [step.kind async for step in app.stream_run("math", "6 × 7?", principal="cy")]
            assert kinds == ["run", "step", "step", "step", "end"]
            runs = [run.run_id async for run in app.iter_runs(principal="cy")]
            assert report.run_id in runs and len(runs) == 2
            accepted = await app.start_run("math", "6 × 7?", principal="cy")
            assert (await app.wait_run(accepted.run_id)).status == "answered"
            with pytest.raises(ProblemError) as unknown:
                await app.get_run("run-nothing")
            assert unknown.value.kind == "unknown-run"

    asyncio.run(scenario())


def test_an_unreachable_server_is_said_so():
    with pytest.raises(Unreachable):
        Client("http://127.0.0.1:9", key=APP, timeout=2).tools()
