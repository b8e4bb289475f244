//! `dynrule gen-tenant`: a deterministic synthetic tenant.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dynrule gen-tenant`.
#[derive(clap::Args)]
pub struct GenArgs {
    /// Number of users.
    #[arg(long)]
    users: usize,
    /// Seed: the same seed and count give the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file (`-` for stdout) for the users as JSON Lines.
    #[arg(
        long,
        required_unless_present = "snapshot",
        conflicts_with = "snapshot"
    )]
    out: Option<PathBuf>,
    /// Write a whole tenant snapshot folder instead (users.jsonl, groups.json with a few
    /// hundred groups, subscribedSkus.json, organization.json), for `recompute`.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// With --snapshot: top the groups up to this many dynamic groups, with rules drawn from
    /// the users' own values (Entra allows 15,000 dynamic groups per tenant).
    #[arg(long, requires = "snapshot", default_value_t = 0)]
    groups: usize,
}

pub fn gen_tenant(args: GenArgs) -> ExitCode {
    if let Some(dir) = &args.snapshot {
        return match dynrule::synth::write_snapshot_with(args.users, args.seed, args.groups, dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::from(2)
            }
        };
    }
    let Some(out) = &args.out else {
        return ExitCode::from(2);
    };
    let result = if out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::new(stdout.lock());
        dynrule::synth::write_tenant(args.users, args.seed, &mut w).and_then(|()| w.flush())
    } else {
        dynrule::output::write_file(out, |w| {
            dynrule::synth::write_tenant(args.users, args.seed, &mut { w })
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}
