"""The one place this app talks to Harness. Views validate input and call these functions; each
acts as the logged-in user (the client's entry has `act_for = true`), so Harness applies that
user's budget, rate limits and roles, and its audit log names them."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied

from harness_client import Approval, Client, ProblemError, Run, RunReport

# What a person asks for, and the Harness agent that does it.
AGENTS = {
    "question": "support",  # answers from the knowledge base
    "ticket": "clerk",  # opens a ticket, which a staff member approves
}


@dataclass(frozen=True)
class Outcome:
    """What the user sees after asking."""

    run_id: str | None
    status: str
    answer: str


def client() -> Client:
    """A client for the configured server (cheap: one per request)."""
    return Client(settings.HARNESS_URL, key=settings.HARNESS_KEY or None, timeout=120)


def principal(user: AbstractBaseUser) -> str:
    return user.get_username()


def roles(user: AbstractBaseUser) -> list[str]:
    """The user's Django groups that are Harness roles."""
    groups = user.groups.values_list("name", flat=True)  # type: ignore[attr-defined]
    return sorted(set(groups) & settings.HARNESS_ROLES)


def ask(user: AbstractBaseUser, kind: str, text: str) -> Outcome:
    """Runs the agent for ``kind`` on ``text`` as ``user`` and waits for its answer (or its
    pause for approval)."""
    try:
        with client() as harness:
            report: RunReport = harness.run(
                AGENTS[kind], text, principal=principal(user), roles=roles(user)
            )
    except ProblemError as problem:
        return Outcome(
            run_id=None,
            status=problem.kind,
            answer=f"The assistant could not run: {problem.detail}",
        )
    return Outcome(run_id=report.run_id, status=report.status, answer=report.answer)


def ask_later(user: AbstractBaseUser, kind: str, text: str) -> str:
    """Starts the agent for ``kind`` on ``text`` as ``user`` in the background; its run id."""
    with client() as harness:
        return harness.start_run(
            AGENTS[kind], text, principal=principal(user), roles=roles(user)
        ).run_id


def run(user: AbstractBaseUser, run_id: str) -> Run:
    """Run ``run_id``, if it is ``user``'s or ``user`` is staff: this app's client reads every
    user's runs, so the app keeps each user to their own."""
    with client() as harness:
        found = harness.get_run(run_id)
    if found.principal != principal(user) and not user.is_staff:  # type: ignore[attr-defined]
        raise PermissionDenied(f"run {run_id} is not yours")
    return found


def rate(user: AbstractBaseUser, run_id: str, helpful: bool, comment: str = "") -> None:
    """Records whether ``user`` found the answer helpful (once per run)."""
    run(user, run_id)
    with client() as harness:
        harness.feedback(
            run_id,
            1.0 if helpful else 0.0,
            comment=comment or None,
            principal=principal(user),
        )


def pending_approvals() -> list[Approval]:
    """Calls and runs waiting for a staff member."""
    with client() as harness:
        return harness.approvals()


def decide(user: AbstractBaseUser, approval: int, approve: bool, reason: str) -> Approval:
    """Approves or denies as the staff ``user`` (the decider of record); a paused run goes on."""
    with client() as harness:
        if approve:
            return harness.approve(approval, reason=reason or None, principal=principal(user))
        return harness.deny(approval, reason, principal=principal(user))
