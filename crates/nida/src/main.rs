//! The `nida` daemon: parses the command line, loads the configuration and
//! the prompts, binds the sockets, and starts the SIP driver and the status
//! endpoint on a tokio runtime.

mod base;
mod call;
mod centre;
mod cli;
mod clock;
mod config;
mod ops;
mod redact;
mod sip;

use base::{db, httpc, tls};
use call::lookup;
use cli::{agentcmd, caller, flowcmd, report, supervisorcmd};
use ops::{api, reload, retention, webhooks};
use sip::driver;

use clap::Parser;
use config::{Config, PortRange};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// nida: a SIP/RTP contact-centre daemon with IVR and automatic call distribution.
///
/// With no command, nida runs the daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML configuration file (defaults are embedded; options below override it).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// SIP address, for both UDP and TCP [default: 127.0.0.1:5060].
    #[arg(long, value_name = "IP:PORT")]
    sip_addr: Option<SocketAddr>,
    /// HTTP status address [default: 127.0.0.1:8080].
    #[arg(long, value_name = "IP:PORT")]
    http_addr: Option<SocketAddr>,
    /// RTP port range [default: 20000-39999].
    #[arg(long, value_name = "A-B")]
    rtp_ports: Option<PortRange>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Place a test call: press keys as RFC 4733 events, record what is heard.
    Call {
        /// Whom to call, e.g. sip:8005@127.0.0.1:5060.
        uri: String,
        /// Keys to press, one comma-separated group per prompt (e.g. `7,1,20240002,1`);
        /// `w` before a group waits for the prompt to end even with --barge-in-ms.
        #[arg(long)]
        digits: Option<String>,
        /// Write what was heard to this WAV file (8 kHz mono).
        #[arg(long, value_name = "FILE.wav")]
        record: Option<PathBuf>,
        /// Speak this audio file (WAV, MP3, FLAC, Ogg), looped, as the
        /// caller's voice (silence when absent).
        #[arg(long, value_name = "FILE")]
        say: Option<PathBuf>,
        /// Press keys as tones in the audio (no telephone-event offered),
        /// as an old carrier's caller would.
        #[arg(long)]
        inband: bool,
        /// Silence that ends a prompt, in milliseconds.
        #[arg(long, default_value_t = 800)]
        gap_ms: u64,
        /// Longest call, in seconds.
        #[arg(long, default_value_t = 120)]
        max_seconds: u64,
        /// Press each group this many milliseconds into its prompt instead of
        /// waiting for the prompt to end.
        #[arg(long)]
        barge_in_ms: Option<u64>,
        /// The caller's number (user part of From).
        #[arg(long, default_value = "nida-call")]
        from: String,
        /// Hang up this many milliseconds after the last key group was
        /// pressed (instead of waiting for the next prompt to end).
        #[arg(long)]
        hang_up_after_ms: Option<u64>,
    },
    /// Key figures from the call records: per queue and hour or day, and
    /// each agent's ratings.
    Report {
        /// From: YYYY-MM-DD or Unix seconds (UTC).
        #[arg(long)]
        from: String,
        /// To (excluded): YYYY-MM-DD or Unix seconds (UTC).
        #[arg(long)]
        to: String,
        /// One queue only.
        #[arg(long)]
        queue: Option<String>,
        /// `csv` or `html` (with plots).
        #[arg(long, default_value = "csv")]
        format: String,
        /// `hour` or `day`.
        #[arg(long, default_value = "day")]
        by: String,
        /// Write here instead of to standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Agents kept in the store (beside the configured ones).
    Agent {
        #[command(subcommand)]
        command: agentcmd::AgentCommand,
    },
    /// Supervisors kept in the store (beside the configured ones).
    Supervisor {
        #[command(subcommand)]
        command: supervisorcmd::SupervisorCommand,
    },
    /// Send status notifications from a CSV file to the running daemon
    /// (columns: number, flow, language, id; any other is a flow
    /// variable). Prints each notification's id.
    Notify {
        /// The CSV file (with a header line).
        file: PathBuf,
        /// The flow of rows without a `flow` cell.
        #[arg(long)]
        flow: Option<String>,
        /// The daemon's HTTP address [default: http://HTTP_ADDR].
        #[arg(long)]
        api: Option<String>,
    },
    /// Check, simulate or draw IVR flow files.
    Flow {
        #[command(subcommand)]
        command: FlowCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
enum FlowCommand {
    /// Check a flow file or a folder of flows; exit 1 with diagnostics when invalid.
    Check {
        /// A flow file or a folder.
        path: PathBuf,
    },
    /// Run a flow in the terminal through the daemon's interpreter.
    Simulate {
        /// The flow file.
        file: PathBuf,
        /// Start in this language.
        #[arg(long)]
        lang: Option<String>,
        /// Keys to press, one group per wait, comma-separated; `.` is silence
        /// (e.g. `2,1,20240002,1`). Interactive when absent.
        #[arg(long)]
        digits: Option<String>,
        /// JSON records that answer every lookup.
        #[arg(long, value_name = "FILE")]
        lookup_fixture: Option<PathBuf>,
        /// The time calendars are read at (`open("...")`): Unix seconds or
        /// `YYYY-MM-DDTHH:MM` (UTC); now when absent.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Print the JSON Schema of flow files (for editors).
    Schema,
    /// Draw a flow as a Mermaid or Graphviz graph.
    Graph {
        /// The flow file.
        file: PathBuf,
        /// `mermaid` or `dot`.
        #[arg(long, default_value = "mermaid")]
        format: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cfg = match configure(&cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(command) = cli.command {
        return run_command(cfg, command);
    }
    let (flows, backends, prompts) = match load(&cfg) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match or_exit(runtime, "cannot start the runtime: ".into(), 1) {
        Ok(r) => r.block_on(serve(cfg, prompts, flows, backends)),
        Err(code) => code,
    }
}

/// `Ok`, or the error printed after `what` and nida's exit code.
fn or_exit<T, E: std::fmt::Display>(
    r: Result<T, E>,
    what: String,
    code: u8,
) -> Result<T, ExitCode> {
    r.map_err(|e| {
        eprintln!("nida: {what}{e}");
        ExitCode::from(code)
    })
}

/// The configuration file with the command line's overrides, checked.
fn configure(cli: &Cli) -> Result<Config, ExitCode> {
    let mut cfg = match &cli.config {
        Some(path) => or_exit(Config::read(path), String::new(), 2)?,
        None => Config::default(),
    };
    if let Some(a) = cli.sip_addr {
        cfg.sip_addr = a;
        cfg.media_addr = Some(a.ip());
    }
    if let Some(a) = cli.http_addr {
        cfg.http_addr = a;
    }
    if let Some(r) = cli.rtp_ports {
        cfg.rtp_ports = r;
    }
    or_exit(cfg.validate(), String::new(), 2)?;
    Ok(cfg)
}

/// The tools besides the daemon.
fn run_command(cfg: Config, command: Command) -> ExitCode {
    match command {
        Command::Call {
            uri,
            digits,
            record,
            gap_ms,
            max_seconds,
            barge_in_ms,
            say,
            inband,
            from,
            hang_up_after_ms,
        } => caller::run(caller::CallArgs {
            uri,
            digits,
            record,
            gap: std::time::Duration::from_millis(gap_ms),
            barge_in: barge_in_ms.map(std::time::Duration::from_millis),
            max: std::time::Duration::from_secs(max_seconds),
            hang_up_after: hang_up_after_ms.map(std::time::Duration::from_millis),
            say,
            inband,
            from,
        }),
        Command::Report {
            from,
            to,
            queue,
            format,
            by,
            output,
        } => {
            let args = report::ReportArgs {
                from,
                to,
                queue,
                format,
                by,
            };
            report_command(&cfg, &args, output.as_deref())
        }
        Command::Notify { file, flow, api } => notify_command(&cfg, &file, flow.as_deref(), api),
        Command::Agent { command } => agentcmd::run(&cfg, command),
        Command::Supervisor { command } => supervisorcmd::run(&cfg, command),
        Command::Flow { command } => match command {
            FlowCommand::Check { path } => flowcmd::check(&cfg, &path),
            FlowCommand::Simulate {
                file,
                lang,
                digits,
                lookup_fixture,
                at,
            } => flowcmd::simulate(
                &cfg,
                flowcmd::SimulateArgs {
                    file,
                    lang,
                    digits,
                    lookup_fixture,
                    at,
                },
            ),
            FlowCommand::Graph { file, format } => flowcmd::graph(&cfg, &file, &format),
            FlowCommand::Schema => {
                print!("{}", nida_ivr::schema());
                ExitCode::SUCCESS
            }
        },
    }
}

/// `nida notify`: the file's notifications to the daemon, with the admin
/// token of the configuration or of the data folder.
fn notify_command(
    cfg: &Config,
    file: &std::path::Path,
    flow: Option<&str>,
    api: Option<String>,
) -> ExitCode {
    let token = cfg.admin_token.clone().or_else(|| {
        std::fs::read_to_string(cfg.data_dir.join("admin-token"))
            .ok()
            .map(|t| t.trim().to_string())
    });
    let Some(token) = token else {
        eprintln!(
            "nida notify: no admin token (admin_token in the configuration, or {})",
            cfg.data_dir.join("admin-token").display()
        );
        return ExitCode::from(2);
    };
    let api = api.unwrap_or_else(|| format!("http://{}", cfg.http_addr));
    let sent =
        cli::notifycmd::read(file, flow).and_then(|list| cli::notifycmd::send(&api, &token, &list));
    match sent {
        Ok(ids) => {
            for id in &ids {
                println!("{id}");
            }
            eprintln!("nida notify: {} notifications taken", ids.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nida notify: {e}");
            ExitCode::from(2)
        }
    }
}

/// `nida report`, to standard output or a file.
fn report_command(
    cfg: &Config,
    args: &report::ReportArgs,
    output: Option<&std::path::Path>,
) -> ExitCode {
    let names = cfg.agents.iter().map(|a| (a.id, a.name.clone())).collect();
    let text = match report::run(&cfg.data_dir, &names, args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nida report: {e}");
            return ExitCode::from(2);
        }
    };
    let written = match output {
        Some(p) => std::fs::write(p, text),
        None => std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nida report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the daemon reads before it starts: the flows (nida refuses to
/// start on invalid ones, saying why), the lookup backends and the prompts.
fn load(
    cfg: &Config,
) -> Result<(nida_ivr::FlowSet, lookup::Backends, nida_media::PromptStore), ExitCode> {
    let flows = match flowcmd::load(&cfg.flows_dir, &cfg.prompts_dir, &cfg.calendar_names()) {
        Ok(f) => f,
        Err(report) => {
            eprint!("{report}");
            eprintln!(
                "nida: the flows in {} are invalid: not starting",
                cfg.flows_dir.display()
            );
            return Err(ExitCode::from(2));
        }
    };
    for (number, flow) in cfg
        .dial_plan
        .iter()
        .map(|(n, f)| (n.as_str(), f))
        .chain(cfg.default_flow.iter().map(|f| ("default", f)))
    {
        if flows.get(flow).is_none() {
            eprintln!(
                "nida: dial plan: {number} goes to flow `{flow}`, which is not in {}",
                cfg.flows_dir.display()
            );
            return Err(ExitCode::from(2));
        }
    }
    let backends = or_exit(lookup::load(&cfg.lookups), String::new(), 2)?;
    let prompts = or_exit(
        nida_media::PromptStore::load_dir(&cfg.prompts_dir),
        String::new(),
        2,
    )?;
    Ok((flows, backends, prompts))
}

/// The SIP listeners (UDP, TCP, TLS when configured) and the HTTP one,
/// bound; the HTTP client set up with the TLS trust roots.
/// The HTTPS listener and its TLS side, when one is configured.
type Https = Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor)>;

async fn bind(
    cfg: &Config,
) -> Result<(driver::Listeners, tokio::net::TcpListener, Https), ExitCode> {
    let sip = cfg.sip_addr;
    let udp = tokio::net::UdpSocket::bind(sip).await;
    let udp = or_exit(udp, format!("cannot listen on SIP UDP {sip}: "), 2)?;
    let tcp = tokio::net::TcpListener::bind(sip).await;
    let tcp = or_exit(tcp, format!("cannot listen on SIP TCP {sip}: "), 2)?;
    let ca = cfg.tls.as_ref().and_then(|t| t.ca.as_deref());
    or_exit(httpc::init(ca), String::new(), 2)?;
    let tls = match (&cfg.tls, cfg.tls_addr()) {
        (Some(t), Some(addr)) => {
            let sides = tls::acceptor(t).and_then(|a| Ok((a, tls::connector(t)?)));
            let (acceptor, connector) = or_exit(sides, "TLS: ".into(), 2)?;
            let l = tokio::net::TcpListener::bind(addr).await;
            let l = or_exit(l, format!("cannot listen on SIP TLS {addr}: "), 2)?;
            Some((l, acceptor, connector))
        }
        _ => None,
    };
    let http = tokio::net::TcpListener::bind(cfg.http_addr).await;
    let http = or_exit(
        http,
        format!("cannot listen on HTTP {}: ", cfg.http_addr),
        2,
    )?;
    let https = match cfg.tls.as_ref().and_then(|t| t.https_addr.map(|a| (t, a))) {
        Some((t, addr)) => {
            let acceptor = or_exit(tls::acceptor(t), "TLS: ".into(), 2)?;
            let l = tokio::net::TcpListener::bind(addr).await;
            let l = or_exit(l, format!("cannot listen on HTTPS {addr}: "), 2)?;
            Some((l, acceptor))
        }
        None => None,
    };
    Ok((driver::Listeners { udp, tcp, tls }, http, https))
}

async fn serve(
    cfg: Config,
    prompts: nida_media::PromptStore,
    flows: nida_ivr::FlowSet,
    backends: lookup::Backends,
) -> ExitCode {
    // Signals are caught from before nida says it listens.
    let mut signals = match or_exit(Signals::new(), "cannot catch signals: ".into(), 1) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (listeners, http, https) = match bind(&cfg).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    // The store is open and its agents known before nida says it listens.
    // Opening, migrating and reading the database block: off the workers.
    let store = tokio::task::block_in_place(|| db::StoreHandle::start(&cfg.data_dir));
    let store = match or_exit(store, String::new(), 2) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut cfg = cfg;
    let added = tokio::task::block_in_place(|| add_stored_agents(&mut cfg, &store));
    if let Err(code) = or_exit(added, String::new(), 2) {
        return code;
    }
    println!(
        "nida {} listening: SIP udp+tcp {}{}, RTP {}:{}-{}, HTTP http://{}/wallboard; {} prompts from {}; {} flows",
        env!("CARGO_PKG_VERSION"),
        cfg.sip_addr,
        cfg.tls_addr()
            .map(|a| format!(", tls {a}"))
            .unwrap_or_default(),
        cfg.media_ip(),
        cfg.rtp_ports.first,
        cfg.rtp_ports.last,
        cfg.http_addr,
        prompts.len(),
        cfg.prompts_dir.display(),
        flows.flows.len()
    );
    let token = match or_exit(admin_token(&cfg), String::new(), 2) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let counters = Arc::new(base::bus::Counters::default());
    let cfg = Arc::new(cfg);
    let centre = centre::start(&cfg, flows.queue_skills());
    // The queues the centre runs: a reload may not name others.
    let queues: Arc<std::collections::BTreeSet<String>> =
        Arc::new(centre.queues.keys().cloned().collect());
    let (flows_tx, flows_rx) = tokio::sync::watch::channel(Arc::new(flows));
    let flows_tx = Arc::new(flows_tx);
    let reload_now: api::Reload = {
        let (cfg, tx) = (cfg.clone(), flows_tx.clone());
        let queues = queues.clone();
        Arc::new(move || reload::reload(&cfg, &queues, &tx, "admin API"))
    };
    let driver_queue = driver::channel();
    let notifier = call::notifier::start(
        &cfg,
        store.clone(),
        driver_queue.0.clone(),
        centre.calendars.clone(),
    );
    let notify = ops::notices::Notify {
        handle: notifier,
        flows: flows_rx.clone(),
        outbound: cfg.outbound.clone(),
        trunk: cfg.outbound_trunk.clone().unwrap_or_default(),
        routed: cfg.outbound_trunk.is_some() || cfg.outbound_uri.is_some(),
    };
    tokio::spawn(api::serve(
        http,
        api::Api::new(
            counters.clone(),
            centre.clone(),
            store.clone(),
            cfg.data_dir.clone(),
            token,
            cfg.agents.clone(),
            reload_now,
            &cfg.realm,
            driver_queue.0.clone(),
        )
        .with_notifications(notify)
        .with_sip_websocket(ops::sipws::WsLimits {
            max_message: cfg.protection.max_message,
            idle: cfg.protection.tcp_idle,
        }),
        cfg.protection.guard(),
        https,
    ));
    webhooks::start(&cfg.webhooks, &centre, &store);
    tokio::spawn(reload::watch(cfg.clone(), queues, flows_tx));
    tokio::spawn(retention::run(
        cfg.data_dir.clone(),
        cfg.recording_retention_days,
    ));
    let threads = match cfg.media_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let engine = match call::engine::Engine::start(threads, tokio::runtime::Handle::current()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("nida: cannot start the media threads: {e}");
            return ExitCode::from(1);
        }
    };
    let shared = driver::Shared {
        prompts: Arc::new(prompts),
        flows: flows_rx,
        backends: Arc::new(backends),
        centre,
        store,
        engine,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal received: stopping");
        let _ = stop_tx.send(true);
        // A second signal stops at once.
        signals.next().await;
        tracing::warn!("second signal: stopping now");
        std::process::exit(1);
    });
    tokio::spawn(base::memory::trim_after_bursts(counters.clone()));
    let store = shared.store.clone();
    driver::run(cfg, shared, listeners, counters, driver_queue, stop_rx).await;
    store.flush().await;
    ExitCode::SUCCESS
}

/// Agents kept in the store join those of the configuration (the
/// configuration wins for an id or user both have).
fn add_stored_agents(
    cfg: &mut Config,
    store: &db::StoreHandle,
) -> Result<(), nida_store::StoreError> {
    let mut st = store.reader()?;
    for mut a in st.agents()? {
        if cfg.agents.iter().any(|c| c.id == a.id || c.user == a.user) {
            continue;
        }
        if a.ha1.is_none() && !a.password.is_empty() {
            // Kept in clear by an older nida: the store keeps HA1s now.
            a.ha1 = Some(agentcmd::hashed(&a.user, &cfg.realm, &a.password));
            a.password.clear();
            st.put_agent(&a)?;
            tracing::info!(agent = a.id, "stored password replaced by its HA1s");
        }
        let Some(ha1) = a.ha1.filter(|h| h.realm == cfg.realm) else {
            tracing::warn!(agent = a.id, realm = %cfg.realm, "stored agent's password was set for another realm: set it again with nida agent add");
            continue;
        };
        cfg.agents.push(config::AgentDef {
            id: a.id,
            user: a.user,
            password: String::new(),
            ha1: Some((ha1.md5, ha1.sha256)),
            name: a.name,
            skills: a.skills,
            languages: a.languages,
            contact: a.contact,
            ready_on_register: a.ready_on_register,
        });
    }
    for s in st.supervisors()? {
        let taken = cfg.supervisors.iter().any(|c| c.user == s.user)
            || cfg.agents.iter().any(|a| a.user == s.user);
        if taken {
            continue;
        }
        if s.ha1.realm != cfg.realm {
            tracing::warn!(user = %s.user, realm = %cfg.realm, "stored supervisor's password was set for another realm: set it again with nida supervisor add");
            continue;
        }
        cfg.supervisors.push(config::SupervisorDef {
            user: s.user,
            password: String::new(),
            ha1: Some((s.ha1.md5, s.ha1.sha256)),
            name: s.name,
            contact: s.contact,
            queues: s.queues,
            agents: s.agents,
        });
    }
    Ok(())
}

/// The admin token: the configured one, or a random one written (owner
/// only) to `data_dir/admin-token` for the supervisor to read.
fn admin_token(cfg: &Config) -> Result<String, cli::CliError> {
    if let Some(t) = &cfg.admin_token {
        return Ok(t.clone());
    }
    let path = cfg.data_dir.join("admin-token");
    let token = nida_sip::rng::os_token();
    use std::os::unix::fs::OpenOptionsExt;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| {
            // `mode` applies to a new file only: one left by an earlier
            // run (or made by hand) is made owner-only too.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())
        });
    match written {
        Ok(()) => {
            println!("admin token written to {}", path.display());
            Ok(token)
        }
        Err(e) => Err(cli::CliError::io(format!(
            "cannot write the admin token to {}",
            path.display()
        ))(e)),
    }
}

/// SIGTERM and SIGINT, caught.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
