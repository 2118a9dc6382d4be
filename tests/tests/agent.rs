//! The agent loop with a scripted model over real tools: an answer from two tools run in
//! parallel, each gate alone and in order, kill switches flipped from another handle, rate limits
//! across runs and under 200 concurrent runs, a hostile tool contained, and runs that end
//! without an answer saying why. Every step lands in the audit hash chain.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness_agent::config::Config;
use harness_agent::gates::Principal;
use harness_agent::models::Message;
use harness_agent::models::Model;
use harness_agent::models::scripted::{ScriptedModel, parse_steps};
use harness_agent::replay;
use harness_agent::replay::Decided;
use harness_agent::routing::{Route, Router};
use harness_agent::run::{Agent, CallDecision, CancellationToken, Event, RunReport, RunStatus};
use harness_agent::state::StateStore;
use harness_agent::state::records::{AuditRecord, Decision, Gate};
use harness_agent::state::switches::Target;
use harness_e2e::{PolicyFile, example_tool, hostile};
use harness_sandbox::{Host, Outcome, Stop};

/// A host with calc, tickets (support only), a fuel-starved and a slow hostile tool, and an
/// agent `support` that may use all but `outsider`.
fn setup(dir: &Path, calc_rate: &str) -> (Arc<Config>, Host, Arc<StateStore>) {
    setup_with(dir, calc_rate, "")
}

/// [`setup`] plus raw TOML (a `[budgets]` table) at the end of the whitelist.
fn setup_with(dir: &Path, calc_rate: &str, extra: &str) -> (Arc<Config>, Host, Arc<StateStore>) {
    let policy = PolicyFile::new(&dir.join("cache"))
        .data_dir(&dir.join("data"))
        .tool("calc", &example_tool("calc"), calc_rate)
        .tool(
            "tickets",
            &example_tool("tickets"),
            "kv = { quota = \"64 KiB\" }\nroles = [\"support\"]",
        )
        .tool("hostile", &hostile(), "fuel = 2_000_000")
        .tool("slow", &hostile(), "fuel = 100_000_000_000\ntimeout = \"300ms\"")
        .tool("outsider", &example_tool("calc"), "")
        .scripted_agent(
            dir,
            "support",
            "{\"text\": \"unused\"}\n",
            &format!(
                "system = \"You help the support team.\"\n\
                 tools = [\"calc\", \"tickets\", \"hostile\", \"slow\"]\nmax_turns = 4\nmax_argument_errors = 2\n{extra}"
            ),
        )
        .write(dir);
    open(&policy)
}

/// The whitelist at `path`, a host over its tools, and its state.
fn open(path: &Path) -> (Arc<Config>, Host, Arc<StateStore>) {
    let config = Config::load(path).unwrap();
    let host = Host::load(config.policy().clone()).unwrap();
    let state = StateStore::open(config.policy().host().data_dir()).unwrap();
    (Arc::new(config), host, Arc::new(state))
}

/// Agent `support` asking `model`.
fn support(
    config: &Arc<Config>,
    host: &Host,
    state: &Arc<StateStore>,
    model: Arc<dyn Model>,
) -> Agent {
    Agent::new(
        host.clone(),
        state.clone(),
        config.clone(),
        "support",
        model,
    )
    .unwrap()
}

/// A scripted model replaying `script` (JSON Lines).
fn scripted(script: &str) -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::new(
        "script",
        parse_steps(script, "test").unwrap(),
    ))
}

fn principal(name: &str, roles: &[&str]) -> Principal {
    Principal {
        name: name.into(),
        roles: roles
            .iter()
            .map(|r| (*r).to_owned())
            .collect::<BTreeSet<_>>(),
    }
}

async fn run(
    policy: &Arc<Config>,
    host: &Host,
    state: &Arc<StateStore>,
    who: &Principal,
    script: &str,
) -> RunReport {
    let model = scripted(script);
    support(policy, host, state, model)
        .run(who, "question")
        .await
        .unwrap()
}

