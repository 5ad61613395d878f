//! The ring-convolution local score composes over a space–time blanket exactly: on a ring of
//! 48 sites, its outputs on patches of P + 2r sites (r ≥ its receptive radius) folded by the
//! blanket equal the network applied to the whole ring, so a network trained on small rings
//! runs unchanged on large ones; with r one site short of the radius they differ.

mod common;

use std::sync::Arc;

use burn::tensor::Tensor;
use sda::backend::{from_host, to_host};
use sda::blanket::{SpaceTimeWindow, SpaceTimeWindowConfig};
use sda::prelude::*;
use sda::score::ring_conv::{RingConv, RingConvConfig, RingConvScore};

type B = DefaultBackend;

const SITES: usize = 48;
const LEN: usize = 7;

fn config(gated: bool) -> RingConvConfig {
    RingConvConfig {
        k: 1,
        sites: 16,
        channels: 8,
        blocks: 1,
        kernel: 3,
        embedding: 8,
        output: Default::default(),
        gated,
    }
}

fn largest_difference(r: usize, gated: bool) -> f64 {
    let device = default_device();
    let schedule: Arc<dyn NoiseSchedule> = Arc::new(VpCosine::default());
    let cfg = config(gated);
    let net = RingConv::<B>::new(&cfg, &device).unwrap();
    // burn initialises parameters lazily, per clone: one forward fixes them before cloning
    let _ = net.forward_at(Tensor::zeros([1, 3, SITES], &device), 0.5);
    let blanket = SpaceTimeWindow::new(SpaceTimeWindowConfig {
        k: 1,
        r,
        patch: 8,
        stride: 1,
    })
    .unwrap();
    let patches = Composed::new::<B>(
        RingConvScore::new(net.clone(), cfg, 8 + 2 * r, schedule.clone()).unwrap(),
        blanket,
    )
    .unwrap();
    let whole = Composed::new::<B>(
        RingConvScore::new(net, cfg, SITES, schedule).unwrap(),
        TemporalWindow::new(1).unwrap(),
    )
    .unwrap();
    let values: Vec<f64> = (0..2 * LEN * SITES)
        .map(|i| (i as f64 * 0.37).sin() * 2.0)
        .collect();
    let x = from_host::<B, 3>(&values, [2, LEN, SITES], &device);
    EpsilonModel::<B>::check_shape(&patches, LEN, SITES).unwrap();
    let a = to_host(EpsilonModel::<B>::epsilon(&patches, x.clone(), 0.3));
    let b = to_host(EpsilonModel::<B>::epsilon(&whole, x, 0.3));
    a.iter()
        .zip(&b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max)
}

#[test]
fn patches_of_a_large_ring_give_the_whole_ring_output() {
    for gated in [false, true] {
        let radius = config(gated).radius();
        assert_eq!(radius, 4);
        let exact = largest_difference(radius, gated);
        assert!(exact < 1e-5, "r = radius, gated {gated}: {exact}");
        let short = largest_difference(radius - 1, gated);
        assert!(short > 1e-3, "r = radius − 1, gated {gated}: {short}");
    }
}

