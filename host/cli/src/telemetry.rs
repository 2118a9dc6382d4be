//! Where the process's telemetry goes: logs to stderr as JSON lines (`RUST_LOG`; audit records
//! too with `HARNESS_AUDIT=1`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the traces of
//! runs, model calls and tool calls ([`harness_agent::telemetry`], `harness::genai`) over OTLP
//! (HTTP, protobuf), configured by the standard `OTEL_*` variables.

use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{SpanExporter, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;

/// The installed telemetry; dropping it sends the spans not exported yet.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take()
            && let Err(error) = traces.shutdown()
        {
            eprintln!("harness: the last traces were not exported: {error}");
        }
    }
}

/// Installs the logs and, with `OTEL_EXPORTER_OTLP_ENDPOINT`, the OTLP trace export.
pub fn init() -> Telemetry {
    let default = if std::env::var_os("HARNESS_AUDIT").is_some() {
        "warn,harness::audit=info"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::CLOSE)
        .with_filter(filter);
    let (traces, problem) = match std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(_) => match exporter() {
            Ok(exporter) => (
                Some(
                    SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_resource(Resource::builder().with_service_name("harness").build())
                        .build(),
                ),
                None,
            ),
            Err(problem) => (None, Some(problem)),
        },
        None => (None, None),
    };
    let spans = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("harness"))
            .with_filter(Targets::new().with_target("harness::genai", LevelFilter::INFO))
    });
    tracing_subscriber::registry().with(logs).with(spans).init();
    if let Some(problem) = problem {
        tracing::error!(target: "harness::telemetry", %problem, "traces are not exported");
    }
    Telemetry { traces }
}

/// The OTLP exporter, on an HTTP client with the host's TLS configuration (built on a thread
/// of its own: a blocking client may not be built inside an async runtime).
fn exporter() -> Result<SpanExporter, String> {
    let client = std::thread::spawn(|| {
        reqwest::blocking::Client::builder()
            .tls_backend_preconfigured((*harness_sandbox::tls::client_config()).clone())
            .build()
    })
    .join()
    .map_err(|_| "building the HTTP client panicked".to_owned())?
    .map_err(|e| format!("building the HTTP client: {e}"))?;
    SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .build()
        .map_err(|e| e.to_string())
}