/// (gate or outcome kind, reason or result) of each decided call, in order.
fn decisions(report: &RunReport) -> Vec<(String, String)> {
    report
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Call {
                decision: CallDecision::Refused { gate, reason },
                ..
            } => Some((gate.as_str().to_owned(), reason.clone())),
            Event::Call {
                decision: CallDecision::Ran { report, .. },
                result,
                ..
            } => Some((report.outcome.kind().to_owned(), result.content.clone())),
            Event::Call {
                decision: CallDecision::AwaitingApproval { .. },
                ..
            }
            | Event::Model { .. }
            | Event::Masked { .. } => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_from_two_tools_with_every_step_in_the_audit_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}, {"name": "calc__sum", "arguments": {"values": [1, 2, 3]}}]}
{"text": "6 × 7 = 42, and 1 + 2 + 3 = 6."}"#,
    )
    .await;
    assert_eq!(report.status, RunStatus::Answered);
    assert_eq!(report.answer, "6 × 7 = 42, and 1 + 2 + 3 = 6.");
    assert_eq!(report.turns, 2);
    assert_eq!(
        decisions(&report),
        [("ok".into(), "42.0".into()), ("ok".into(), "6".into())]
    );
    assert!(report.usage.total() > 0);
    let kinds: Vec<_> = state
        .audit_of_run(&report.run_id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "run.started",
            "run.routed",
            "model.responded",
            "tool.admitted",
            "tool.admitted",
            "tool.called",
            "tool.called",
            "model.responded",
            "run.ended"
        ]
    );
    assert!(state.verify_audit(None).unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_gate_refuses_with_a_reason_the_model_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &["viewer"]),
        r#"{"calls": [{"name": "nope__x", "arguments": {}}, {"name": "outsider__apply", "arguments": {"op": "add", "a": 1, "b": 2}}, {"name": "tickets__create", "arguments": {"title": "t", "body": "", "priority": "low"}}, {"name": "calc__apply", "arguments": "{\"op\": \"mul\", "}, {"name": "calc__apply", "arguments": {"op": "pow", "a": 2, "b": 8}}]}
{"text": "I could not do any of that."}"#,
    )
    .await;
    assert_eq!(report.status, RunStatus::Answered);
    let got = decisions(&report);
    assert_eq!(
        got[0],
        ("routing".into(), "there is no tool named `nope__x`".into())
    );
    assert_eq!(
        got[1],
        (
            "routing".into(),
            "the tool `outsider` is not available here (the request was routed to `default`)"
                .into()
        )
    );
    assert_eq!(
        got[2],
        (
            "role".into(),
            "`tickets` needs one of the roles support; ana has viewer".into()
        )
    );
    assert_eq!(got[3].0, "arguments");
    assert!(
        got[3]
            .1
            .starts_with("invalid arguments for `calc__apply`: the arguments are not valid JSON"),
        "{}",
        got[3].1
    );
    assert_eq!(got[4].0, "arguments");
    assert!(got[4].1.contains("unknown case \"pow\""), "{}", got[4].1);
    // What the model was told says who refused.
    let Event::Call { result, .. } = &report.events[3] else {
        panic!()
    };
    assert!(result.is_error);
    assert!(
        result
            .content
            .starts_with("refused by the harness (role): ")
    );

    // The same call with the role passes.
    let report = run(
        &policy,
        &host,
        &state,
        &principal("sam", &["support"]),
        r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "VPN down", "body": "", "priority": "high"}}]}
{"text": "Opened."}"#,
    )
    .await;
    assert_eq!(decisions(&report)[0].0, "ok");
    let refusals = state
        .audit_of_run(&report.run_id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "tool.refused")
        .count();
    assert_eq!(refusals, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switches_act_on_the_next_call_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let operator = StateStore::open(policy.policy().host().data_dir()).unwrap();
    operator
        .kill(
            &Target::Tool("calc".into()),
            "wrong results reported",
            "ops",
        )
        .unwrap();
    let call = r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 2}}]}
{"text": "calc is off"}"#;
    let report = run(&policy, &host, &state, &principal("ana", &[]), call).await;
    assert_eq!(
        decisions(&report),
        [(
            "kill_switch".into(),
            "the tool `calc` is switched off: wrong results reported".into()
        )]
    );
    operator
        .enable(&Target::Tool("calc".into()), "ops")
        .unwrap();
    let report = run(&policy, &host, &state, &principal("ana", &[]), call).await;
    assert_eq!(decisions(&report)[0].0, "ok");

    // Gates apply in order: a call failing several is refused by the first (the kill switch
    // before the role gate, the role gate before arguments).
    operator
        .kill(&Target::Tool("tickets".into()), "migrating", "ops")
        .unwrap();
    let both = r#"{"calls": [{"name": "tickets__create", "arguments": "{oops"}]}
{"text": "no"}"#;
    let report = run(&policy, &host, &state, &principal("bob", &[]), both).await;
    assert_eq!(decisions(&report)[0].0, "kill_switch");
    operator
        .enable(&Target::Tool("tickets".into()), "ops")
        .unwrap();
    let report = run(&policy, &host, &state, &principal("bob", &[]), both).await;
    assert_eq!(decisions(&report)[0].0, "role");

    operator
        .kill(&Target::Agent("support".into()), "maintenance", "ops")
        .unwrap();
    let report = run(&policy, &host, &state, &principal("ana", &[]), call).await;
    assert_eq!(report.status, RunStatus::AgentKilled);
    assert_eq!(
        report.answer,
        "The agent `support` is switched off: maintenance"
    );
    assert_eq!(report.turns, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_per_principal_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "rate = \"2/min\"");
    let three = r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 1}}, {"name": "calc__apply", "arguments": {"op": "add", "a": 2, "b": 2}}, {"name": "calc__apply", "arguments": {"op": "add", "a": 3, "b": 3}}]}
{"text": "done"}"#;
    let report = run(&policy, &host, &state, &principal("ana", &[]), three).await;
    let gates: Vec<_> = decisions(&report).into_iter().map(|(g, _)| g).collect();
    assert_eq!(gates, ["ok", "ok", "rate"]);
    assert_eq!(
        decisions(&report)[2].1,
        "ana may call `calc` 2 per 1m; try again later"
    );
    let report = run(&policy, &host, &state, &principal("ana", &[]), three).await;
    assert!(
        decisions(&report).iter().all(|(g, _)| g == "rate"),
        "still limited in the next run"
    );
    let report = run(&policy, &host, &state, &principal("bob", &[]), three).await;
    let gates: Vec<_> = decisions(&report).into_iter().map(|(g, _)| g).collect();
    assert_eq!(gates, ["ok", "ok", "rate"], "per principal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_runs_never_exceed_a_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "rate = \"50/min\"");
    let (host, state, policy) = (Arc::new(host), Arc::new(state), Arc::new(policy));
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (host, state, policy) = (host.clone(), state.clone(), policy.clone());
        runs.spawn(async move {
            let script = format!(
                "{{\"calls\": [{{\"name\": \"calc__apply\", \"arguments\": {{\"op\": \"add\", \"a\": {i}, \"b\": 1}}}}]}}\n{{\"text\": \"ok\"}}"
            );
            let report = run(&policy, &host, &state, &principal("ana", &[]), &script).await;
            decisions(&report)[0].0.clone()
        });
    }
    let mut ran = 0;
    let mut limited = 0;
    while let Some(gate) = runs.join_next().await {
        match gate.unwrap().as_str() {
            "ok" => ran += 1,
            "rate" => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ran, limited), (50, 150));
    // Seven records per run that called the tool, six per refused one (no admission).
    assert_eq!(
        state.verify_audit(None).unwrap().unwrap().records,
        50 * 7 + 150 * 6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_tool_is_stopped_and_parallel_calls_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        r#"{"calls": [{"name": "hostile__spin", "arguments": {}}]}
{"text": "That tool misbehaved; here is what I know without it."}"#,
    )
    .await;
    assert_eq!(report.status, RunStatus::Answered);
    let Event::Call {
        decision: CallDecision::Ran { report: call, .. },
        result,
        ..
    } = &report.events[1]
    else {
        panic!("{:?}", report.events[1]);
    };
    assert!(matches!(
        call.outcome,
        Outcome::Stopped {
            stop: Stop::OutOfFuel { .. }
        }
    ));
    assert!(
        result
            .content
            .starts_with("the tool was stopped: out of fuel"),
        "{}",
        result.content
    );

    // Two calls that each run into a 300 ms deadline finish together, not one after the other.
    let started = Instant::now();
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        r#"{"calls": [{"name": "slow__spin", "arguments": {}}, {"name": "slow__spin", "arguments": {}}]}
{"text": "both timed out"}"#,
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(
        decisions(&report)
            .into_iter()
            .map(|(g, _)| g)
            .collect::<Vec<_>>(),
        ["timed_out", "timed_out"]
    );
    assert!(
        elapsed < Duration::from_millis(580),
        "ran one after the other: {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_without_an_answer_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let bad = r#"{"calls": [{"name": "calc__apply", "arguments": "{oops"}]}"#;
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        &format!("{bad}\n{bad}\n{bad}\n{{\"text\": \"never\"}}"),
    )
    .await;
    assert_eq!(report.status, RunStatus::ArgumentErrors);
    assert_eq!(
        report.answer,
        "Stopped: the model sent invalid tool arguments 3 times (the limit is 2)."
    );

    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        r#"{"error": {"status": 401, "message": "invalid x-api-key"}}"#,
    )
    .await;
    assert_eq!(report.status, RunStatus::ModelFailed);
    assert_eq!(
        report.answer,
        "No answer: the model could not be reached (scripted answered 401: invalid x-api-key)."
    );

    let call =
        r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 1}}]}"#;
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        &[call; 4].join("\n"),
    )
    .await;
    assert_eq!(report.status, RunStatus::TurnLimit);
    assert_eq!(
        report.answer,
        "Stopped after 4 model turns without a final answer."
    );

    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        r#"{"text": "   "}"#,
    )
    .await;
    assert_eq!(report.answer, "The model ended its turn without an answer.");
    assert!(state.verify_audit(None).unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_stops_runs_hard_per_user_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) =
        setup_with(tmp.path(), "", "[budgets]\nuser_tokens = \"60000/day\"");
    let answer = r#"{"text": "ok", "usage": {"input_tokens": 9000, "output_tokens": 1000}}"#;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let report = run(&policy, &host, &state, &principal("ana", &[]), answer).await;
        statuses.push(report.status);
        if report.status == RunStatus::BudgetExhausted {
            assert!(
                report.answer.starts_with("Stopped before asking the model again: the budget tokens:user:ana (60000 per 1day) has "),
                "{}",
                report.answer
            );
            assert_eq!(report.turns, 0, "the model was not asked");
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&RunStatus::BudgetExhausted),
        "{statuses:?}"
    );
    assert!(statuses.len() > 2, "some runs fit first: {statuses:?}");
    let spent = state
        .spent("tokens:user:ana", Duration::from_secs(86_400))
        .unwrap();
    assert!(spent <= 60_000, "overspent: {spent}");
    // Another principal has a budget of their own.
    let report = run(&policy, &host, &state, &principal("bob", &[]), answer).await;
    assert_eq!(report.status, RunStatus::Answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_runs_never_overspend_a_global_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) =
        setup_with(tmp.path(), "", "[budgets]\nglobal_tokens = \"200000/day\"");
    let (host, state, policy) = (Arc::new(host), Arc::new(state), Arc::new(policy));
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (host, state, policy) = (host.clone(), state.clone(), policy.clone());
        runs.spawn(async move {
            let who = principal(&format!("user-{i}"), &[]);
            let answer = r#"{"text": "ok", "usage": {"input_tokens": 900, "output_tokens": 100}}"#;
            run(&policy, &host, &state, &who, answer).await.status
        });
    }
    let mut answered = 0;
    while let Some(status) = runs.join_next().await {
        match status.unwrap() {
            RunStatus::Answered => answered += 1,
            RunStatus::BudgetExhausted => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let spent = state
        .spent("tokens:global", Duration::from_secs(86_400))
        .unwrap();
    assert!(spent <= 200_000, "overspent: {spent}");
    assert_eq!(
        spent,
        answered * 1000,
        "each answered run settled its real usage"
    );
    assert!(answered > 0 && answered < 200, "answered {answered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuel_budget_refuses_a_tool_it_cannot_cover() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) =
        setup_with(tmp.path(), "", "[budgets]\nuser_fuel = \"300000000/day\"");
    let call = r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 2}}, {"name": "calc__apply", "arguments": {"op": "add", "a": 2, "b": 2}}]}
{"text": "done"}"#;
    let report = run(&policy, &host, &state, &principal("ana", &[]), call).await;
    // calc may use up to 200M fuel per call (the default limit): the first reservation fits,
    // the second does not while the first is still reserved (admitted calls run together).
    let gates: Vec<_> = decisions(&report).into_iter().map(|(g, _)| g).collect();
    assert_eq!(gates, ["ok", "budget"]);
    assert!(
        decisions(&report)[1]
            .1
            .starts_with("`calc` cannot run: the budget fuel:user:ana (300000000 per 1day) has 100000000 left, and this needs 200000000")
    );
    let used = state
        .spent("fuel:user:ana", Duration::from_secs(86_400))
        .unwrap();
    assert!(used < 1_000, "settled at the fuel really used: {used}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_masked_before_the_model_and_blocked_where_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup_with(
        tmp.path(),
        "",
        "pii = { national_id = \"block\" }\nmax_input_chars = 200",
    );
    let model = scripted(
        r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "Refund", "body": "customer bo@shop.example, card 4111 1111 1111 1111", "priority": "low"}}]}
{"text": "Ticket opened."}"#,
    );
    let agent = support(&policy, &host, &state, model.clone());
    let report = agent
        .run(
            &principal("sam", &["support"]),
            "Refund ana@example.com, card 4111-1111-1111-1111, phone +44 20 7946 0958",
        )
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Answered);
    // What the harness sent the model: the user's words and the tool's result (the model's own
    // call arguments it already knows).
    let last = model.requests().pop().unwrap();
    let sent: Vec<String> = last
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::User { text } => Some(text.clone()),
            Message::ToolResults { results } => Some(results[0].content.clone()),
            Message::Assistant { .. } => None,
        })
        .collect();
    assert_eq!(sent[0], "Refund [email], card [card], phone [phone]");
    assert!(
        sent[1].contains(r#""body":"customer [email], card [card]""#),
        "{}",
        sent[1]
    );
    for leaked in ["ana@example.com", "4111", "7946", "bo@shop.example"] {
        assert!(
            !sent.concat().contains(leaked),
            "{leaked} reached the model: {sent:?}"
        );
    }
    let Event::Masked { place, found } = &report.events[0] else {
        panic!("{:?}", report.events[0])
    };
    assert_eq!((place.as_str(), found.len()), ("input", 3));
    let audit = serde_json::to_string(&state.audit_of_run(&report.run_id).unwrap()).unwrap();
    assert!(
        !audit.contains("ana@example.com"),
        "the audit log keeps only masked input"
    );

    let ordinary = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        r#"{"text": "fine"}"#,
    )
    .await;
    assert_eq!(
        ordinary.status,
        RunStatus::Answered,
        "ordinary input passes"
    );
    let report = support(
        &policy,
        &host,
        &state,
        Arc::new(ScriptedModel::new("s", vec![])),
    )
    .run(&principal("ana", &[]), "my SSN is 078-05-1120")
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::InputRejected);
    assert_eq!(
        report.answer,
        "Your message was not sent to the model: it contains national_id data, which this agent does not accept."
    );
    let report = support(
        &policy,
        &host,
        &state,
        Arc::new(ScriptedModel::new("s", vec![])),
    )
    .run(&principal("ana", &[]), &"x".repeat(201))
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::InputRejected);
    assert!(
        report
            .answer
            .starts_with("Your message is 201 characters long; this agent accepts at most 200.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_matches_its_run_and_names_the_first_divergence() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "mul", "a": 6, "b": 7}}, {"name": "tickets__create", "arguments": {"title": "x", "body": "", "priority": "low"}}]}
{"calls": [{"name": "calc__sum", "arguments": {"values": [1, 2]}}]}
{"text": "42 and 3; no ticket for you."}"#,
    )
    .await;
    let recorded = replay::recorded(&state, &report.run_id).unwrap();
    assert_eq!(recorded.responses.len(), 3);
    assert_eq!(recorded.decisions.len(), 3);
    assert_eq!(recorded.decisions[1], Decided::Refused(Gate::Role));
    let agent = support(&policy, &host, &state, scripted("{\"text\": \"unused\"}"));
    let same = replay::replay(&agent, &report.run_id, &recorded)
        .await
        .unwrap();
    assert_eq!((same.divergence.as_deref(), same.compared), (None, 3));

    // The world changed: calc is switched off now.
    state
        .kill(&Target::Tool("calc".into()), "recalled", "ops")
        .unwrap();
    let changed = replay::replay(&agent, &report.run_id, &recorded)
        .await
        .unwrap();
    assert_eq!(
        changed.divergence.as_deref(),
        Some(
            r#"call 1: recorded ran calc.apply → {"kind":"ok","value":42.0}; replayed refused by kill_switch"#
        )
    );
    assert!(matches!(
        replay::recorded(&state, "run-nope"),
        Err(replay::ReplayError::UnknownRun(_))
    ));
}

