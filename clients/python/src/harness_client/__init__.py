"""A typed client for the Harness HTTP API: sandboxed tools, agent runs (answered, streamed or
in the background), approvals, kill switches and figures, sync (:class:`Client`) and async
(:class:`AsyncClient`). Errors are :class:`ProblemError` carrying the server's RFC 9457 problem
document."""

from .aio import AsyncClient
from .client import Client
from .errors import HarnessError, ProblemError, Unreachable
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

__all__ = [
    "Approval",
    "AsyncClient",
    "Budget",
    "CallResult",
    "Client",
    "Feedback",
    "HarnessError",
    "ProblemError",
    "Run",
    "RunAccepted",
    "RunPage",
    "RunReport",
    "RunStep",
    "Switch",
    "Tool",
    "Unreachable",
]
