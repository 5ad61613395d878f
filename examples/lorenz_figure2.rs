//! The paper's Figure 2 for trained Lorenz-63 local scores: for each training folder (one per
//! k), `sda evaluate`'s statistics — per C the median over test observations of
//! W1(SDA, BPF) / W1(BPF′, BPF), E[log p(y | x)] and E[log p(x_{2:L} | x_1)] beside the
//! particle filter's — as one markdown table (k × C) and a PNG with one curve per k.
//! Each folder's rows are saved under `OUT/<run name>-<scenario>/` (resumable).
//!
//! ```text
//! cargo run --release --example lorenz_figure2 -- --out OUT --data DATA_DIR --observation lo|hi \
//!     --runs RUN_DIR[,RUN_DIR…] [--observations 16] [--samples 128] [--steps 256] \
//!     [--corrections 0,1,2,4] [--particles 16384] [--seed 0]
//! ```

use std::path::{Path, PathBuf};

use clap::Parser;
use sda::backend::{default_device, DefaultBackend};
use sda::experiments::evaluate::{self, EvaluateSettings, Scenario, SdaMethods, Selection};
use sda::experiments::lorenz;
use sda::experiments::markdown::row;
use sda::observe::ops::Pick;
use sda::plot::{figure2_png, Figure2Series};
use sda::systems::lorenz63::Lorenz63;
use sda::TrajectoryShape;

type B = DefaultBackend;

/// The paper's Figure 2 (Lorenz-63) for one or more trained local scores.
#[derive(Parser, Debug)]
struct Args {
    /// Output folder: figure2-<scenario>.md and .png, one folder of rows per run.
    #[arg(long)]
    out: PathBuf,
    /// Lorenz-63 dataset folder (its test split is observed).
    #[arg(long, default_value = "data/lorenz63")]
    data: PathBuf,
    /// The paper's observation scenario.
    #[arg(long, value_parser = ["lo", "hi"])]
    observation: String,
    /// Comma-separated training folders, one curve each.
    #[arg(long, value_delimiter = ',', required = true)]
    runs: Vec<PathBuf>,
    /// Test observations (trajectories 0, 1, …).
    #[arg(long, default_value_t = 16)]
    observations: usize,
    /// SDA samples and particle-filter trajectories per observation.
    #[arg(long, default_value_t = 128)]
    samples: usize,
    /// Reverse-diffusion steps.
    #[arg(long, default_value_t = 256)]
    steps: usize,
    /// Corrections C of the predictor–corrector sampler, one point each.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,4")]
    corrections: Vec<usize>,
    /// Particles per filter.
    #[arg(long, default_value_t = 1 << 14)]
    particles: usize,
    /// Base seed of the observations, filters and samplers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = figure2(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn figure2(args: Args) -> sda::Result<()> {
    let Args {
        out,
        data,
        observation: scenario,
        runs,
        observations,
        corrections,
        ..
    } = &args;
    let (observations, scenario) = (*observations, scenario.as_str());
    let preset = lorenz::preset(scenario)
        .ok_or_else(|| sda::Error::Invalid(format!("unknown scenario '{scenario}' (lo or hi)")))?;
    let observation = Pick::from_config(TrajectoryShape::new(lorenz::EVAL_LEN, 3), preset)?;
    let mut settings = EvaluateSettings {
        len: lorenz::EVAL_LEN,
        samples: args.samples,
        steps: args.steps,
        grid: Default::default(),
        particles: args.particles,
        filter_burn_in: evaluate::FILTER_BURN_IN,
        progress: true,
        prior: String::new(),
        seed: args.seed,
        spin_up: 0,
        save_samples: false,
    };
    let guidance = sda::guidance::SdaGaussian::new(lorenz::GAMMA)?;
    let methods = SdaMethods::predictor_corrector(&guidance, corrections, lorenz::TAU)?;
    sda::backend::check_backend()?;
    let device = default_device();
    let selection = Selection::range(0, observations);
    let system = Lorenz63::default();
    let problem = Scenario {
        system: &system,
        observation: &observation,
        name: format!("{scenario}, lorenz63"),
    };
    let mut table = row(&[
        &format!(
            "{scenario}: {observations} observations, {} samples, {} steps (medians)",
            settings.samples, settings.steps
        ),
        "C",
        "W1(·, BPF) / W1(BPF′, BPF)",
        "E[log p(y|x)]",
        "E[log p(x_2:L|x_1)]",
    ]);
    table.push_str("|---|---:|---:|---:|---:|\n");
    let mut series: Vec<Figure2Series> = Vec::new();
    let mut bpf = (0.0, 0.0);
    let mut notes = String::new();
    for run in runs {
        let prior = lorenz::load_prior::<B>(run, &device)?;
        settings.prior = sda::checkpoint::Checkpoint::read(run)?.fingerprint()?;
        let k = prior.k();
        let name = run
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("k{k}"));
        let dir = out.join(format!("{name}-{scenario}"));
        let rows = evaluate::evaluate(
            &problem, &prior, &methods, data, &selection, &settings, &dir, &device,
        )?
        .rows;
        let mut points = Vec::new();
        // the SDA medians come in the order of the samplers, one per C
        let mut cs = corrections.iter();
        for m in evaluate::medians(&rows) {
            let st = m.medians;
            match m.sampler.and_then(|_| cs.next()) {
                None => {
                    bpf = (st.log_likelihood, st.log_prior);
                    table.push_str(&row(&[
                        format!("BPF′ ({} particles)", settings.particles),
                        "–".into(),
                        "1".into(),
                        format!("{:.2}", st.log_likelihood),
                        format!("{:.1}", st.log_prior),
                    ]));
                }
                Some(&c) => {
                    points.push((c, st.w1_ratio, st.log_likelihood, st.log_prior));
                    table.push_str(&row(&[
                        format!("SDA k = {k} ({name})"),
                        c.to_string(),
                        format!("{:.2}", st.w1_ratio),
                        format!("{:.2}", st.log_likelihood),
                        format!("{:.1}", st.log_prior),
                    ]));
                }
            }
        }
        series.push((format!("k = {k} ({name})"), points));
        let diverged = rows.iter().filter(|r| r.diverged).count();
        if diverged > 0 {
            notes.push_str(&format!(
                "\n**Diverged**: {diverged} of {} runs of {name} (largest |x| over {}× the \
                 reference filter's; see {}).\n",
                rows.len(),
                sda::metrics::DIVERGENCE_FACTOR,
                dir.join("rows.jsonl").display()
            ));
        }
    }
    table.push_str(&notes);
    println!("{table}");
    std::fs::create_dir_all(out).map_err(|source| sda::Error::Io {
        path: out.clone(),
        source,
    })?;
    sda::data::write_atomic(
        &out.join(format!("figure2-{scenario}.md")),
        table.as_bytes(),
    )?;
    let png = out.join(format!("figure2-{scenario}.png"));
    figure2_png(
        Path::new(&png),
        &format!(
            "Lorenz-63 '{scenario}': medians over {observations} observations ({} samples, {} steps)",
            settings.samples, settings.steps
        ),
        &series,
        bpf,
    )?;
    println!("wrote {}", png.display());
    Ok(())
}
