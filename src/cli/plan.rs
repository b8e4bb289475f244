//! `dynrule plan`: a what-if of the group changes in a Terraform plan or an ARM template.

use dynrule::plan;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PlanArgs {
    /// The tenant snapshot folder, or `sample` (the default) for the built-in sample tenant.
    #[arg(long, default_value = "sample")]
    tenant: String,
    /// The plan: `terraform show -json tfplan > plan.json`, or the ARM JSON of `bicep build`;
    /// `-` reads stdin.
    plan: PathBuf,
    #[command(flatten)]
    run: super::whatif::RunArgs,
}

pub fn plan(args: PlanArgs) -> ExitCode {
    let text = match super::read_text(&args.plan) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let parsed = match plan::read(&text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", args.plan.display());
            return ExitCode::from(2);
        }
    };
    let tenant = match super::recompute::tenant_or_sample(
        &args.tenant,
        &args.run.snapshot.options(parsed.rules()),
    ) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let (changes, notes) = match parsed.changes(&tenant) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", args.plan.display());
            return ExitCode::from(2);
        }
    };
    if changes.is_empty() {
        eprintln!(
            "{}: no group changes that move memberships or licences",
            args.plan.display()
        );
    }
    let title = format!("dynrule plan: {}", args.plan.display());
    super::whatif::run(&tenant, &changes, &args.run, notes, &title)
}
