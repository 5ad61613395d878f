//! The paper's Figure 2 for trained Lorenz-63 local scores: for each training folder (one per
//! k), `sda evaluate`'s statistics — per C the median over test observations of
//! W1(SDA, BPF) / W1(BPF′, BPF), E[log p(y | x)] and E[log p(x_{2:L} | x_1)] beside the
//! particle filter's — as one markdown table (k × C) and a PNG with one curve per k.
//! Each folder's rows are saved under `OUT/<run name>-<scenario>/` (resumable).
//!
//! ```text
//! cargo run --release --example lorenz_figure2 -- OUT DATA_DIR lo|hi RUN_DIR[,RUN_DIR…]
//!     [observations=16] [samples=128] [steps=256] [C list=0,1,2,4] [particles=16384]
//! ```

use std::path::{Path, PathBuf};

use sda::backend::{default_device, DefaultBackend};
use sda::experiments::evaluate::{self, EvaluateSettings, Scenario, SdaMethods, Selection};
use sda::experiments::lorenz;
use sda::observe::ops::Pick;
use sda::plot::{figure2_png, Figure2Series};
use sda::systems::lorenz63::Lorenz63;
use sda::TrajectoryShape;

type B = DefaultBackend;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() -> sda::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!(
            "usage: lorenz_figure2 OUT DATA_DIR lo|hi RUN_DIR[,RUN_DIR…] [observations] \
             [samples] [steps] [C,..] [particles]"
        );
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[1]);
    let data = PathBuf::from(&args[2]);
    let scenario = args[3].as_str();
    let runs: Vec<PathBuf> = args[4].split(',').map(PathBuf::from).collect();
    let observations: usize = arg(&args, 5, 16);
    let preset = lorenz::preset(scenario)
        .ok_or_else(|| sda::Error::Invalid(format!("unknown scenario '{scenario}' (lo or hi)")))?;
    let observation = Pick::from_config(TrajectoryShape::new(lorenz::EVAL_LEN, 3), preset)?;
    let mut settings = EvaluateSettings {
        len: lorenz::EVAL_LEN,
        samples: arg(&args, 6, 128),
        steps: arg(&args, 7, 256),
        particles: arg(&args, 9, 1 << 14),
        filter_burn_in: evaluate::FILTER_BURN_IN,
        progress: true,
        prior: String::new(),
    };
    let corrections: Vec<usize> = args
        .get(8)
        .map(|s| s.split(',').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 1, 2, 4]);
    let guidance = sda::guidance::SdaGaussian::new(lorenz::GAMMA)?;
    let methods = SdaMethods::predictor_corrector(&guidance, &corrections, lorenz::TAU)?;
    sda::backend::check_backend()?;
    let device = default_device();
    let selection = Selection::range(0, observations);
    let system = Lorenz63::default();
    let problem = Scenario {
        system: &system,
        observation: &observation,
        name: format!("{scenario}, lorenz63"),
    };
    let mut table = format!(
        "| {scenario}: {observations} observations, {} samples, {} steps (medians) | C | W1(·, BPF) / W1(BPF′, BPF) | E[log p(y|x)] | E[log p(x_2:L|x_1)] |\n|---|---:|---:|---:|---:|\n",
        settings.samples, settings.steps
    );
    let mut series: Vec<Figure2Series> = Vec::new();
    let mut bpf = (0.0, 0.0);
    let mut notes = String::new();
    for run in &runs {
        let prior = lorenz::load_prior::<B>(run, &device)?;
        settings.prior = sda::checkpoint::Checkpoint::read(run)?.fingerprint()?;
        let k = prior.k();
        let name = run
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("k{k}"));
        let dir = out.join(format!("{name}-{scenario}"));
        let rows = evaluate::evaluate(
            &problem, &prior, &methods, &data, &selection, &settings, &dir, &device,
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
                    table.push_str(&format!(
                        "| BPF′ ({} particles) | – | 1 | {:.2} | {:.1} |\n",
                        settings.particles, st.log_likelihood, st.log_prior
                    ));
                }
                Some(&c) => {
                    points.push((c, st.w1_ratio, st.log_likelihood, st.log_prior));
                    table.push_str(&format!(
                        "| SDA k = {k} ({name}) | {c} | {:.2} | {:.2} | {:.1} |\n",
                        st.w1_ratio, st.log_likelihood, st.log_prior
                    ));
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
    std::fs::create_dir_all(&out).map_err(|source| sda::Error::Io {
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
