//! `finstream import`: a CSV or JSON Lines file of transactions into `transactions` (the mapping,
//! validation and producing live in `connectors::import`; this is the command line around them).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use connectors::import::{import, ImportOptions};
use connectors::EventProducer;

use crate::generate::TargetArgs;

#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The CSV or JSON Lines file; its columns are mapped by `[import]` in the configuration.
    pub file: PathBuf,
    /// Where rejected lines go (JSON Lines: line, reason, message, content). Default:
    /// `<file>.rejected.jsonl`.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The account of every line without an account column (overrides import.defaults).
    #[arg(long)]
    pub account_id: Option<String>,
    /// The user of every line without a user column (overrides import.defaults).
    #[arg(long)]
    pub user_id: Option<String>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let (cfg, target, registry) = args.target.resolve()?;
    let mut mapping = cfg.import.clone();
    if let Some(a) = &args.account_id {
        mapping.defaults.account_id = a.clone();
    }
    if let Some(u) = &args.user_id {
        mapping.defaults.user_id = u.clone();
    }
    let report_path = args.report.clone().unwrap_or_else(|| {
        let mut p = args.file.clone().into_os_string();
        p.push(".rejected.jsonl");
        PathBuf::from(p)
    });
    let opts = ImportOptions {
        path: args.file.clone(),
        report_path: report_path.clone(),
        topic: cfg.finance.topics.transactions.clone(),
        mapping,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
    };
    let mut producer = EventProducer::new(&target, registry).context("creating the producer")?;
    let s = import(&opts, &mut producer)?;
    println!(
        "{}: {} lines, {} imported into {}, {} rejected ({:.1} s)",
        args.file.display(),
        s.lines,
        s.imported,
        opts.topic,
        s.rejected,
        s.elapsed.as_secs_f64()
    );
    if s.rejected > 0 {
        for (reason, n) in &s.rejected_by_reason {
            println!("  {reason}: {n}");
        }
        println!("rejected lines: {}", report_path.display());
    }
    Ok(())
}
