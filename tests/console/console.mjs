// The operator console in headless Chromium (Debian's `chromium`, driven by playwright-core),
// against a real `harness serve` started by host/cli/tests/console.rs, which passes:
// HARNESS_URL, ADMIN_KEY (approver, operator, act_for), VIEWER_KEY (no roles), OUT (where the
// screenshots go). Any failed check throws, and the process exits non-zero with the reason.

import { createRequire } from "node:module";
import assert from "node:assert/strict";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const url = process.env.HARNESS_URL;
const out = process.env.OUT;

const step = (text) => console.log(`- ${text}`);

/** A run started over the API in the background, as a web app would. */
async function startRun(agent, input) {
  const response = await fetch(`${url}/v1/runs`, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ agent, input, principal: "ana", wait: false }),
  });
  const text = await response.text();
  assert.equal(response.status, 202, text);
  return JSON.parse(text).run_id;
}

/** Run `id` once it is no longer running (or its last state after 20 s). */
async function settled(id, until = (run) => run.status !== "running") {
  for (let i = 0; i < 200; i++) {
    const response = await fetch(`${url}/v1/runs/${id}`, {
      headers: { authorization: `Bearer ${process.env.ADMIN_KEY}` },
    });
    const run = await response.json();
    if (until(run)) return run;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${id} did not settle`);
}

async function signIn(browser, key) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("dialog", () => { throw new Error("a script opened a dialog: markup ran"); });
  await page.goto(`${url}/console/approvals`);
  assert.match(page.url(), /\/console\/login$/, "signed out, the console asks to sign in");
  await page.getByLabel("Client key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/console\/approvals$/);
  return page;
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  step("sign in with a key; the session cookie is HttpOnly and SameSite=Strict");
  const admin = await signIn(browser, process.env.ADMIN_KEY);
  const cookies = await admin.context().cookies();
  const session = cookies.find((c) => c.name === "harness_session");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
  const wrong = await browser.newPage();
  await wrong.goto(`${url}/console/login`);
  await wrong.getByLabel("Client key").fill("hk_not-a-key");
  await wrong.getByRole("button", { name: "Sign in" }).click();
  await wrong.getByText("That key is not one of this server's clients.").waitFor();
  await wrong.close();

  step("a paused run appears in the queue, its hostile arguments shown as text");
  const first = await startRun("clerk", "Open a ticket about the VPN.");
  assert.equal((await settled(first)).status, "paused");
  await admin.reload();
  const card = admin.locator("article", { hasText: first });
  await card.waitFor();
  const cardText = await card.innerText();
  assert.ok(cardText.includes('"><img src=x onerror="window.__xss=1">'), cardText);
  assert.ok(cardText.includes("<script>window.__xss=2</script>"), cardText);
  assert.equal(await card.locator("img").count(), 0, "no markup from the arguments");
  assert.equal(await card.locator("script").count(), 0, "no script from the arguments");
  assert.ok(cardText.includes("Risk:"), "the tool's grants and risk are shown");
  assert.equal(await admin.evaluate(() => window.__xss), undefined, "nothing the tool said ran");
  await admin.screenshot({ path: path.join(out, "console-approvals.png"), fullPage: true });

  step("approve it: the run finishes in the server and its timeline shows the call");
  await card.getByRole("button", { name: "Approve" }).click();
  await admin.getByText("Its run goes on.").waitFor();
  const approved = await settled(first);
  assert.equal(approved.status, "answered", JSON.stringify(approved));
  await admin.goto(`${url}/console/runs/${first}`);
  assert.equal(await admin.locator("#status").innerText(), "answered");
  const called = admin.locator('li[data-kind="tool.called"]');
  assert.equal(await called.count(), 1);
  assert.ok((await called.innerText()).includes("tickets.create"));
  assert.equal(await admin.locator("main img, main script").count(), 0, "the tool's output is text");
  assert.ok((await admin.locator("main").innerText()).includes("<script>window.__xss=2</script>"));
  assert.equal(await admin.evaluate(() => window.__xss), undefined);
  await admin.screenshot({ path: path.join(out, "console-run.png"), fullPage: true });

  step("deny another with a reason; the model is told and answers");
  const second = await startRun("clerk", "Open another ticket.");
  assert.equal((await settled(second)).status, "paused");
  await admin.goto(`${url}/console/approvals`);
  const next = admin.locator("article", { hasText: second });
  await next.getByRole("button", { name: "Deny" }).click();
  await admin.getByText("was not denied: say why").waitFor();
  await next.getByLabel("Reason (required to deny)").fill("not during the freeze");
  await next.getByRole("button", { name: "Deny" }).click();
  await admin.getByText("denied by").first().waitFor();
  const denied = await settled(second);
  assert.equal(denied.status, "answered");
  await admin.goto(`${url}/console/runs/${second}`);
  const refused = await admin.locator('li[data-kind="tool.refused"]').innerText();
  assert.ok(refused.includes("not during the freeze"), refused);
  assert.equal(await admin.locator("#answer").innerText(), "Ticket 1 is open.", "the model's answer");
  await admin.goto(`${url}/console/approvals`);
  const decisions = await admin.locator("table").innerText();
  assert.ok(decisions.includes("denied") && decisions.includes("not during the freeze"), decisions);

  step("switch a tool off; an agent run is refused by the kill switch; switch it on");
  await admin.goto(`${url}/console/tools`);
  const calc = admin.locator("#tool-calc");
  await calc.getByLabel("Reason to switch calc off").fill("maintenance");
  await calc.getByRole("button", { name: "Switch off" }).click();
  await admin.getByText("calc is switched off.").waitFor();
  assert.ok((await admin.locator("#tool-calc .switch").innerText()).includes("maintenance"));
  const math = await fetch(`${url}/v1/runs`, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ agent: "math", input: "6 × 7?" }),
  }).then((r) => r.json());
  const gates = math.events.filter((e) => e.event === "call").map((e) => e.decision.gate);
  assert.deepEqual(gates, ["kill_switch"], JSON.stringify(math));
  await admin.locator("#tool-calc").getByRole("button", { name: "Switch on" }).click();
  await admin.getByText("calc is back in service.").waitFor();

  step("replay the refused run from its timeline: in scratch state nothing is switched off");
  await admin.goto(`${url}/console/runs/${math.run_id}`);
  await admin.getByRole("button", { name: "Replay" }).click();
  const replayed = await admin.locator(".notice").innerText();
  assert.ok(replayed.includes(`Replayed ${math.run_id}: DIVERGED at call 1: recorded refused by kill_switch`), replayed);

  step("a form without the session's CSRF token is refused");
  const forged = await admin.evaluate(async () => {
    const post = (body) => fetch("/console/switches", {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body,
    }).then((r) => r.status);
    return [await post("csrf=forged&kind=tool&name=calc&action=kill&reason=x"),
      await post("kind=tool&name=calc&action=kill&reason=x")];
  });
  assert.ok(forged.every((s) => s >= 400), JSON.stringify(forged));
  await admin.goto(`${url}/console/tools`);
  assert.equal(await admin.locator("#tool-calc .switch").innerText(), "In service");

  step("figures: budgets, prompt versions, the chart, and the chain verified on demand");
  await admin.goto(`${url}/console/figures`);
  assert.equal(await admin.locator("svg[role=img] rect").count() > 0, true, "the chart is drawn");
  await admin.getByRole("button", { name: "Verify now" }).click();
  assert.match(await admin.locator("#verified").innerText(), /records, chain intact/);
  await admin.screenshot({ path: path.join(out, "console-figures.png"), fullPage: true });

  step("a viewer without the approver role sees no buttons, and a forged decision is refused");
  const third = await startRun("clerk", "A third ticket.");
  assert.equal((await settled(third)).status, "paused");
  const viewer = await signIn(browser, process.env.VIEWER_KEY);
  const waiting = viewer.locator("article", { hasText: third });
  await waiting.waitFor();
  assert.equal(await viewer.getByRole("button", { name: "Approve" }).count(), 0);
  const id = (await waiting.getAttribute("id")).replace("approval-", "");
  const status = await viewer.evaluate(async (id) => {
    const csrf = document.querySelector("input[name=csrf]").value;
    const response = await fetch(`/console/approvals/${id}`, {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `csrf=${csrf}&decision=approve&reason=`,
    });
    return response.status;
  }, id);
  assert.equal(status, 403);
  assert.equal((await settled(third)).status, "paused", "the forged decision changed nothing");
  const figures = await viewer.goto(`${url}/console/figures`);
  assert.equal(figures.status(), 403, "figures need the operator role");

  step("live: a decision taken elsewhere shows up in an open console");
  await viewer.goto(`${url}/console/approvals`);
  const decided = await fetch(`${url}/v1/approvals/${id}/approve`, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.ADMIN_KEY}`, "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(decided.status, 200);
  await viewer.locator(`#approval-${id}`).waitFor({ state: "detached", timeout: 10000 });
  console.log("console: every check passed");
} finally {
  await browser.close();
}
