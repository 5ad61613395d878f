//! `sda quickstart`: the whole method at small scale: the exact oracle, then Lorenz-63 end to end.

use crate::experiments::oracle;
use crate::Result;

/// The whole method at small scale, in two parts: (1) the exact-oracle check — SDA, DPS
/// and the exact-ε sampler against the Kalman smoother on the linear-Gaussian system;
/// (2) Lorenz-63 end to end — small dataset, brief k = 2 training, one "lo" observation
/// assimilated by SDA and compared with two particle filters, a PNG of the trajectories.
#[derive(clap::Args, Debug)]
pub struct QuickstartArgs {
    /// Which part to run: `all`, `oracle` or `lorenz`.
    #[arg(long, default_value = "all")]
    part: String,
    /// Oracle: posterior samples per method.
    #[arg(long, default_value_t = 1024)]
    samples: usize,
    /// Oracle: reverse-diffusion steps.
    #[arg(long, default_value_t = 256)]
    steps: usize,
    /// Oracle: seed of the problem and of the samplers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Oracle: comma-separated numbers of Langevin corrections C.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0usize, 1, 2, 8])]
    corrections: Vec<usize>,
    /// Lorenz: training steps of the k = 2 model.
    #[arg(long, default_value_t = 4000)]
    train_steps: usize,
    /// Lorenz: SDA samples (and particle-filter trajectories).
    #[arg(long, default_value_t = 128)]
    lorenz_samples: usize,
    /// Lorenz: reverse-diffusion steps.
    #[arg(long, default_value_t = 128)]
    lorenz_steps: usize,
    /// Lorenz: particles per filter.
    #[arg(long, default_value_t = 1 << 14)]
    particles: usize,
    /// Lorenz: test observations assimilated with the shipped k = 3 preset and its calibrated
    /// sampler (0 skips it). Five: a median over three is one observation's figure, and seven
    /// would take the whole quickstart to about 4 of its 5 minutes on 2 cores.
    #[arg(long, default_value_t = 5)]
    preset_observations: usize,
    /// Lorenz: SDA samples of the preset (64, the Lorenz chapter's protocol).
    #[arg(long, default_value_t = 64)]
    preset_samples: usize,
    /// Output folder (figures, Lorenz data and checkpoint; reused when rerun).
    #[arg(long, default_value = "runs/quickstart")]
    out: String,
}

impl QuickstartArgs {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self {
            part,
            samples,
            steps,
            seed,
            corrections,
            train_steps,
            lorenz_samples,
            lorenz_steps,
            particles,
            preset_observations,
            preset_samples,
            out,
        } = self;
        let (oracle_part, lorenz_part) = match part.as_str() {
            "all" => (true, true),
            "oracle" => (true, false),
            "lorenz" => (false, true),
            other => {
                return Err(crate::Error::Invalid(format!(
                    "--part must be all, oracle or lorenz, got '{other}'"
                )))
            }
        };
        // every count is checked before either part starts, so a typo in a Lorenz flag
        // does not surface only after the oracle part and a training have run
        let counts = [
            ("--samples", samples, 1, oracle_part),
            ("--steps", steps, 1, oracle_part),
            ("--train-steps", train_steps, 1, lorenz_part),
            ("--lorenz-samples", lorenz_samples, 1, lorenz_part),
            ("--lorenz-steps", lorenz_steps, 1, lorenz_part),
            ("--particles", particles, 2, lorenz_part),
            ("--preset-samples", preset_samples, 1, lorenz_part),
        ];
        if let Some((flag, value, least, _)) = counts
            .iter()
            .find(|(_, value, least, used)| *used && value < least)
        {
            return Err(crate::Error::Invalid(format!(
                "{flag} must be ≥ {least}, got {value}"
            )));
        }
        if oracle_part {
            quickstart_oracle(samples, steps, seed, &corrections, &out)?;
        }
        if lorenz_part {
            quickstart_lorenz(train_steps, lorenz_samples, lorenz_steps, particles, &out)?;
            quickstart_preset(preset_observations, preset_samples, particles, &out)?;
        }
        Ok(())
    }
}