/// `generate`, `train` and `assimilate` of Lorenz-96 with a ring convolution at toy sizes: a
/// network trained on a ring of 16 sites assimilates a ring of 32 through the space–time
/// blanket, its samples of the larger ring's shape; the blanket must cut the dataset's ring
/// and the dataset must say its ring's size. (The toy network, 400 steps, needs the SDA
/// likelihood's γ = 0.1: at γ = 0.03 its samples diverge, which `assimilate` reports.)
#[test]
fn a_ring_network_trained_small_assimilates_a_larger_ring() {
    use common::{fails_with, ok, sda};
    let base = std::env::temp_dir().join(format!("sda-ring-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let path = |p: &str| base.join(p).to_str().unwrap().to_string();
    for (n, name) in [(16, "small"), (32, "large")] {
        ok(&sda(&[
            "generate",
            "lorenz96",
            "--system-params",
            &format!("n = {n}"),
            "--trajectories",
            "16",
            "--keep",
            "32",
            "--burn-in",
            "64",
            "--out",
            &path(name),
        ]));
    }
    let config = format!(
        "system = \"lorenz96\"\ndata = \"{}\"\nsteps = 400\nbatch = 32\nvalidate_every = 200\n\
         checkpoint_every = 200\n\n[network]\nk = 1\nsites = 16\nchannels = 8\nblocks = 1\n\
         kernel = 3\nembedding = 8\n",
        path("small")
    );
    std::fs::write(base.join("train.toml"), config).unwrap();
    ok(&sda(&[
        "train",
        "--config",
        &path("train.toml"),
        "--out",
        &path("run"),
    ]));
    // the trained ring network on the large ring, observed at every 8th site of every 4th state
    // (`observation`: the pick's parameters): `command` with these flags, then `extra`
    let (run, large) = (path("run"), path("large"));
    let linear = "every = 4, components = [0, 8, 16, 24], sigma = 1.0";
    let on_the_large_ring = |command: &str, blanket: &str, observation: &str, extra: &[&str]| {
        let mut args = vec![
            command,
            "--run",
            &run,
            "--data",
            &large,
            "--len",
            "9",
            "--blanket",
            "space-time-window",
            "--blanket-params",
            blanket,
            "--observation",
            "pick",
            "--observation-params",
            observation,
            "--samples",
            "4",
        ];
        args.extend_from_slice(extra);
        sda(&args)
    };
    let assimilate = |blanket: &str, out: &str| {
        let out = path(out);
        on_the_large_ring(
            "assimilate",
            blanket,
            linear,
            &[
                "--guidance-params",
                "gamma = 0.1",
                "--steps",
                "32",
                "--smoother",
                "letks",
                "--smoother-params",
                "radius = 3",
                "--out",
                &out,
            ],
        )
    };
    ok(&assimilate("k = 1, r = 4, patch = 8", "posterior"));
    let samples = std::fs::read(base.join("posterior/samples.npy")).unwrap();
    let header = String::from_utf8_lossy(&samples[..128]).to_string();
    assert!(header.contains("(4, 9, 32, )"), "{header}");
    // a ring's states are drawn site × time, with the smoother given the same observation
    assert!(base.join("posterior/hovmoller.png").exists());
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(base.join("posterior/assimilate.json")).unwrap(),
    )
    .unwrap();
    let smoother_rmse = record["smoother"]["rmse"].as_f64().unwrap();
    assert!(smoother_rmse.is_finite() && record["rmse"].as_f64().unwrap().is_finite());
    let smoothed = std::fs::read(base.join("posterior/smoother.npy")).unwrap();
    let header = String::from_utf8_lossy(&smoothed[..128]).to_string();
    assert!(header.contains("(4, 9, 32, )"), "{header}");
    fails_with(
        &assimilate("k = 1, r = 4, patch = 5", "bad"),
        "not a whole number of patches",
    );
    fails_with(&assimilate("k = 2, r = 4, patch = 8", "bad2"), "windows of");
    // a ring too large for particle filters is evaluated against the truth only
    // (--particles 0): SDA beside the local and the global ensemble smoothers, no BPF′ row
    let evaluation = path("evaluate");
    // 2 windows, no particle filter, SDA by DDIM (8 steps), then `extra`
    let evaluate = |observation: &str, extra: &[&str]| {
        let mut args = vec![
            "--observations",
            "2",
            "--particles",
            "0",
            "--steps",
            "8",
            "--sampler",
            "ddim",
        ];
        args.extend_from_slice(extra);
        on_the_large_ring("evaluate", "k = 1, r = 4, patch = 8", observation, &args)
    };
    ok(&evaluate(
        linear,
        &[
            "--smoother",
            "letks",
            "--smoother-params",
            "radius = 3",
            "--smoother",
            "enks",
            "--smoother-params",
            "",
            "--out",
            &evaluation,
        ],
    ));
    let rows = std::fs::read_to_string(base.join("evaluate/rows.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 2 * 3, "{rows}");
    let table = std::fs::read_to_string(base.join("evaluate/table.md")).unwrap();
    assert!(!table.contains("BPF′ (second filter)"), "{table}");
    let letks = table.lines().find(|l| l.starts_with("| LETKS")).unwrap();
    let cells: Vec<&str> = letks.split('|').map(str::trim).collect();
    // no W1 without a reference, no log-prior without a transition density; a finite RMSE
    assert_eq!((cells[2], cells[4]), ("–", "–"), "{table}");
    assert!(cells[5].parse::<f64>().unwrap().is_finite(), "{table}");
    // each row holds the rank histogram of the truth among its 4 samples: 5 bins over the
    // 9 × 32 values; the figure of the three methods' histograms is written beside the table
    for line in rows.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let ranks: Vec<u64> = serde_json::from_value(row["ranks"].clone()).unwrap();
        assert_eq!(
            (ranks.len(), ranks.iter().sum::<u64>()),
            (5, 9 * 32),
            "{line}"
        );
    }
    assert!(base.join("evaluate/ranks.png").exists());
    // SDA as a filter over sliding windows of 5 states beside the LETKF, states 4–8 scored:
    // states 0, 4, 8 are observed, so one window per observed state, of which the two that
    // estimate states 4–8 run (2 × 8 DDIM steps per sample), each state given the
    // observations up to it
    let filtering = path("evaluate-filtering");
    let filter = |window: &str, out: &str| {
        evaluate(
            linear,
            &[
                "--spin-up",
                "4",
                "--filtering",
                window,
                "--smoother",
                "letkf",
                "--smoother-params",
                "radius = 3, ensemble = 4",
                "--out",
                out,
            ],
        )
    };
    ok(&filter("5", &filtering));
    let rows = std::fs::read_to_string(base.join("evaluate-filtering/rows.jsonl")).unwrap();
    let sda_rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["sampler"].is_string())
        .collect();
    assert_eq!(sda_rows.len(), 2, "{rows}");
    for r in &sda_rows {
        assert!(
            r["sampler"].as_str().unwrap().ends_with("filtering W=5"),
            "{r}"
        );
        assert_eq!(r["evaluations"].as_u64(), Some(2 * 8), "{r}");
        assert!(r["stats"]["rmse"].as_f64().unwrap().is_finite(), "{r}");
        // the rank histogram over the 5 scored states × 32 sites; no likelihood of a
        // trajectory whose first states were not estimated
        let ranks: Vec<u64> = serde_json::from_value(r["ranks"].clone()).unwrap();
        assert_eq!(ranks.iter().sum::<u64>(), 5 * 32, "{r}");
        assert!(r["stats"]["log_likelihood"].is_null(), "{r}");
    }
    let table = std::fs::read_to_string(base.join("evaluate-filtering/table.md")).unwrap();
    assert!(table.contains("states 4–8 scored"), "{table}");
    // resuming the folder with another window is refused; a window longer than L is named
    fails_with(&filter("7", &filtering), "other settings");
    fails_with(
        &filter("12", &path("bad-filter")),
        "longer than the trajectory",
    );
    fails_with(
        &evaluate(linear, &["--spin-up", "9", "--out", &path("bad-spin-up")]),
        "leaves no state",
    );
    // without a particle-filter reference the cost figure draws RMSE against seconds, every
    // method included
    let figure = path("cost.png");
    ok(&sda(&["plot", &evaluation, "--out", &figure]));
    assert!(base.join("cost.png").exists());
    // the non-linear observation arctan(x) of the same sites (the toy ring's units: arctan of
    // the physical value) for SDA, the local smoother and two ensemble filters run through the
    // window (state i given y up to i); a smoother that loses the truth (an inflation of 1e30
    // overflows) scores NaN on each window instead of ending the evaluation
    let units: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("run/state.json")).unwrap())
            .unwrap();
    let (mean, scale) = (
        units["units"]["mean"][0].as_f64().unwrap(),
        units["units"]["scale"][0].as_f64().unwrap(),
    );
    let linked = path("evaluate-arctan");
    let arctan = format!(
        "every = 4, components = [0, 8, 16, 24], sigma = 0.5, \
         arctan = {{ offset = {mean}, scale = {scale} }}"
    );
    ok(&evaluate(
        &arctan,
        &[
            "--smoother",
            "letkf",
            "--smoother-params",
            "radius = 3, ensemble = 4",
            "--smoother",
            "ensf",
            "--smoother-params",
            "ensemble = 4, steps = 50",
            "--smoother",
            "letks",
            "--smoother-params",
            "radius = 3, inflation = 1e30",
            "--out",
            &linked,
        ],
    ));
    let table = std::fs::read_to_string(base.join("evaluate-arctan/table.md")).unwrap();
    let rmse = |prefix: &str| -> Vec<f64> {
        table
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| match l.split('|').map(str::trim).nth(5).unwrap() {
                "–" => f64::NAN,
                cell => cell.parse().unwrap(),
            })
            .collect()
    };
    for prefix in ["| SDA", "| LETKF", "| EnSF"] {
        let r = rmse(prefix);
        assert!(r.len() == 1 && r[0].is_finite(), "{prefix}: {table}");
    }
    assert!(table.contains("(filter)"), "{table}");
    let letks = rmse("| LETKS");
    assert!(letks.len() == 1 && letks[0].is_nan(), "{table}");
    let rows = std::fs::read_to_string(base.join("evaluate-arctan/rows.jsonl")).unwrap();
    assert_eq!(
        rows.lines().filter(|l| l.contains("\"rmse\":null")).count(),
        2,
        "{rows}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// The shipped Lorenz-96 presets parse as training configs with valid ring networks whose time
/// half-width and receptive radius are the k and r their documentation names (k = 2 and 4;
/// 8 sites, 14 for `-deep`); the k = 4 variants differ from their base only in the steps and,
/// for `-c64`, the channels, for `-deep`, the blocks; `-deep-long` is `-deep` with more steps on
/// two threads.
#[test]
fn the_lorenz96_presets_are_valid_ring_networks() {
    use sda::score::network::NetworkConfig;
    use sda::score::train::TrainConfig;
    let read = |file: &str| -> TrainConfig {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(file);
        toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let ring = |file: &str| {
        let cfg = read(file);
        cfg.network.validate().unwrap();
        match cfg.network {
            NetworkConfig::Ring(ring) => ring,
            other => panic!("{file} is not a ring network: {other:?}"),
        }
    };
    for (file, k, radius) in [
        ("lorenz96-ring.toml", 2, 8),
        ("lorenz96-ring-k4.toml", 4, 8),
        ("lorenz96-ring-k4-long.toml", 4, 8),
        ("lorenz96-ring-k4-c64.toml", 4, 8),
        ("lorenz96-ring-k4-deep.toml", 4, 14),
        ("lorenz96-ring-k4-deep-long.toml", 4, 14),
        ("lorenz96-ring-k4-gated.toml", 4, 14),
    ] {
        let ring = ring(file);
        assert_eq!(
            (ring.k, ring.sites, ring.radius()),
            (k, 40, radius),
            "{file}"
        );
    }
    let base = read("lorenz96-ring-k4.toml");
    let long = read("lorenz96-ring-k4-long.toml");
    let wide = read("lorenz96-ring-k4-c64.toml");
    assert_eq!((base.steps, long.steps, wide.steps), (9000, 30000, 24000));
    assert_eq!(
        TrainConfig {
            steps: 9000,
            ..long
        },
        base
    );
    // a variant with its one architectural change undone and 9 000 steps is the base
    let undone = |file: &str, steps: usize, undo: fn(&mut RingConvConfig)| {
        let cfg = read(file);
        assert_eq!(cfg.steps, steps, "{file}");
        let mut net = ring(file);
        undo(&mut net);
        TrainConfig {
            steps: 9000,
            network: NetworkConfig::Ring(net),
            ..cfg
        }
    };
    assert_eq!(
        (
            ring("lorenz96-ring-k4-c64.toml").channels,
            ring("lorenz96-ring-k4.toml").channels
        ),
        (64, 48)
    );
    assert_eq!(
        undone("lorenz96-ring-k4-c64.toml", 24000, |n| n.channels = 48),
        base
    );
    assert_eq!(ring("lorenz96-ring-k4-deep.toml").blocks, 6);
    assert_eq!(
        undone("lorenz96-ring-k4-deep.toml", 19000, |n| n.blocks = 3),
        base
    );
    let deep_long = read("lorenz96-ring-k4-deep-long.toml");
    assert_eq!((deep_long.steps, deep_long.threads), (30000, 2));
    assert_eq!(
        TrainConfig {
            steps: 19000,
            threads: 1,
            ..deep_long.clone()
        },
        read("lorenz96-ring-k4-deep.toml")
    );
    // the gated preset is the two-thread deep one with the gate, over 24 500 steps
    assert!(ring("lorenz96-ring-k4-gated.toml").gated);
    assert_eq!(
        undone("lorenz96-ring-k4-gated.toml", 24500, |n| n.gated = false),
        TrainConfig {
            steps: 9000,
            ..deep_long
        }
    );
}
