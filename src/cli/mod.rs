//! The `sda` command line, one file per command, sharing the argument groups and helpers of
//! `args`. [`run`] is public so a downstream binary that links its own plugins (registered
//! with `inventory`) gets the same commands, with its plugins available by name.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::Result;

mod args;
pub mod assimilate;
pub mod baseline;
pub mod compare;
pub mod evaluate;
pub mod generate;
mod list;
pub mod oracle;
pub mod plot;
pub mod quickstart;
pub mod resimulate;
pub mod train;

pub use list::list_text;

/// Score-based data assimilation.
#[derive(Parser, Debug)]
#[command(name = "sda", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every registered plugin (systems, observations, blankets, guidance, samplers,
    /// schedules).
    List,
    /// The whole method at small scale, in two parts: (1) the exact-oracle check — SDA, DPS
    /// and the exact-ε sampler against the Kalman smoother on the linear-Gaussian system;
    /// (2) Lorenz-63 end to end — small dataset, brief k = 2 training, one "lo" observation
    /// assimilated by SDA and compared with two particle filters, a PNG of the trajectories.
    Quickstart(quickstart::QuickstartArgs),
    /// Assimilate one observation of a test trajectory with a trained local score: samples
    /// (`samples.npy`, physical units), the truth and y, a summary JSON and a PNG of the
    /// trajectories with the observations and the truth.
    Assimilate(assimilate::AssimilateArgs),
    /// The paper's Figure-4 view of Kolmogorov assimilations of one observation (e.g. SDA and
    /// DPS): rows of vorticity for the truth, the observation (when it is images) and the first
    /// sample of each `sda assimilate` folder, plus their residual std beside σ_y.
    Compare(compare::CompareArgs),
    /// The paper's Figure-5 physical check of Kolmogorov samples: re-simulate each sample's first
    /// state with the solver and compare with the sample and with persistence.
    Resimulate(resimulate::ResimulateArgs),
    /// The paper's Figure-2 evaluation of one trained state-vector local score (Lorenz-63 or
    /// any registered system): for test observations by any registered observation that
    /// factorises over states, SDA with each C (and any registered sampler) against two
    /// particle filters of the dataset's system; medians of W1(SDA, BPF)/W1(BPF′, BPF),
    /// E[log p(y|x)] and E[log p(x_2:L|x_1)] as a table. Resumable: rows are saved per
    /// observation in `--out`; `--shard i/n` computes every n-th observation.
    Evaluate(evaluate::EvaluateArgs),
    /// Join the folders of `sda evaluate --shard 0/n … n−1/n` into the folder one unsharded
    /// evaluation writes (settings.json, rows.jsonl, table.md).
    Merge(evaluate::MergeArgs),
    /// Generate a trajectory dataset (train/valid/test `.npy` + `manifest.json`). Resumable:
    /// rerun the same command after an interruption.
    Generate(generate::GenerateArgs),
    /// Render the vorticity of a Kolmogorov trajectory (`[N, T, 2, n, n]` .npy) as a PNG strip.
    Plot(plot::PlotArgs),
    /// Train a local score (Algorithm 1) on a dataset; checkpoints every `checkpoint_every`
    /// steps, `--resume` continues a killed run.
    Train(train::TrainArgs),
    /// One oracle run with every component chosen by registered name.
    Oracle(oracle::OracleArgs),
    /// A classical data-assimilation method (EnKF, ETKF, DEnKF, 3D-Var, climatology, …) on a
    /// named, published twin experiment (`--setup sakov2008`): analysis RMSE, spread, CRPS and
    /// coverage averaged after the burn-in, as one table row or `--json`.
    Baseline(baseline::BaselineArgs),
}

impl Command {
    /// Whether the command may build tensors on the backend: all but those that read, write
    /// and plot host data only, which also run where the backend cannot (a new command is
    /// checked unless it is added here).
    fn computes_on_tensors(&self) -> bool {
        !matches!(
            self,
            Command::List
                | Command::Merge(_)
                | Command::Generate(_)
                | Command::Plot(_)
                | Command::Resimulate(_)
                | Command::Compare(_)
                | Command::Baseline(_)
        )
    }
}

/// The command line: every flag that takes a value accepts a negative number as that value
/// (`--lr -1` reaches the command, which names the bad learning rate, instead of being read as
/// an unknown flag `-1`).
pub fn command() -> clap::Command {
    let mut cli = Cli::command();
    for sub in cli.get_subcommands_mut() {
        *sub = std::mem::take(sub).mut_args(|a| {
            if a.get_action().takes_values() {
                a.allow_negative_numbers(true)
            } else {
                a
            }
        });
    }
    cli
}

/// Parses `args` (including the program name) and runs the command.
pub fn run<I, T>(args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = command()
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if cli.command.computes_on_tensors() {
        crate::backend::check_backend()?;
    }
    match cli.command {
        Command::List => {
            print!("{}", list_text()?);
            Ok(())
        }
        Command::Quickstart(a) => a.run(),
        Command::Assimilate(a) => a.run(),
        Command::Compare(a) => a.run(),
        Command::Resimulate(a) => a.run(),
        Command::Evaluate(a) => a.run(),
        Command::Merge(a) => a.run(),
        Command::Generate(a) => a.run(),
        Command::Plot(a) => a.run(),
        Command::Train(a) => a.run(),
        Command::Oracle(a) => a.run(),
        Command::Baseline(a) => a.run(),
    }
}
