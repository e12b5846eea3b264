//! The `nida` daemon: parses the command line, loads the configuration and
//! the prompts, binds the sockets, and starts the SIP driver and the status
//! endpoint on a tokio runtime.

mod call;
mod config;
mod driver;
mod redact;
mod status;

use clap::Parser;
use config::{Config, PortRange};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// nida: a SIP/RTP contact-centre daemon with IVR and automatic call distribution.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (defaults are embedded; options below override it).
    #[arg(long, value_name = "FILE")]
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
    let mut cfg = match &cli.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("nida: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(a) = cli.sip_addr {
        cfg.sip_addr = a;
        cfg.media_ip = a.ip();
    }
    if let Some(a) = cli.http_addr {
        cfg.http_addr = a;
    }
    if let Some(r) = cli.rtp_ports {
        cfg.rtp_ports = r;
    }
    let prompts = match nida_media::PromptStore::load_dir(&cfg.prompts_dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nida: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nida: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(cfg, prompts))
}

async fn serve(cfg: Config, prompts: nida_media::PromptStore) -> ExitCode {
    let udp = match tokio::net::UdpSocket::bind(cfg.sip_addr).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nida: cannot listen on SIP UDP {}: {e}", cfg.sip_addr);
            return ExitCode::from(2);
        }
    };
    let tcp = match tokio::net::TcpListener::bind(cfg.sip_addr).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nida: cannot listen on SIP TCP {}: {e}", cfg.sip_addr);
            return ExitCode::from(2);
        }
    };
    let http = match tokio::net::TcpListener::bind(cfg.http_addr).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nida: cannot listen on HTTP {}: {e}", cfg.http_addr);
            return ExitCode::from(2);
        }
    };
    let seed = cfg.seed.unwrap_or_else(os_seed);
    println!(
        "nida {} listening: SIP udp+tcp {}, RTP {}:{}-{}, HTTP http://{}/status; {} prompts from {}",
        env!("CARGO_PKG_VERSION"),
        cfg.sip_addr,
        cfg.media_ip,
        cfg.rtp_ports.first,
        cfg.rtp_ports.last,
        cfg.http_addr,
        prompts.len(),
        cfg.prompts_dir.display()
    );
    let counters = Arc::new(driver::Counters::default());
    tokio::spawn(status::serve(http, counters.clone()));
    let cfg = Arc::new(cfg);
    tokio::select! {
        _ = driver::run(cfg, Arc::new(prompts), udp, tcp, counters, seed) => ExitCode::SUCCESS,
        _ = shutdown_signal() => {
            tracing::info!("signal received: stopping");
            ExitCode::SUCCESS
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Seed from the OS for identifiers that must differ between runs.
fn os_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64 ^ std::process::id() as u64
}
