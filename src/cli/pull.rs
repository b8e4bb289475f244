//! `dynrule pull`: a tenant snapshot from Microsoft Graph.

use dynrule::graph::{self, Client, ClientOptions, PullOptions, auth};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Arguments of `dynrule pull`.
#[derive(clap::Args)]
pub struct PullArgs {
    /// The snapshot folder to write (created if needed; an existing snapshot is replaced only
    /// when the pull is complete).
    #[arg(long)]
    out: PathBuf,
    /// Microsoft Graph's service root, without the version (national clouds:
    /// https://graph.microsoft.us, https://dod-graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn).
    #[arg(long, default_value = "https://graph.microsoft.com")]
    graph_url: String,
    /// The sign-in endpoint's root (national clouds: https://login.microsoftonline.us,
    /// https://login.chinacloudapi.cn).
    #[arg(long, default_value = "https://login.microsoftonline.com")]
    login_url: String,
    /// Pull devices even when no rule reads them.
    #[arg(long)]
    devices: bool,
    /// Another user property to select (repeat it); rules' properties are selected already.
    #[arg(long = "property", value_name = "NAME")]
    properties: Vec<String>,
    /// Refresh the snapshot in --out with the delta links its manifest.json keeps (users/delta,
    /// groups/delta with members, devices/delta) instead of pulling everything.
    #[arg(long)]
    delta: bool,
    /// Member listings in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Retries of one request after throttling (429) or a fault (503, 504, a broken connection).
    #[arg(long, default_value_t = 8)]
    retries: u32,
    /// The first wait in milliseconds when Graph gives no Retry-After (doubled each retry).
    #[arg(long, default_value_t = 1000)]
    backoff_ms: u64,
}

/// `dynrule pull`: exit 0 with a complete snapshot; 2 when signing in, a request or a write
/// fails (the previous snapshot is left as it was).
pub fn pull(args: PullArgs) -> ExitCode {
    let t0 = Instant::now();
    let client = match sign_in(
        &args.graph_url,
        &args.login_url,
        args.retries,
        args.backoff_ms,
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            b.set_style(style);
        }
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress = |what: &str, n: u64| {
        bar.set_message(format!(
            "{what}: {n} (requests {}, retries {})",
            client
                .stats
                .requests
                .load(std::sync::atomic::Ordering::Relaxed),
            client
                .stats
                .retries
                .load(std::sync::atomic::Ordering::Relaxed)
        ));
    };
    let opts = PullOptions {
        out: args.out.clone(),
        devices: args.devices,
        properties: args.properties.clone(),
        concurrency: args.concurrency,
        delta: args.delta,
    };
    let result = graph::pull(&client, &opts, &progress);
    bar.finish_and_clear();
    match result {
        Ok(m) => {
            let count = |k: &str| m.counts.get(k).copied().unwrap_or(0);
            for g in &m.rules_not_compiled {
                eprintln!(
                    "warning: the rule of {g} does not compile: what it reads may be missing from the users' $select (add it with --property)"
                );
            }
            for (what, c) in &m.changes {
                eprintln!(
                    "{what}: {} changed, {} removed{}",
                    c.changed,
                    c.removed,
                    if what == "groups" {
                        format!(
                            ", {} memberships added, {} removed",
                            c.members_added, c.members_removed
                        )
                    } else {
                        String::new()
                    }
                );
            }
            eprintln!(
                "pulled {} users, {} groups ({} memberships), {} subscribed SKUs{} from {} into {} in {:.1} s ({} pages, {} requests, {} retries)",
                count("users"),
                count("groups"),
                count("members"),
                count("subscribedSkus"),
                m.counts
                    .get("devices")
                    .map(|d| format!(", {d} devices"))
                    .unwrap_or_default(),
                m.tenant_name.as_deref().unwrap_or(&m.graph_url),
                args.out.display(),
                t0.elapsed().as_secs_f64(),
                m.pages,
                m.requests,
                m.retries
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("  (nothing of {} was replaced)", args.out.display());
            ExitCode::from(2)
        }
    }
}

/// A Graph client signed in with the environment's credentials (see `dynrule::graph::auth`);
/// errors are printed here.
pub(super) fn sign_in(
    graph_url: &str,
    login_url: &str,
    retries: u32,
    backoff_ms: u64,
) -> Result<Client, ExitCode> {
    let interactive = std::io::stderr().is_terminal() && std::io::stdin().is_terminal();
    let cred = auth::from_env(|k| std::env::var(k).ok(), interactive).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let agent = graph::client::agent();
    let token =
        auth::token(&cred, &agent, login_url, graph_url, |m| eprintln!("{m}")).map_err(|e| {
            eprintln!("error: signing in with {}: {e}", cred.describe());
            ExitCode::from(2)
        })?;
    Ok(Client::new(
        token,
        ClientOptions {
            graph_url: graph_url.to_string(),
            max_retries: retries,
            backoff: Duration::from_millis(backoff_ms),
            ..ClientOptions::default()
        },
    ))
}
