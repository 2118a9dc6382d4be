//! The command line: every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The whitelist a command reads (`--policy`, default `./harness.toml`).
#[derive(Args)]
pub struct PolicyArg {
    /// The whitelist file.
    #[arg(long = "policy", default_value = harness_sandbox::policy::DEFAULT_POLICY_FILE)]
    pub path: PathBuf,
}

/// Run WebAssembly tools for AI agents, sandboxed and metered.
#[derive(Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate the whitelist and every component; list each tool and its functions.
    Check {
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// List tools, functions, descriptions and JSON Schemas.
    Tools {
        #[command(flatten)]
        policy: PolicyArg,
        /// Print JSON (one object with every tool) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Call TOOL.FUNCTION with JSON arguments; print the result as JSON.
    Call {
        #[command(flatten)]
        policy: PolicyArg,
        /// `tool.function`, e.g. `calc.eval`.
        function: String,
        /// The arguments as a JSON object, e.g. '{"expression": "1 + 2"}'.
        #[arg(default_value = "{}")]
        arguments: String,
        /// The principal the call runs for.
        #[arg(long, default_value = "cli")]
        principal: String,
        /// Print the whole report (outcome, usage, stdout, stderr, logs) as JSON.
        #[arg(long)]
        report: bool,
    },
    /// Show a component's WIT world, imports by capability, functions with schemas, and sha256;
    /// with --tool, also review its imports against what the whitelist grants it.
    Audit {
        /// The component file.
        component: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Review the component as this whitelisted tool.
        #[arg(long)]
        tool: Option<String>,
        /// The whitelist holding --tool.
        #[arg(long, default_value = harness_sandbox::policy::DEFAULT_POLICY_FILE, requires = "tool")]
        policy: PathBuf,
        /// Exit with code 5 when the review has warnings (for CI gates).
        #[arg(long, requires = "tool")]
        deny_warnings: bool,
    },
    /// Serve the whitelist's tools over MCP on stdin/stdout (for Claude Desktop, IDEs, agent
    /// frameworks); every call passes the same gates as an agent run.
    Mcp {
        #[command(flatten)]
        policy: PolicyArg,
        /// Who the calls are made for (the local user).
        #[arg(long, default_value_t = default_user())]
        principal: String,
        /// A role of the principal (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Serve the whitelist's tools over MCP on streamable HTTP at /mcp (with /healthz and
    /// /readyz); clients authenticate with keys from [clients].
    Serve {
        #[command(flatten)]
        policy: PolicyArg,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: std::net::SocketAddr,
        /// On Ctrl-C or SIGTERM, how long calls in flight may take to finish; then they are
        /// cancelled, and recorded so.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
    },
    /// Sign TOOL's component digest together with its whitelist entry (grants, limits, gates);
    /// writes the signature where the whitelist looks for it.
    Sign {
        #[command(flatten)]
        policy: PolicyArg,
        /// The tool's name in the whitelist.
        tool: String,
        /// The minisign secret key (`harness keys signing` or `minisign -G` makes one); its
        /// password comes from HARNESS_SIGNING_PASSWORD, else the terminal.
        #[arg(long)]
        key: PathBuf,
        /// Write the signature here instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check the signature of each tool (or of TOOLS) against [trust] keys: who signed it, or
    /// what differs; exits 3 when one is refused.
    Verify {
        #[command(flatten)]
        policy: PolicyArg,
        /// The tools to check (default: all).
        tools: Vec<String>,
    },
    /// Publish a component to an OCI registry (CNCF wasm layout), with its signature attached.
    Push {
        /// The component file.
        component: PathBuf,
        /// Where: oci://HOST[:PORT]/NAME:TAG.
        target: String,
        /// A signature from `harness sign` to attach as a referrer.
        #[arg(long)]
        signature: Option<PathBuf>,
    },
    /// The state database: `migrate` brings its schema to this version (PostgreSQL needs it
    /// before `serve` starts; a SQLite file migrates on its own), `status` shows where it is
    /// and at which version.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Client keys for `harness serve`, and signing keys for `harness sign`.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Run an agent on a question: the model proposes tool calls, every call passes the gates and
    /// the sandbox; prints the conversation with each decision.
    Run {
        #[command(flatten)]
        policy: PolicyArg,
        /// The agent (`[agents.NAME]`); may be omitted when there is one.
        #[arg(long)]
        agent: Option<String>,
        /// Who the run acts for.
        #[arg(long, default_value = "cli")]
        principal: String,
        /// A role of the principal (repeat for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
        /// The question.
        input: String,
    },
    /// List pending approvals, or approve or deny one (the last decision of a paused run resumes
    /// it here).
    Approvals {
        #[command(subcommand)]
        action: ApprovalsAction,
    },
    /// Runs per prompt version, calls and errors per tool, refusals per gate, from the audit log.
    Metrics {
        #[command(flatten)]
        policy: PolicyArg,
        /// How far back, e.g. `1h`, `7days`.
        #[arg(long, default_value = "1day", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What each budget has spent in its current window.
    Budget {
        #[command(subcommand)]
        action: BudgetAction,
    },
    /// Re-run a recorded run with its recorded model responses and compare each tool call;
    /// exit 9 at the first divergence.
    Replay {
        #[command(flatten)]
        policy: PolicyArg,
        /// The run's id (`run-…`, printed by `harness run`).
        run_id: String,
    },
    /// Run a golden dataset (JSON Lines of cases) against an agent; exit 1 if a case fails.
    Eval {
        #[command(flatten)]
        policy: PolicyArg,
        /// The dataset.
        dataset: PathBuf,
        /// The agent (`[agents.NAME]`); may be omitted when there is one.
        #[arg(long)]
        agent: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Switch a tool (or, with --agent, an agent) off, effective for the next call of any
    /// running host.
    Kill {
        #[command(flatten)]
        policy: PolicyArg,
        /// The tool or agent name.
        name: String,
        /// NAME is an agent.
        #[arg(long)]
        agent: bool,
        /// Why (recorded, and told to the model).
        #[arg(long, default_value = "switched off by an operator")]
        reason: String,
    },
    /// Put a switched-off tool (or agent) back in service.
    Enable {
        #[command(flatten)]
        policy: PolicyArg,
        /// The tool or agent name.
        name: String,
        /// NAME is an agent.
        #[arg(long)]
        agent: bool,
    },
    /// Check the agent's hash-chained audit log, or print its head to anchor elsewhere.
    AuditLog {
        #[command(subcommand)]
        action: AuditLogAction,
    },
    /// Create a tool: WIT world, source, README and tests.toml, ready to build.
    New {
        /// The tool's name: lower-case words joined by hyphens.
        name: String,
        /// rust, python or c.
        #[arg(long, value_parser = crate::build::parse_language, default_value = "rust")]
        lang: harness_build::project::Language,
        /// The folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build the tool in DIR into a component; print its whitelist entry with its sha256.
    Build {
        /// The tool's folder (with wit/ and Cargo.toml, app.py or *.c).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the component (default DIR/target/NAME.wasm).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Cargo's target folder for Rust tools (share one between tools to build faster).
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
    /// Build the tool in DIR and run the cases of its tests.toml through the sandbox.
    Test {
        /// The tool's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Cargo's target folder for Rust tools.
        #[arg(long)]
        target_dir: Option<PathBuf>,
    },
}

/// What `harness budget` does.
#[derive(Subcommand)]
pub enum BudgetAction {
    /// Spending per budget scope against its limit.
    Show {
        #[command(flatten)]
        policy: PolicyArg,
    },
}

/// What `harness approvals` does.
#[derive(Subcommand)]
pub enum ApprovalsAction {
    /// Pending approvals (with --all, decided ones too).
    List {
        #[command(flatten)]
        policy: PolicyArg,
        /// Include decided approvals.
        #[arg(long)]
        all: bool,
    },
    /// Approve a call; the run resumes when nothing else is pending.
    Approve {
        #[command(flatten)]
        policy: PolicyArg,
        /// The approval's number.
        id: i64,
        /// Why (recorded).
        #[arg(long, default_value = "approved")]
        reason: String,
    },
    /// Deny a call; the model is told, and the run resumes when nothing else is pending.
    Deny {
        #[command(flatten)]
        policy: PolicyArg,
        /// The approval's number.
        id: i64,
        /// Why (recorded, and told to the model).
        #[arg(long)]
        reason: String,
    },
}

/// What `harness audit-log` does.
#[derive(Subcommand)]
pub enum AuditLogAction {
    /// Walk the whole chain; exit 7 naming the first broken record.
    Verify {
        #[command(flatten)]
        policy: PolicyArg,
        /// The head recorded earlier (from `audit-log head`): also detects a cut-off end.
        #[arg(long)]
        head: Option<String>,
    },
    /// Print the hash of the last record.
    Head {
        #[command(flatten)]
        policy: PolicyArg,
    },
}

/// What `harness state` does.
#[derive(Subcommand)]
pub enum StateAction {
    /// Apply the schema migrations this version needs, each once, whatever replicas run it.
    Migrate {
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Print the database (its URL without the password) and its schema version.
    Status {
        #[command(flatten)]
        policy: PolicyArg,
    },
}

/// What `harness keys` does.
#[derive(Subcommand)]
pub enum KeysAction {
    /// Make a key for client NAME: prints the key once and the [clients.NAME] entry to paste.
    New {
        /// The client's name.
        name: String,
    },
    /// Make a minisign signing key pair: DIR/NAME.key (secret; encrypted with a password from
    /// HARNESS_SIGNING_PASSWORD or the terminal) and DIR/NAME.pub; prints the [trust] line.
    Signing {
        /// The key's name (as reviewers will know it in [trust] keys).
        name: String,
        /// Where to write the files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Leave the secret key unencrypted (for a CI secret store that protects it).
        #[arg(long)]
        no_password: bool,
    },
}

/// The local user, for commands that act for whoever runs them.
pub fn default_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}
