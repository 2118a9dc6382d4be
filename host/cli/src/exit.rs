//! Every exit code of `harness`, in one place. Scripts may rely on them:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | the tool returned an error (`err` of its `result`); `test`, `eval`: a case failed |
//! | 2 | bad command line |
//! | 3 | the whitelist or a component could not be loaded |
//! | 4 | the call was refused: unknown tool or function, invalid arguments |
//! | 5 | `audit --deny-warnings`: the review found warnings |
//! | 6 | the command failed otherwise (a tool could not be created or built, state unreadable, ...) |
//! | 7 | `audit-log verify`: the chain is broken (edited, inserted, deleted or reordered records) |
//! | 8 | `run`: the run ended without the model's answer (turn limit, budget, input rejected, ...) |
//! | 9 | `replay`: the replay diverged from the recorded run |
//! | 10 | `run`, `approvals approve/deny`: the run is paused, waiting for human approval |
//! | 10 | `call`: stopped, out of fuel |
//! | 11 | `call`: stopped, timed out |
//! | 12 | `call`: stopped, memory limit |
//! | 13 | `call`: stopped, stack overflow |
//! | 14 | `call`: stopped, output too large |
//! | 15 | `call`: stopped, the tool trapped |
//! | 16 | `call`: stopped, a granted capability (such as a directory) is unavailable |

use std::process::ExitCode;

use harness_sandbox::Stop;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It did what was asked.
    Success,
    /// The tool returned its error, or a test or eval case failed.
    Failed,
    /// The whitelist or a component could not be loaded.
    Load,
    /// The call was refused before it ran.
    Refused,
    /// The security review found warnings.
    Warnings,
    /// The command could not do its work.
    Error,
    /// The audit chain is broken.
    Tampered,
    /// The run ended without the model's answer.
    NoAnswer,
    /// The replay diverged.
    Diverged,
    /// The run waits for human approval.
    Paused,
    /// The sandbox stopped the call.
    Stopped(StopCode),
}

/// The exit code of each way the sandbox stops a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopCode(u8);

impl From<&Stop> for StopCode {
    fn from(stop: &Stop) -> StopCode {
        StopCode(match stop {
            Stop::OutOfFuel { .. } => 10,
            Stop::TimedOut { .. } => 11,
            Stop::MemoryLimit { .. } => 12,
            Stop::StackOverflow => 13,
            Stop::OutputTooLarge { .. } => 14,
            Stop::Trap { .. } => 15,
            Stop::GrantUnavailable { .. } => 16,
            _ => 15,
        })
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Load => 3,
            Exit::Refused => 4,
            Exit::Warnings => 5,
            Exit::Error => 6,
            Exit::Tampered => 7,
            Exit::NoAnswer => 8,
            Exit::Diverged => 9,
            Exit::Paused => 10,
            Exit::Stopped(StopCode(code)) => code,
        })
    }
}
