"""Views validate what people send and hand the work to `services`, which calls Harness as the
logged-in user. Long work needs no Celery: the JSON API starts the run in Harness's background
and answers 202 with its id at once."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from harness_client import ProblemError

from . import services
from .forms import AskForm, DecisionForm, FeedbackForm
from .serializers import AskSerializer


@login_required
def ask(request: HttpRequest) -> HttpResponse:
    form = AskForm(request.POST or None)
    outcome = None
    if request.method == "POST" and form.is_valid():
        outcome = services.ask(request.user, form.cleaned_data["kind"], form.cleaned_data["text"])
    return render(
        request,
        "desk/ask.html",
        {"form": form, "outcome": outcome, "feedback": FeedbackForm()},
    )


@login_required
def run(request: HttpRequest, run_id: str) -> HttpResponse:
    try:
        found = services.run(request.user, run_id)
    except ProblemError as problem:
        return render(request, "desk/problem.html", {"problem": problem}, status=problem.status)
    return render(request, "desk/run.html", {"run": found, "feedback": FeedbackForm()})


@login_required
@require_POST
def feedback(request: HttpRequest, run_id: str) -> HttpResponse:
    form = FeedbackForm(request.POST)
    if form.is_valid():
        try:
            services.rate(
                request.user, run_id, form.cleaned_data["helpful"], form.cleaned_data["comment"]
            )
            messages.success(request, "Thank you for your feedback.")
        except ProblemError as problem:
            messages.error(request, problem.detail)
    return redirect("desk:run", run_id=run_id)


@staff_member_required
def approvals(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "desk/approvals.html",
        {"approvals": services.pending_approvals(), "form": DecisionForm()},
    )


@staff_member_required
@require_POST
def decide(request: HttpRequest, approval: int) -> HttpResponse:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("desk:approvals")
    try:
        decided = services.decide(
            request.user,
            approval,
            form.cleaned_data["decision"] == "approve",
            form.cleaned_data["reason"],
        )
        went_on = " The run goes on." if decided.resumed else ""
        messages.success(request, f"Approval {approval} {decided.decision}.{went_on}")
    except ProblemError as problem:
        messages.error(request, problem.detail)
    return redirect("desk:approvals")


@api_view(["POST"])
def api_ask(request: Request) -> Response:
    """Starts the agent in Harness's background: 202 with the run's id and where to read it."""
    serializer = AskSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    run_id = services.ask_later(
        request.user, serializer.validated_data["kind"], serializer.validated_data["text"]
    )
    return Response(
        {"run_id": run_id, "url": f"/api/runs/{run_id}"}, status=status.HTTP_202_ACCEPTED
    )


@api_view(["GET"])
def api_run(request: Request, run_id: str) -> Response:
    found = services.run(request.user, run_id)
    return Response({"run_id": found.run_id, "status": found.status, "answer": found.answer})