/// A host whose tickets tool has the gate `gate` (`approval = …`, `confirm = …`), and an agent
/// over calc and tickets.
fn approval_setup(dir: &Path, gate: &str) -> (Arc<Config>, Host) {
    let policy = PolicyFile::new(&dir.join("cache"))
        .data_dir(&dir.join("data"))
        .tool("calc", &example_tool("calc"), "")
        .tool(
            "tickets",
            &example_tool("tickets"),
            &format!("kv = {{ quota = \"64 KiB\" }}\n{gate}"),
        )
        .scripted_agent(dir, "support", "{\"text\": \"unused\"}\n", "")
        .write(dir);
    let (config, host, _) = open(&policy);
    (config, host)
}

const TICKET_TURNS: &str = r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "VPN down", "body": "", "priority": "urgent"}}, {"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 1}}]}
{"text": "Done what I could."}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_pauses_the_run_which_resumes_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host) = approval_setup(tmp.path(), "approval = \"required\"");
    let steps = parse_steps(TICKET_TURNS, "test").unwrap();
    let run_id = {
        let state = Arc::new(StateStore::open(policy.policy().host().data_dir()).unwrap());
        let model = Arc::new(ScriptedModel::new("s", steps.clone()));
        let report = support(&policy, &host, &state, model)
            .run(
                &principal("ana", &[]),
                "Open an urgent ticket and add 1 and 1.",
            )
            .await
            .unwrap();
        assert_eq!(report.status, RunStatus::Paused);
        assert!(
            report
                .answer
                .starts_with("Paused: waiting for human approval of 1 (tickets.create)."),
            "{}",
            report.answer
        );
        // The call that needs no approval ran; the other waits.
        assert_eq!(
            decisions(&report)
                .into_iter()
                .map(|(g, _)| g)
                .collect::<Vec<_>>(),
            ["ok"]
        );
        report.run_id
    };

    // A new process: nothing in memory, only the state file.
    let state = Arc::new(StateStore::open(policy.policy().host().data_dir()).unwrap());
    let pending = state.approvals(false).unwrap();
    assert_eq!(
        (pending.len(), pending[0].function.as_str()),
        (1, "tickets.create")
    );
    let model = Arc::new(ScriptedModel::new("s", steps).starting_at(1));
    let agent = support(&policy, &host, &state, model.clone());
    assert!(
        agent.resume(&run_id).await.unwrap().is_none(),
        "not decided yet"
    );
    state
        .decide(pending[0].id, Decision::Approved, "lee", "fine")
        .unwrap();
    let report = agent.resume(&run_id).await.unwrap().expect("resumes");
    assert_eq!(report.status, RunStatus::Answered);
    assert_eq!(report.answer, "Done what I could.");
    assert_eq!(decisions(&report)[0].0, "ok", "the approved call ran");
    // The model saw both results, in its call order.
    let seen = model.requests();
    let Message::ToolResults { results } = seen[0].messages.last().unwrap() else {
        panic!()
    };
    assert!(
        results[0].content.contains("\"title\":\"VPN down\""),
        "{}",
        results[0].content
    );
    assert_eq!(results[1].content, "2.0");
    assert!(
        agent.resume(&run_id).await.unwrap().is_none(),
        "resumes once"
    );
    let kinds: Vec<_> = state
        .audit_of_run(&run_id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.contains(&"run.paused".to_owned()) && kinds.contains(&"approval.approved".to_owned())
    );
    assert_eq!(kinds.last().map(String::as_str), Some("run.ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_is_told_to_the_model_and_rules_on_arguments_pick_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host) = approval_setup(
        tmp.path(),
        "approval = { when = { priority = [\"urgent\", \"high\"] } }",
    );
    let state = Arc::new(StateStore::open(policy.policy().host().data_dir()).unwrap());
    let steps = parse_steps(TICKET_TURNS, "test").unwrap();
    let model = Arc::new(ScriptedModel::new("s", steps.clone()));
    let agent = support(&policy, &host, &state, model.clone());
    let report = agent.run(&principal("ana", &[]), "urgent").await.unwrap();
    assert_eq!(report.status, RunStatus::Paused);
    let id = state.approvals(false).unwrap()[0].id;
    state
        .decide(id, Decision::Denied, "lee", "use the incident process")
        .unwrap();
    let report = agent.resume(&report.run_id).await.unwrap().unwrap();
    assert_eq!(report.status, RunStatus::Answered);
    assert_eq!(
        decisions(&report)[0],
        (
            "approval".into(),
            "denied by lee: use the incident process".into()
        )
    );

    // A low-priority ticket needs no approval under the rule.
    let low = TICKET_TURNS.replace("urgent", "low");
    let report = run(&policy, &host, &state, &principal("ana", &[]), &low).await;
    assert_eq!(report.status, RunStatus::Answered);
    assert_eq!(decisions(&report)[0].0, "ok");
}

