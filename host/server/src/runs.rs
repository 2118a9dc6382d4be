//! Agent runs inside the server: started for a request over the whitelist served now, each a
//! task of its own (a run goes on when the client that asked for it leaves, and a paused run
//! waits in the state for its approvals), and resumed here once the last approval it waits
//! for is decided. Runs stop when the server's grace period ends, recorded as cancelled. While
//! it drives a run, the server holds the run's lease in the state, so that if it dies another
//! server sharing the state ends the run as abandoned.

use std::time::Instant;

use harness_agent::gates::Principal;
use harness_agent::models::{self, ModelError};
use harness_agent::run::{Agent, Begun, RunReport, UnknownAgent, paused_run};
use harness_agent::state::StateError;
use harness_agent::state::approvals::{ApprovalRequest, DecideError};
use harness_agent::state::records::Decision;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::McpServer;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The whitelist has no such agent.
    #[error(transparent)]
    UnknownAgent(#[from] UnknownAgent),
    /// The agent's model cannot be set up (a missing key, an unreadable script).
    #[error("the agent's model: {0}")]
    Model(#[from] ModelError),
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a decision on an approval was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotDecided {
    /// No approval has the number, it was decided already, or the state failed.
    #[error(transparent)]
    Decide(#[from] DecideError),
    /// It belongs to a paused run that cannot resume in this server; nothing was decided.
    #[error(
        "approval {id} belongs to the paused run {run_id}, which cannot resume in this server \
         ({error}); nothing was decided"
    )]
    CannotResume {
        /// The approval.
        id: i64,
        /// Its run.
        run_id: String,
        /// Why the run cannot resume.
        error: RunError,
    },
}

/// A run the server began: its id at once, its report when it ends or pauses.
pub(crate) struct Started {
    pub(crate) run_id: String,
    pub(crate) report: JoinHandle<Result<RunReport, StateError>>,
}

impl McpServer {
    /// Agent `name` of the whitelist served now with a model of its own (a scripted model
    /// continues after the `turns` a paused run took), stopped when `cancel` fires.
    pub(crate) fn agent(
        &self,
        name: &str,
        turns: usize,
        cancel: &CancellationToken,
    ) -> Result<Agent, RunError> {
        let gate = self.gate();
        let settings = gate
            .config()
            .agents()
            .get(name)
            .ok_or_else(|| UnknownAgent {
                name: name.to_owned(),
                known: gate.config().agents().keys().cloned().collect(),
            })?;
        let model = models::for_agent(gate.config(), settings, turns, &|var| {
            std::env::var(var).ok()
        })?;
        Ok(Agent::over(gate, name, model)?.with_cancel(cancel.child_token()))
    }

    /// Begins a run of `agent` on `input` for `principal` (recorded, so its id can be given
    /// out and found) and drives it on as a task of the server.
    pub(crate) fn start_run(
        &self,
        agent: Agent,
        principal: &Principal,
        input: &str,
    ) -> Result<Started, StateError> {
        let begun = agent.begin(principal, input)?;
        let run_id = begun.run_id().to_owned();
        let report = self.drive(agent, begun)?;
        Ok(Started { run_id, report })
    }

    /// Drives `begun` on as a task of the server, holding its lease (see
    /// [`McpServer::keep_leases`]) until it ends or pauses.
    fn drive(
        &self,
        agent: Agent,
        begun: Begun,
    ) -> Result<JoinHandle<Result<RunReport, StateError>>, StateError> {
        let gate = self.gate();
        let run_id = begun.run_id().to_owned();
        let lease = gate.config().run_lease();
        gate.state()
            .lease_run(&run_id, &agent.settings().name, self.replica(), lease)?;
        let server = self.clone();
        Ok(tokio::spawn(self.track(async move {
            let started = Instant::now();
            let ran = agent.proceed(begun).await;
            server.count(&agent, ran.as_ref(), started);
            if let Err(error) = gate.state().release_run(&run_id) {
                tracing::warn!(target: "harness::serve", %run_id, %error, "a run's lease was not released; it will run out");
            }
            ran
        })))
    }

    /// Renews the leases of the runs this server drives until `stop`, and ends as abandoned
    /// the runs of servers whose leases ran out (they died mid-run), whichever server sharing
    /// the state finds them first.
    pub async fn keep_leases(&self, stop: CancellationToken) {
        loop {
            let lease = self.gate().config().run_lease();
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(lease / 3) => {}
            }
            let (gate, replica) = (self.gate(), self.replica().to_owned());
            let kept = tokio::task::spawn_blocking(move || {
                gate.state().renew_leases(&replica, lease)?;
                gate.state().end_abandoned_runs()
            })
            .await;
            match kept {
                Ok(Ok(abandoned)) => {
                    for run in abandoned {
                        tracing::warn!(target: "harness::serve", run_id = %run.run_id, server = %run.owner, "a run whose server stopped mid-run was ended as abandoned");
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(target: "harness::serve", %error, "run leases were not kept; retrying");
                }
                Err(error) => {
                    tracing::warn!(target: "harness::serve", %error, "keeping run leases was interrupted");
                }
            }
        }
    }

    /// Records `decision` on approval `id` by `by` with `reason` and, when it was the last
    /// decision a paused run waited for, resumes the run in the server (`true`). A run that
    /// cannot resume here (its agent gone from the whitelist, its model's key missing) leaves
    /// the decision untaken, to be taken where it can.
    pub(crate) fn decide_approval(
        &self,
        id: i64,
        decision: Decision,
        by: &str,
        reason: &str,
        cancel: &CancellationToken,
    ) -> Result<(ApprovalRequest, bool), NotDecided> {
        let gate = self.gate();
        let request = gate
            .state()
            .approval(id)
            .map_err(DecideError::State)?
            .ok_or(DecideError::Unknown(id))?;
        let resumer =
            self.resumer(&request.run_id, cancel)
                .map_err(|error| NotDecided::CannotResume {
                    id,
                    run_id: request.run_id.clone(),
                    error,
                })?;
        let decided = gate.state().decide(id, decision, by, reason)?;
        let resumed = match resumer {
            Some(agent) => self
                .resume(agent, &decided.run_id)
                .map_err(DecideError::State)?,
            None => false,
        };
        Ok((decided, resumed))
    }

    /// The agent that would resume run `run_id`, when it is a paused run.
    fn resumer(&self, run_id: &str, cancel: &CancellationToken) -> Result<Option<Agent>, RunError> {
        match paused_run(self.gate().state(), run_id)? {
            Some(paused) => Ok(Some(self.agent(&paused.agent, paused.turns, cancel)?)),
            None => Ok(None),
        }
    }

    /// Resumes run `run_id` with `agent` as a task of the server if none of its approvals
    /// waits any more (recorded as resumed before this returns); says whether it did.
    fn resume(&self, agent: Agent, run_id: &str) -> Result<bool, StateError> {
        let Some(begun) = agent.take_up(run_id)? else {
            return Ok(false);
        };
        self.drive(agent, begun)?;
        Ok(true)
    }

    /// Counts what a run came to, and logs a run the state failed under.
    fn count(&self, agent: &Agent, ran: Result<&RunReport, &StateError>, started: Instant) {
        let settings = agent.settings();
        match ran {
            Ok(report) => {
                self.metrics()
                    .ran(&settings.name, &settings.model, report, started.elapsed());
            }
            Err(error) => {
                tracing::error!(target: "harness::serve", agent = %settings.name, %error, "a run failed");
            }
        }
    }
}
