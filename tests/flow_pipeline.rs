//! `sda train` and `sda assimilate` on velocity fields with a U-Net at toy size (16² grid,
//! synthetic waves): the Kolmogorov path end to end, and its errors.

mod common;
use common::{ok, sda};

use sda::data::{write_npy, Array};

#[test]
fn unet_assimilation_end_to_end() {
    let base = std::env::temp_dir().join(format!("sda-flow-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (g, t_len) = (16usize, 12usize);
    for (split, n) in [("train", 4), ("valid", 2), ("test", 2)] {
        let mut v = Vec::new();
        for j in 0..n {
            for t in 0..t_len {
                for c in 0..2 {
                    for iy in 0..g {
                        for ix in 0..g {
                            let x = 2.0 * std::f64::consts::PI * (ix + 2 * iy) as f64 / g as f64;
                            v.push((x + 0.2 * t as f64 + j as f64 + c as f64).sin() as f32);
                        }
                    }
                }
            }
        }
        write_npy(
            &data.join(format!("{split}.npy")),
            &Array::new(vec![n, t_len, 2, g, g], v).unwrap(),
        )
        .unwrap();
    }
    let run = base.join("run");
    let config = base.join("train.toml");
    std::fs::write(
        &config,
        format!(
            "system = 'kolmogorov'\ndata = '{}'\nsteps = 12\nbatch = 4\nlr = 2e-4\n\
             validate_every = 6\ncheckpoint_every = 6\n\n[network]\nk = 1\ngrid = 16\n\
             channels = [4, 8]\nblocks = 1\nembedding = 8\nforcing = true\n",
            data.display()
        ),
    )
    .unwrap();
    ok(&sda(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        // the cpu preset's output map, through the command-line override
        "--output",
        "preconditioned",
    ]));
    assert_eq!(
        sda::checkpoint::Checkpoint::read(&run)
            .unwrap()
            .network()
            .output(),
        sda::score::precondition::Output::Preconditioned
    );
    let out = base.join("a");
    let common = [
        "assimilate",
        "--run",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--len",
        "9",
        "--samples",
        "2",
        "--steps",
        "4",
        "--guidance-params",
        "gamma = 0.01",
        "--sampler-params",
        "corrections = 1, tau = 0.5",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut args = common.to_vec();
    args.extend(["--observation", "kolmogorov-assimilation"]);
    let text = ok(&sda(&args));
    assert!(text.contains("residual std"), "{text}");
    let samples = sda::data::read_npy(&out.join("samples.npy")).unwrap();
    assert_eq!(samples.shape, vec![2, 9, 2, 16, 16]);
    assert!(samples.data.iter().all(|v| v.is_finite()));
    assert_eq!(
        sda::data::read_npy(&out.join("y.npy")).unwrap().shape,
        vec![3 * 2 * 2 * 2]
    );
    assert!(std::fs::read(out.join("vorticity.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("assimilate.json")).unwrap()).unwrap();
    assert!(summary["residual_std"].as_f64().unwrap().is_finite());
    let magnitude = summary["magnitude_ratio"]
        .as_f64()
        .expect("a magnitude ratio");
    assert_eq!(
        summary["diverged"],
        magnitude > sda::metrics::DIVERGENCE_FACTOR
    );
    assert_eq!(summary["evaluations"], 8);
    // the same observation with DPS, then the Figure-4 rows of both
    let dps_out = base.join("dps");
    let mut args: Vec<&str> = common
        .iter()
        .map(|&a| match a {
            "gamma = 0.01" => "zeta = 1.0",
            a if a == out.to_str().unwrap() => dps_out.to_str().unwrap(),
            a => a,
        })
        .collect();
    args.extend([
        "--observation",
        "kolmogorov-assimilation",
        "--guidance",
        "dps",
    ]);
    ok(&sda(&args));
    let figure = base.join("compare.png");
    let table = ok(&sda(&[
        "compare",
        out.to_str().unwrap(),
        dps_out.to_str().unwrap(),
        "--out",
        figure.to_str().unwrap(),
    ]));
    assert!(
        table.contains("| sda |") && table.contains("| dps |"),
        "{table}"
    );
    assert!(std::fs::read(&figure).unwrap().starts_with(b"\x89PNG"));
    // the circle prescribes y = 0.6 on the ring of the last state's vorticity
    let mut args = common.to_vec();
    args.extend(["--observation", "kolmogorov-circle"]);
    ok(&sda(&args));
    let y = sda::data::read_npy(&out.join("y.npy")).unwrap();
    assert!(y.data.iter().all(|&v| v == 0.6f32) && !y.data.is_empty());
    // runs of different observations are not compared
    let mixed = sda(&["compare", out.to_str().unwrap(), dps_out.to_str().unwrap()]);
    assert_eq!(mixed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&mixed.stderr);
    assert!(
        err.contains("different truths, observations or shapes"),
        "{err}"
    );
    // a scenario that does not fit the grid, DPS by name
    let mut args = common.to_vec();
    args.extend(["--observation", "kolmogorov-extrapolation"]);
    let bad = sda(&args);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("does not fit 9 states on a 16² grid"), "{err}");
    let mut args: Vec<&str> = common
        .iter()
        .map(|&a| if a == "gamma = 0.01" { "zeta = 1.0" } else { a })
        .collect();
    args.extend(["--observation", "kolmogorov-loop", "--guidance", "dps"]);
    ok(&sda(&args));
    let _ = std::fs::remove_dir_all(&base);
}

/// A true solver trajectory passes the Figure-5 check: its re-simulation stays closer to it
/// than persistence does; a trajectory that does not move (persistence itself) fails it.
#[test]
fn resimulation_tells_dynamics_from_persistence() {
    use sda::systems::kolmogorov::{Kolmogorov, KolmogorovConfig};
    let system = Kolmogorov::new(KolmogorovConfig {
        grid: 64,
        coarsen: 4,
        ..KolmogorovConfig::default()
    })
    .unwrap();
    let len = 6;
    let truth = system.simulate(5, 16, len);
    let r = sda::experiments::flow::resimulate(&truth, len, &system).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&r.distance) < 0.5 * mean(&r.persistence),
        "re-simulation {:?} vs persistence {:?}",
        r.distance,
        r.persistence
    );
    // a frozen trajectory: persistence is exact, the re-simulation moves away
    let d = 2 * 16 * 16;
    let frozen: Vec<f64> = (0..len).flat_map(|_| truth[..d].to_vec()).collect();
    let f = sda::experiments::flow::resimulate(&frozen, len, &system).unwrap();
    assert!(f.persistence.iter().all(|&p| p == 0.0));
    assert!(mean(&f.distance) > mean(&f.persistence));
    // the command on a samples file
    let base = std::env::temp_dir().join(format!("sda-resim-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    let file = base.join("samples.npy");
    write_npy(
        &file,
        &Array::new(
            vec![1, len, 2, 16, 16],
            truth.iter().map(|&v| v as f32).collect(),
        )
        .unwrap(),
    )
    .unwrap();
    let text = ok(&sda(&[
        "resimulate",
        file.to_str().unwrap(),
        "--grid",
        "64",
        "--coarsen",
        "4",
    ]));
    assert!(text.contains("| 0 | mean |"), "{text}");
    assert!(base.join("resimulate.json").exists());
    let bad = sda(&["resimulate", file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("coarsens to 64²"));
    let _ = std::fs::remove_dir_all(&base);
}