fn quickstart_oracle(
    samples: usize,
    steps: usize,
    seed: u64,
    corrections: &[usize],
    out: &str,
) -> Result<()> {
    println!(
        "## Part 1: exact oracle\nLinear-Gaussian D=2, F=0.95 R(0.3), Q=0.1 I, L=16; component 0 \
         observed at states 0,5,10,15 (sigma_y=0.1); {samples} samples, {steps} steps, tau=0.25\n"
    );
    let q = oracle::quickstart(samples, steps, seed, corrections, true)?;
    println!("{}", q.table());
    println!(
        "Reference: Kalman-RTS smoother. Pass: max |Δmean|/std ≤ 0.15 and variance \
         ratios in [0.85, 1.15] for the exact ε with C = 0."
    );
    let path = std::path::Path::new(out).join("oracle.png");
    match q.figure(&path) {
        Ok(()) => println!("Figure: {}\n", path.display()),
        Err(e) => eprintln!("no figure: {e}"),
    }
    Ok(())
}

fn quickstart_lorenz(
    train_steps: usize,
    samples: usize,
    steps: usize,
    particles: usize,
    out: &str,
) -> Result<()> {
    println!(
        "## Part 2: Lorenz-63 end to end\nSmall dataset (64 trajectories × 256 states), k = 2 \
         ResMLP trained {train_steps} steps, test trajectory 0 observed 'lo' (ã every 8th of 65 \
         states, σ_y = 0.05); SDA γ = 0.03, C = 1, {samples} samples, {steps} steps; two \
         particle filters of {particles} particles\n"
    );
    let start = std::time::Instant::now();
    let r =
        crate::experiments::lorenz::quickstart(&crate::experiments::lorenz::QuickstartSettings {
            out: std::path::Path::new(out).join("lorenz"),
            train_steps,
            samples,
            steps,
            corrections: 1,
            particles,
            progress: true,
        })?;
    println!(
        "training: {} steps, mean loss of the last 100 steps {:.4}, {:.0} s",
        r.training.0, r.training.1, r.training.2
    );
    println!(
        "{}",
        crate::experiments::evaluate::markdown_table("lo, test trajectory 0", &r.rows)
    );
    println!(
        "Figure: {}\nLorenz part: {:.0} s",
        r.figure.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn quickstart_preset(
    observations: usize,
    samples: usize,
    particles: usize,
    out: &str,
) -> Result<()> {
    if observations == 0 {
        return Ok(());
    }
    use crate::sampler::Sampler;
    type B = crate::backend::DefaultBackend;
    let sampler = crate::experiments::lorenz::preset_sampler();
    let steps = crate::experiments::lorenz::PRESET_STEPS;
    println!(
        "\n## Part 3: the shipped k = 3 preset\nk = 3 ResMLP (width 256, 90 000 training steps, \
         assets/lorenz63-k3), 'lo' observations of test trajectories 0–{}; SDA γ = 0.03 sampled \
         by {} in {} steps ({} ε evaluations per sample) over windows of 7 states every {}; \
         {samples} samples; two particle filters of {particles} particles\n",
        observations - 1,
        Sampler::<B>::describe(&sampler),
        steps,
        steps * Sampler::<B>::evaluations_per_step(&sampler),
        crate::experiments::lorenz::PRESET_STRIDE,
    );
    let start = std::time::Instant::now();
    let lorenz = std::path::Path::new(out).join("lorenz");
    let rows = crate::experiments::lorenz::quickstart_preset(
        &lorenz.join("data"),
        &lorenz,
        observations,
        samples,
        particles,
        true,
    )?;
    println!(
        "{}",
        crate::experiments::evaluate::markdown_table("lo, shipped k = 3 preset", &rows)
    );
    // the median hides how much the observations differ: show each one's ratio
    let ratios: Vec<String> = rows
        .iter()
        .filter(|row| row.sampler.is_some())
        .map(|row| format!("{}: {:.2}", row.observation, row.stats.w1_ratio))
        .collect();
    println!("SDA's W1 ratio per test observation: {}", ratios.join(", "));
    println!("Preset part: {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}