/// A run has no client to ask its user: a call its tool's `confirm` applies to waits for an
/// approval, like `approval`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_gated_call_in_a_run_waits_for_an_approval() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host) = approval_setup(tmp.path(), "confirm = \"required\"");
    let state = Arc::new(StateStore::open(policy.policy().host().data_dir()).unwrap());
    let model = Arc::new(ScriptedModel::new(
        "s",
        parse_steps(TICKET_TURNS, "test").unwrap(),
    ));
    let agent = support(&policy, &host, &state, model);
    let report = agent.run(&principal("ana", &[]), "urgent").await.unwrap();
    assert_eq!(report.status, RunStatus::Paused);
    let pending = state.approvals(false).unwrap();
    assert_eq!(pending[0].function, "tickets.create");
    state
        .decide(pending[0].id, Decision::Approved, "ana", "yes, mine")
        .unwrap();
    let report = agent.resume(&report.run_id).await.unwrap().unwrap();
    assert_eq!(report.status, RunStatus::Answered);
    assert_eq!(decisions(&report)[0].0, "ok", "confirmed: it ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_in_a_tool_result_never_reaches_the_state_file() {
    const CARD: &str = "4111 1111 1111 1111";
    const IBAN: &str = "GB82 WEST 1234 5698 7654 32";
    const EMAIL: &str = "ana.lopez@example.com";
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("kb");
    std::fs::create_dir(&kb).unwrap();
    std::fs::write(
        kb.join("billing.md"),
        format!("# Billing\nRefund card {CARD} to {IBAN}; confirm with {EMAIL}.\n"),
    )
    .unwrap();
    let script = r#"{"calls": [{"name": "kb__document", "arguments": {"path": "/kb/billing.md"}}]}
{"text": "The refund is on its way."}"#;
    let path = PolicyFile::new(&tmp.path().join("cache"))
        .data_dir(&tmp.path().join("data"))
        .tool(
            "kb",
            &example_tool("kb"),
            &format!(
                "fs = [{{ host = {:?}, guest = \"/kb\", mode = \"ro\" }}]",
                kb.display().to_string()
            ),
        )
        .scripted_agent(tmp.path(), "support", script, "")
        .write(tmp.path());
    let (policy, host, state) = open(&path);
    let model = scripted(script);
    let report = support(&policy, &host, &state, model.clone())
        .run(&principal("ana", &[]), "Where is my refund?")
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Answered);
    let Message::ToolResults { results } = model.requests()[1].messages.last().unwrap().clone()
    else {
        panic!("the model got the tool's result")
    };
    assert!(
        results[0].content.contains("[card]") && results[0].content.contains("[iban]"),
        "{}",
        results[0].content
    );
    drop(state);

    let mut stored = Vec::new();
    for file in std::fs::read_dir(tmp.path().join("data")).unwrap() {
        stored.extend(std::fs::read(file.unwrap().path()).unwrap());
    }
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("[card]"), "the masked result is kept");
    for secret in [CARD, IBAN, EMAIL, "4111111111111111", "GB82WEST"] {
        assert!(!stored.contains(secret), "`{secret}` is in the state files");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_resumers_neither_lose_a_half_decided_run_nor_resume_it_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host) = approval_setup(tmp.path(), "approval = \"required\"");
    let state = Arc::new(StateStore::open(policy.policy().host().data_dir()).unwrap());
    // Two tickets in one turn: two approvals.
    let two = r#"{"calls": [{"name": "tickets__create", "arguments": {"title": "a", "body": "", "priority": "low"}}, {"name": "tickets__create", "arguments": {"title": "b", "body": "", "priority": "low"}}]}
{"text": "Both handled."}"#;
    let steps = parse_steps(two, "test").unwrap();
    let paused = support(&policy, &host, &state, scripted(two))
        .run(&principal("ana", &[]), "two tickets")
        .await
        .unwrap();
    assert_eq!(paused.status, RunStatus::Paused);
    let pending: Vec<i64> = state
        .approvals(false)
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(pending.len(), 2);
    let resumers = |n: usize| {
        let (policy, host, state, steps) = (&policy, &host, &state, &steps);
        let run_id = paused.run_id.clone();
        async move {
            let racing = (0..n).map(|_| {
                let model = Arc::new(ScriptedModel::new("s", steps.clone()).starting_at(1));
                let agent = support(policy, host, state, model);
                let run_id = run_id.clone();
                tokio::spawn(async move { agent.resume(&run_id).await.unwrap() })
            });
            futures::future::join_all(racing)
                .await
                .into_iter()
                .map(|r| r.unwrap())
                .filter(Option::is_some)
                .count()
        }
    };

    state
        .decide(pending[0], Decision::Approved, "lee", "ok")
        .unwrap();
    assert_eq!(resumers(8).await, 0, "half decided: nobody resumes");
    assert!(
        state.paused_run(&paused.run_id).unwrap().is_some(),
        "and the run is still there to resume"
    );
    state
        .decide(pending[1], Decision::Approved, "lee", "ok")
        .unwrap();
    assert_eq!(resumers(8).await, 1, "exactly one resumer wins");
    let resumed = state
        .audit_of_run(&paused.run_id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "run.resumed")
        .count();
    assert_eq!(resumed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_prompt_reaches_its_share_of_principals_stickily_and_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("v2.md"),
        "You help the support team. Cite the document.",
    )
    .unwrap();
    let (policy, host, state) = setup_with(
        tmp.path(),
        "",
        "canary = { prompt = \"v2.md\", percent = 30 }",
    );
    let agent = &policy.agents()["support"];
    let stable = agent.prompt.version.clone();
    let canary = agent.canary.as_ref().unwrap().prompt.version.clone();
    assert_ne!(stable, canary);
    let picked: Vec<bool> = (0..1000)
        .map(|i| agent.prompt_for(&format!("user-{i}")).1)
        .collect();
    let share = picked.iter().filter(|c| **c).count();
    assert!(
        (250..=350).contains(&share),
        "{share} of 1000 got the canary"
    );
    assert_eq!(
        agent.prompt_for("user-7").1,
        picked[7],
        "sticky per principal"
    );

    // Runs record their version, and the model gets that version's words.
    let mut versions = std::collections::BTreeMap::new();
    for (i, got_canary) in picked.iter().copied().enumerate().take(20) {
        let who = principal(&format!("user-{i}"), &[]);
        let model = scripted(r#"{"text": "ok"}"#);
        let report = support(&policy, &host, &state, model.clone())
            .run(&who, "hi")
            .await
            .unwrap();
        let expected = if got_canary { &canary } else { &stable };
        assert_eq!(&report.prompt_version, expected);
        let system = &model.requests()[0].system;
        assert_eq!(system.contains("Cite the document."), got_canary);
        *versions.entry(report.prompt_version).or_insert(0u64) += 1;
    }
    let metrics = state.metrics(Duration::from_secs(3600)).unwrap();
    let counted: std::collections::BTreeMap<_, _> = metrics
        .prompts
        .iter()
        .map(|p| (p.version.clone(), p.runs))
        .collect();
    assert_eq!(counted, versions);
    assert!(
        metrics
            .prompts
            .iter()
            .all(|p| p.answered == p.runs && p.tokens > 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_answer_must_match_the_output_schema_with_bounded_retries() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("answer.schema.json"),
        r#"{"type": "object", "properties": {"answer": {"type": "string"}, "sources": {"type": "array", "items": {"type": "string"}}}, "required": ["answer", "sources"], "additionalProperties": false}"#,
    )
    .unwrap();
    let (policy, host, state) = setup_with(
        tmp.path(),
        "",
        "output_schema = \"answer.schema.json\"\nmax_output_retries = 1",
    );
    let model = scripted(
        r#"{"text": "42, from vpn.md"}
{"text": "{\"answer\": \"42\", \"sources\": [\"vpn.md\"]}"}"#,
    );
    let report = support(&policy, &host, &state, model.clone())
        .run(&principal("ana", &[]), "q")
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Answered);
    assert_eq!(report.answer, r#"{"answer": "42", "sources": ["vpn.md"]}"#);
    let Message::User { text } = model.requests()[1].messages.last().unwrap().clone() else {
        panic!()
    };
    assert!(
        text.starts_with("Your answer must be only JSON matching this JSON Schema: "),
        "{text}"
    );
    assert!(
        text.contains("It does not: the answer is not JSON"),
        "{text}"
    );

    let wrong = r#"{"text": "{\"answer\": 42}"}"#;
    let report = run(
        &policy,
        &host,
        &state,
        &principal("ana", &[]),
        &format!("{wrong}\n{wrong}\n{wrong}"),
    )
    .await;
    assert_eq!(report.status, RunStatus::OutputInvalid);
    assert!(
        report.answer.starts_with(
            "Stopped: the model's answer did not match the required format after 2 tries ("
        ),
        "{}",
        report.answer
    );
    assert!(
        report
            .answer
            .contains("/answer: 42 is not of type \"string\""),
        "{}",
        report.answer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intent_routes_limit_what_is_offered_and_callable() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup_with(
        tmp.path(),
        "",
        "[[agents.support.routes]]\nname = \"math\"\nwhen = [\"Add\", \"times\"]\ntools = [\"calc\"]",
    );
    let script = r#"{"calls": [{"name": "calc__apply", "arguments": {"op": "add", "a": 1, "b": 1}}, {"name": "tickets__list", "arguments": {"status": null}}]}
{"text": "2"}"#;
    let model = scripted(script);
    let report = support(&policy, &host, &state, model.clone())
        .run(&principal("sam", &["support"]), "Please add 1 and 1")
        .await
        .unwrap();
    let offered: Vec<_> = model.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(offered, ["calc__apply", "calc__sum", "calc__range"]);
    assert_eq!(decisions(&report)[0].0, "ok");
    assert_eq!(
        decisions(&report)[1],
        (
            "routing".into(),
            "the tool `tickets` is not available here (the request was routed to `math`)".into()
        )
    );
    let routed = state.audit_of_run(&report.run_id).unwrap();
    assert_eq!(routed[1].kind, "run.routed");
    assert!(
        matches!(&routed[1].record, AuditRecord::RunRouted { route } if route.name == "math"),
        "{:?}",
        routed[1].record
    );

    // No route matches: every tool of the agent.
    let model = scripted(r#"{"text": "hi"}"#);
    support(&policy, &host, &state, model.clone())
        .run(&principal("sam", &[]), "Hello there")
        .await
        .unwrap();
    assert!(model.requests()[0].tools.len() > 3);

    // A router of one's own.
    struct Nothing;
    impl Router for Nothing {
        fn route(&self, _: &str) -> Route {
            Route {
                name: "lockdown".into(),
                tools: vec![],
            }
        }
    }
    let model = scripted(script);
    let report = support(&policy, &host, &state, model.clone())
        .with_router(Arc::new(Nothing))
        .run(&principal("sam", &["support"]), "add 1 and 1")
        .await
        .unwrap();
    assert!(model.requests()[0].tools.is_empty());
    assert!(decisions(&report).iter().all(|(g, _)| g == "routing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_raised_on_tool_error_rates_and_costly_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup_with(
        tmp.path(),
        "",
        "[alerts]\nrun_tokens = 100000\ntool_error_rate = { threshold = 0.5, min_calls = 2, window = \"1h\" }",
    );
    let boom = r#"{"calls": [{"name": "hostile__boom", "arguments": {}}]}
{"text": "that tool is broken", "usage": {"input_tokens": 150000, "output_tokens": 10}}"#;
    let alerts = |report: &RunReport| -> Vec<(String, String)> {
        state
            .audit_of_run(&report.run_id)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record {
                AuditRecord::AlertRaised(alert) => Some((alert.alert, alert.subject)),
                _ => None,
            })
            .collect()
    };
    let first = run(&policy, &host, &state, &principal("ana", &[]), boom).await;
    assert_eq!(
        alerts(&first),
        [("run_tokens".to_owned(), first.run_id.clone())],
        "one failing call is not a rate yet"
    );
    let second = run(&policy, &host, &state, &principal("ana", &[]), boom).await;
    assert_eq!(
        alerts(&second),
        [
            ("tool_error_rate".to_owned(), "hostile.boom".to_owned()),
            ("run_tokens".to_owned(), second.run_id.clone())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_their_webhook_once_each_retried_when_it_fails_first() {
    use harness_e2e::http_server::{HttpServer, response};
    use std::sync::Mutex;
    /// What the receiver got: the token header and the JSON body of each request.
    type Received = Vec<(Option<String>, serde_json::Value)>;
    let received: Arc<Mutex<Received>> = Arc::default();
    // The receiver holds its first answer until the run has returned: a run that waited for
    // the webhook would never return.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    let receiver = {
        let received = received.clone();
        HttpServer::start(move |request| {
            let first = {
                let mut received = received.lock().unwrap();
                received.push((
                    request.header("x-alert-token").map(str::to_owned),
                    serde_json::from_slice(&request.body).unwrap(),
                ));
                received.len() == 1
            };
            if first {
                let _ = released.lock().unwrap().recv();
                return response(503, &[], b"");
            }
            response(204, &[], b"")
        })
    };
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("HARNESS_TEST_ALERT_TOKEN", "s3cret") };
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup_with(
        tmp.path(),
        "",
        &format!(
            "[alerts]\nrun_tokens = 100000\n\
             webhooks = [{{ url = \"http://{}/hook\", headers_from_env = {{ X-Alert-Token = \"HARNESS_TEST_ALERT_TOKEN\" }} }}]",
            receiver.addr()
        ),
    );
    let costly =
        r#"{"text": "a long answer", "usage": {"input_tokens": 150000, "output_tokens": 10}}"#;
    let agent = support(&policy, &host, &state, scripted(costly));
    let report = agent.run(&principal("ana", &[]), "question").await.unwrap();
    release.send(()).unwrap();
    agent
        .gate()
        .webhooks()
        .finish(Duration::from_secs(30))
        .await;

    let received = received.lock().unwrap();
    assert_eq!(
        received.len(),
        2,
        "one failure, then delivered once: {received:?}"
    );
    assert_eq!(received[0], received[1], "the retry sends the same alert");
    let (token, alert) = &received[1];
    assert_eq!(token.as_deref(), Some("s3cret"));
    assert_eq!(
        (&alert["alert"], &alert["run_id"], &alert["threshold"]),
        (
            &serde_json::json!("run_tokens"),
            &serde_json::json!(report.run_id),
            &serde_json::json!(100000.0)
        )
    );
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .starts_with("Harness alert `run_tokens`"),
        "a Slack-compatible text: {alert}"
    );
}

#[test]
fn a_webhook_that_is_not_http_is_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = PolicyFile::new(&tmp.path().join("cache"))
        .raw("[alerts]\nwebhooks = [{ url = \"ftp://alerts.example/hook\" }]")
        .write(tmp.path());
    let error = Config::load(&policy).unwrap_err().to_string();
    assert!(error.contains("alerts.webhooks[0].url"), "{error}");
    assert!(error.contains("not an http or https URL"), "{error}");
}

/// A provider on loopback that asks for `calc__apply` first and answers with the tool's result
/// second, in OpenAI's or Anthropic's wire format.
fn provider(anthropic: bool) -> harness_e2e::http_server::HttpServer {
    use harness_e2e::http_server::{HttpServer, response};
    let turn = std::sync::atomic::AtomicUsize::new(0);
    HttpServer::start(move |request| {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let first = turn.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let reply = match (anthropic, first) {
            (false, true) => {
                serde_json::json!({"id": "c1", "model": "gpt-test", "choices": [{"finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "calc__apply", "arguments": "{\"op\": \"mul\", \"a\": 6, \"b\": 7}"}}]}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 10}})
            }
            (false, false) => {
                let result = &body["messages"].as_array().unwrap().last().unwrap()["content"];
                serde_json::json!({"id": "c2", "model": "gpt-test", "choices": [{"finish_reason": "stop",
                    "message": {"role": "assistant", "content": format!("The tool said {}", result.as_str().unwrap())}}],
                    "usage": {"prompt_tokens": 80, "completion_tokens": 8}})
            }
            (true, true) => {
                serde_json::json!({"id": "m1", "model": "claude-test", "stop_reason": "tool_use",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "calc__apply", "input": {"op": "mul", "a": 6, "b": 7}}],
                "usage": {"input_tokens": 50, "output_tokens": 10}})
            }
            (true, false) => {
                let turns = body["messages"].as_array().unwrap();
                let result = &turns.last().unwrap()["content"][0]["content"];
                serde_json::json!({"id": "m2", "model": "claude-test", "stop_reason": "end_turn",
                    "content": [{"type": "text", "text": format!("The tool said {}", result.as_str().unwrap())}],
                    "usage": {"input_tokens": 80, "output_tokens": 8}})
            }
        };
        response(
            200,
            &[("content-type", "application/json")],
            reply.to_string().as_bytes(),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_end_to_end_against_openai_and_anthropic_wire_formats() {
    use harness_agent::models::anthropic::{AnthropicConfig, AnthropicModel};
    use harness_agent::models::openai::{OpenAiConfig, OpenAiModel};
    use harness_sandbox::policy::SecretValue;
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let openai = provider(false);
    let model = Arc::new(
        OpenAiModel::new(OpenAiConfig {
            base_url: format!("http://{}/v1", openai.addr()),
            model: "gpt-test".into(),
            api_key: Some(SecretValue::new("sk-test").unwrap()),
            timeout: Duration::from_secs(5),
        })
        .unwrap(),
    );
    let report = support(&policy, &host, &state, model)
        .run(&principal("ana", &[]), "6 x 7?")
        .await
        .unwrap();
    assert_eq!(
        (report.status, report.answer.as_str()),
        (RunStatus::Answered, "The tool said 42.0")
    );
    assert_eq!(report.usage.total(), 148);
    assert_eq!(openai.requests().len(), 2);

    let anthropic = provider(true);
    let model = Arc::new(
        AnthropicModel::new(AnthropicConfig {
            base_url: format!("http://{}", anthropic.addr()),
            model: "claude-test".into(),
            api_key: SecretValue::new("ant-test").unwrap(),
            timeout: Duration::from_secs(5),
        })
        .unwrap(),
    );
    let report = support(&policy, &host, &state, model)
        .run(&principal("ana", &[]), "6 x 7?")
        .await
        .unwrap();
    assert_eq!(
        (report.status, report.answer.as_str()),
        (RunStatus::Answered, "The tool said 42.0")
    );
    assert_eq!(anthropic.requests().len(), 2);
    assert!(state.verify_audit(None).unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_stops_mid_call_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy, host, state) = setup(tmp.path(), "");
    let script = r#"{"calls": [{"name": "slow__spin", "arguments": {}}]}
{"text": "never"}"#;
    let cancel = CancellationToken::new();
    let model = scripted(script);
    let runner = support(&policy, &host, &state, model.clone()).with_cancel(cancel.clone());
    let ana = principal("ana", &[]);
    let started = Instant::now();
    let (report, ()) = tokio::join!(runner.run(&ana, "spin"), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let report = report.unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.answer, "Cancelled before the run finished.");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "waited for the tool: {:?}",
        started.elapsed()
    );
    assert_eq!(model.used(), 1, "the model was not asked again");
    let last = state.audit_of_run(&report.run_id).unwrap().pop().unwrap();
    assert!(
        matches!(&last.record, AuditRecord::RunEnded(ended) if ended.status == RunStatus::Cancelled),
        "{:?}",
        last.record
    );

    // A handle cancelled before the run starts stops it before the model is asked.
    let model = scripted(script);
    let report = support(&policy, &host, &state, model.clone())
        .with_cancel(cancel)
        .run(&principal("ana", &[]), "spin")
        .await
        .unwrap();
    assert_eq!(
        (report.status, report.turns, model.used()),
        (RunStatus::Cancelled, 0, 0)
    );
}
