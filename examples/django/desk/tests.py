"""The support desk against a real `harness serve` (started once for these tests, over tools
built from source and scripted models): each view validates, then Harness runs the agent as the
logged-in user."""

import tempfile
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.test import TestCase, override_settings
from harness_client import Client
from harness_client.testing import HarnessServer

from .harness_dev import write_whitelist

KEY = "hk_supportdesk-key-for-tests"


class WithHarness(TestCase):
    """Starts Harness for the class and points the app's settings at it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        policy = write_whitelist(Path(cls.tmp.name), KEY)
        cls.server = HarnessServer(policy).__enter__()
        cls.settings = override_settings(HARNESS_URL=cls.server.url, HARNESS_KEY=KEY)
        cls.settings.enable()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.settings.disable()
        cls.server.__exit__()
        cls.tmp.cleanup()

    def harness(self) -> Client:
        return Client(self.server.url, key=KEY)

    def member(self, name: str, *, staff: bool = False) -> User:
        """A user in the `support` group, logged in."""
        user = User.objects.create_user(name, password="pw", is_staff=staff)
        user.groups.add(Group.objects.get_or_create(name="support")[0])
        self.client.force_login(user)
        return user


class AskTests(WithHarness):
    def test_a_question_is_answered_as_the_logged_in_user(self):
        self.member("ana")
        page = self.client.post("/", {"kind": "question", "text": "How do I reset my VPN password?"})
        self.assertContains(page, 'data-status="answered"')
        self.assertContains(page, "self-service portal")
        runs = self.harness().list_runs(principal="ana").runs
        self.assertEqual([r.agent for r in runs], ["support"])
        records = [r["kind"] for r in self.harness().get_run(runs[0].run_id).records]
        self.assertIn("tool.called", records)

    def test_anonymous_people_are_sent_to_log_in(self):
        page = self.client.get("/")
        self.assertEqual(page.status_code, 302)
        self.assertIn("/admin/login/", page["Location"])

    def test_an_empty_question_never_reaches_harness(self):
        self.member("cy")
        page = self.client.post("/", {"kind": "question", "text": ""})
        self.assertEqual(page.status_code, 200)
        self.assertTrue(page.context["form"].errors["text"])
        self.assertEqual(self.harness().list_runs(principal="cy").runs, [])

    def test_feedback_is_recorded_once_per_person(self):
        self.member("dee")
        self.client.post("/", {"kind": "question", "text": "VPN password?"})
        run_id = self.harness().list_runs(principal="dee").runs[0].run_id
        first = self.client.post(f"/runs/{run_id}/feedback/", {"helpful": "yes"}, follow=True)
        self.assertContains(first, "Thank you for your feedback.")
        second = self.client.post(f"/runs/{run_id}/feedback/", {"helpful": "no"}, follow=True)
        self.assertContains(second, "already gave feedback")
        kinds = [r["kind"] for r in self.harness().get_run(run_id).records]
        self.assertEqual(kinds.count("run.feedback"), 1)

    def test_a_user_cannot_read_another_users_run(self):
        self.member("eve")
        self.client.post("/", {"kind": "question", "text": "VPN password?"})
        run_id = self.harness().list_runs(principal="eve").runs[0].run_id
        self.member("fay")
        self.assertEqual(self.client.get(f"/runs/{run_id}/").status_code, 403)


class ApprovalTests(WithHarness):
    def test_a_ticket_waits_for_a_staff_member_then_goes_on(self):
        self.member("bo")
        page = self.client.post("/", {"kind": "ticket", "text": "The VPN is down."})
        self.assertContains(page, 'data-status="paused"')
        run_id = page.context["outcome"].run_id

        self.assertEqual(self.client.get("/staff/approvals/").status_code, 302, "staff only")
        self.member("sam", staff=True)
        listed = self.client.get("/staff/approvals/")
        approval = next(a for a in listed.context["approvals"] if a.run_id == run_id)
        self.assertContains(listed, "tickets.create for bo")

        refused = self.client.post(
            f"/staff/approvals/{approval.id}/", {"decision": "deny", "reason": ""}, follow=True
        )
        self.assertContains(refused, "Say why")
        decided = self.client.post(
            f"/staff/approvals/{approval.id}/", {"decision": "approve"}, follow=True
        )
        self.assertContains(decided, f"Approval {approval.id} approved. The run goes on.")

        run = self.harness().wait_run(run_id)
        self.assertEqual(run.status, "answered")
        decision = next(
            r for r in self.harness().get_run(run_id).records if r["kind"] == "approval.approved"
        )
        self.assertEqual(decision["record"]["by"], "sam", "the staff member decided")
        self.client.force_login(User.objects.get(username="bo"))
        self.assertContains(self.client.get(f"/runs/{run_id}/"), 'data-status="answered"')


class ApiTests(WithHarness):
    def test_the_json_api_validates_then_runs_in_the_background(self):
        self.member("gus")
        invalid = self.client.post("/api/ask", {"kind": "poem"}, content_type="application/json")
        self.assertEqual(invalid.status_code, 400)
        self.assertEqual(set(invalid.json()), {"kind", "text"})

        accepted = self.client.post(
            "/api/ask", {"text": "VPN password?"}, content_type="application/json"
        )
        self.assertEqual(accepted.status_code, 202)
        run_id = accepted.json()["run_id"]
        self.assertEqual(self.harness().wait_run(run_id).status, "answered")
        read = self.client.get(f"/api/runs/{run_id}").json()
        self.assertEqual(read["status"], "answered")
        self.assertIn("self-service portal", read["answer"])

        self.member("hal")
        self.assertEqual(self.client.get(f"/api/runs/{run_id}").status_code, 403)
