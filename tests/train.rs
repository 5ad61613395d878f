//! Algorithm 1 end to end on a small Lorenz-63 dataset: the loss falls, a run stopped midway and
//! resumed from its checkpoint equals an uninterrupted run bit for bit, a warm start begins
//! from another run's parameters, and bad input is reported. One test function: network
//! initialisation draws from the backend's process-wide seeded generator, so the runs compared
//! must not interleave with other tests.

use sda::backend::{default_device, DefaultBackend};
use sda::checkpoint::Checkpoint;
use sda::experiments::generate::{generate_lorenz63, GenerateOptions};
use sda::score::mlp::{MlpConfig, ResMlp};
use sda::score::precondition::Output;
use sda::score::train::{model_bytes, train, TrainConfig};
use sda::systems::lorenz63::Lorenz63;

#[test]
fn training_resumes_exactly_and_rejects_bad_input() {
    let base = std::env::temp_dir().join(format!("sda-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let data = base.join("data");
    generate_lorenz63(
        &Lorenz63::default(),
        &GenerateOptions {
            out: data.clone(),
            trajectories: 20,
            seed: 0,
            burn_in: 256,
            keep: 65,
            max_new: None,
            progress: false,
            force: false,
        },
    )
    .unwrap();
    let net = MlpConfig {
        k: 1,
        state_dim: 3,
        width: 32,
        blocks: 2,
        embedding: 16,
        output: Output::Epsilon,
    };
    let cfg = TrainConfig {
        system: "lorenz63".into(),
        data: data.clone(),
        network: net.into(),
        steps: 120,
        batch: 64,
        lr: 1e-3,
        weight_decay: 1e-3,
        validate_every: 40,
        checkpoint_every: 25,
        seed: 1,
        init: None,
        schedule: Default::default(),
        time_power: 1.0,
        threads: 1,
    };
    let device = default_device();
    let (a, b) = (base.join("a"), base.join("b"));
    // stopped after 55 steps (a kill between checkpoints loses at most 24 steps; here the stop
    // itself writes one), then resumed
    let part = train::<DefaultBackend>(&cfg, &a, false, Some(55), false, &device).unwrap();
    assert_eq!(part.step, 55);
    let resumed = train::<DefaultBackend>(&cfg, &a, true, None, false, &device).unwrap();
    let straight = train::<DefaultBackend>(&cfg, &b, false, None, false, &device).unwrap();
    assert_eq!(resumed.step, 120);
    assert_eq!(resumed.loss, straight.loss, "resumed loss curve differs");
    assert_eq!(resumed.valid, straight.valid);
    let (ma, ca) = Checkpoint::read(&a)
        .unwrap()
        .model::<DefaultBackend, ResMlp<_>>(&device)
        .unwrap();
    let (mb, _) = Checkpoint::read(&b)
        .unwrap()
        .model::<DefaultBackend, ResMlp<_>>(&device)
        .unwrap();
    // same parameters, and the same bytes: the checkpoint files of the resumed and the straight
    // run are identical (the header's keys are written in sorted order)
    let (ba, bb) = (
        model_bytes(&ma, &ca).unwrap(),
        model_bytes(&mb, &ca).unwrap(),
    );
    assert!(ba == bb, "the model bytes differ");
    // on two threads (the batch in two shards) a resumed run is the straight run too, and its
    // first step's loss is the one-thread run's to rounding
    let two = TrainConfig {
        threads: 2,
        ..cfg.clone()
    };
    let (c, d) = (base.join("two-a"), base.join("two-b"));
    train::<DefaultBackend>(&two, &c, false, Some(55), false, &device).unwrap();
    let resumed_two = train::<DefaultBackend>(&two, &c, true, None, false, &device).unwrap();
    let straight_two = train::<DefaultBackend>(&two, &d, false, None, false, &device).unwrap();
    assert_eq!(resumed_two.loss, straight_two.loss);
    assert!((straight_two.loss[0] - straight.loss[0]).abs() <= 1e-5 * straight.loss[0]);
    let file = "model-00000120.safetensors";
    assert!(
        std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap(),
        "the checkpoint files differ"
    );
    let (ta, tb) = (
        safetensors::SafeTensors::deserialize(&ba).unwrap(),
        safetensors::SafeTensors::deserialize(&bb).unwrap(),
    );
    let mut names = ta.names();
    names.sort();
    assert!(names.len() > 4);
    for name in names {
        let same = ta.tensor(name).unwrap().data() == tb.tensor(name).unwrap().data();
        assert!(same, "parameter {name} differs after resuming");
    }
    // the loss log beside the checkpoint: the same curve as CSV, identical after resuming,
    // and `sda plot RUN_DIR` draws it
    let csv = std::fs::read_to_string(a.join("loss.csv")).unwrap();
    assert_eq!(csv, std::fs::read_to_string(b.join("loss.csv")).unwrap());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 121);
    assert_eq!(lines[0], "step,train_loss,valid_loss");
    assert_eq!(lines[1], format!("1,{},", straight.loss[0]));
    assert_eq!(
        lines[40],
        format!("40,{},{}", straight.loss[39], straight.valid[0].1)
    );
    let plotted = std::process::Command::new(env!("CARGO_BIN_EXE_sda"))
        .args(["plot", a.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        plotted.status.success(),
        "{}",
        String::from_utf8_lossy(&plotted.stderr)
    );
    assert!(std::fs::read(a.join("loss.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    // the loss falls
    let head: f32 = straight.loss[..20].iter().sum::<f32>() / 20.0;
    let tail: f32 = straight.loss[100..].iter().sum::<f32>() / 20.0;
    assert!(tail < 0.8 * head, "loss {head} → {tail}");

    // a warm start from b: the loaded parameters are b's (with lr = 0 AdamW leaves them as
    // they are), the log starts afresh, and its first loss is the trained one, not a fresh draw's
    let warm = TrainConfig {
        init: Some(b.clone()),
        lr: 0.0,
        steps: 10,
        ..cfg.clone()
    };
    let wlog =
        train::<DefaultBackend>(&warm, &base.join("w"), false, None, false, &device).unwrap();
    assert_eq!(wlog.step, 10);
    let (mw, _) = Checkpoint::read(&base.join("w"))
        .unwrap()
        .model::<DefaultBackend, ResMlp<_>>(&device)
        .unwrap();
    let bw = model_bytes(&mw, &ca).unwrap();
    let tw = safetensors::SafeTensors::deserialize(&bw).unwrap();
    for name in tb.names() {
        let same = tw.tensor(name).unwrap().data() == tb.tensor(name).unwrap().data();
        assert!(same, "parameter {name} was not warm-started from b");
    }
    let first: f32 = wlog.loss.iter().sum::<f32>() / wlog.loss.len() as f32;
    assert!(
        first < 0.8 * head,
        "warm-started loss {first} vs fresh {head}"
    );
    // a warm start from a folder of another network
    let wrong = TrainConfig {
        init: Some(b.clone()),
        network: MlpConfig { width: 64, ..net }.into(),
        ..cfg.clone()
    };
    let err =
        train::<DefaultBackend>(&wrong, &base.join("w2"), false, None, false, &device).unwrap_err();
    assert!(err.to_string().contains("init = "), "{err}");

    // an existing run is not overwritten without --resume
    let err = train::<DefaultBackend>(&cfg, &a, false, None, false, &device).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");
    // resuming with another architecture
    let mut wide = cfg.clone();
    wide.network = MlpConfig { width: 64, ..net }.into();
    let err = train::<DefaultBackend>(&wide, &a, true, None, false, &device).unwrap_err();
    assert!(err.to_string().contains("same settings"), "{err}");
    assert!(
        err.to_string().contains("network: {"),
        "names the setting: {err}"
    );
    // --resume where there is nothing to resume
    let empty = std::env::temp_dir().join(format!("sda-train-empty-{}", std::process::id()));
    let err = train::<DefaultBackend>(&cfg, &empty, true, None, false, &device).unwrap_err();
    assert!(err.to_string().contains("holds no training run"), "{err}");
    assert!(!empty.exists());
    // a checkpoint of another k or width
    let err = sda::score::train::load_model::<DefaultBackend, ResMlp<_>>(
        &a.join("model-00000120.safetensors"),
        &MlpConfig { k: 2, ..net },
        &device,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("checkpoint is for"), "{err}");
    // corrupt checkpoint
    std::fs::write(a.join("model-00000120.safetensors"), b"garbage").unwrap();
    let err = Checkpoint::read(&a)
        .unwrap()
        .model::<DefaultBackend, ResMlp<_>>(&device)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a safetensors file"), "{err}");
    // missing data, config typo
    let mut nodata = cfg.clone();
    nodata.data = base.join("nowhere");
    let err =
        train::<DefaultBackend>(&nodata, &base.join("c"), false, None, false, &device).unwrap_err();
    assert!(err.to_string().contains("train.npy"), "{err}");
    // a learning rate or weight decay that cannot train (NaN trained to a NaN loss before)
    for (lr, weight_decay, needle) in [
        (f64::NAN, 0.0, "lr must be ≥ 0 and finite, got NaN"),
        (f64::INFINITY, 0.0, "lr must be ≥ 0 and finite, got inf"),
        (-1e-3, 0.0, "lr must be ≥ 0 and finite, got -0.001"),
        (1e-3, -1.0, "weight decay must be ≥ 0 and finite, got -1"),
    ] {
        let bad = TrainConfig {
            lr,
            weight_decay,
            ..cfg.clone()
        };
        let err = train::<DefaultBackend>(&bad, &base.join("d"), false, None, false, &device)
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    for time_power in [0.0, -2.0, f64::NAN] {
        let bad = TrainConfig {
            time_power,
            ..cfg.clone()
        };
        let err = train::<DefaultBackend>(&bad, &base.join("d"), false, None, false, &device)
            .unwrap_err();
        assert!(err.to_string().contains("time_power"), "{err}");
    }
    for threads in [0, cfg.batch + 1] {
        let bad = TrainConfig {
            threads,
            ..cfg.clone()
        };
        let err = train::<DefaultBackend>(&bad, &base.join("d"), false, None, false, &device)
            .unwrap_err();
        assert!(
            err.to_string().contains("must be ≥ 1 and divide batch"),
            "{err}"
        );
    }
    let err =
        toml::from_str::<TrainConfig>("system = 'lorenz63'\ndata = 'd'\nstep = 3").unwrap_err();
    assert!(err.to_string().contains("unknown field `step`"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn unet_trains_and_resumes_on_field_data() {
    use sda::data::{write_npy, Array};
    use sda::score::unet::{UNet, UNetConfig};
    let base = std::env::temp_dir().join(format!("sda-train-unet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // smooth travelling waves on a 16² torus: [N, T, 2, 16, 16]
    let (g, t_len) = (16usize, 12usize);
    let field = |n: usize| -> Vec<f32> {
        let mut v = Vec::new();
        for j in 0..n {
            for t in 0..t_len {
                for c in 0..2 {
                    for iy in 0..g {
                        for ix in 0..g {
                            let phase = 0.3 * t as f64 + j as f64 + c as f64;
                            let x = 2.0 * std::f64::consts::PI * (ix + iy) as f64 / g as f64;
                            v.push((x + phase).sin() as f32);
                        }
                    }
                }
            }
        }
        v
    };
    for (split, n) in [("train", 6), ("valid", 2)] {
        write_npy(
            &data.join(format!("{split}.npy")),
            &Array::new(vec![n, t_len, 2, g, g], field(n)).unwrap(),
        )
        .unwrap();
    }
    let net = UNetConfig {
        k: 1,
        grid: g,
        channels: vec![4, 8],
        blocks: 1,
        embedding: 8,
        forcing: true,
        // The preconditioned output map (the cpu preset's), so resuming and reloading it are
        // covered too.
        output: Output::Preconditioned,
    };
    let cfg = TrainConfig {
        system: "kolmogorov".into(),
        data: data.clone(),
        network: net.clone().into(),
        steps: 30,
        batch: 8,
        lr: 2e-3,
        weight_decay: 1e-3,
        validate_every: 10,
        checkpoint_every: 10,
        seed: 3,
        init: None,
        schedule: Default::default(),
        time_power: 1.0,
        threads: 1,
    };
    let device = default_device();
    let (a, b) = (base.join("a"), base.join("b"));
    train::<DefaultBackend>(&cfg, &a, false, Some(13), false, &device).unwrap();
    let resumed = train::<DefaultBackend>(&cfg, &a, true, None, false, &device).unwrap();
    let straight = train::<DefaultBackend>(&cfg, &b, false, None, false, &device).unwrap();
    assert_eq!(resumed.step, 30);
    assert_eq!(
        resumed.loss, straight.loss,
        "resumed U-Net loss curve differs"
    );
    assert!(straight.loss.iter().all(|l| l.is_finite()));
    let (_, loaded) = Checkpoint::read(&a)
        .unwrap()
        .model::<DefaultBackend, UNet<_>>(&device)
        .unwrap();
    assert_eq!(loaded, net);
    // the wrong kind of network, another grid, data of another shape
    let err = Checkpoint::read(&a)
        .unwrap()
        .model::<DefaultBackend, ResMlp<_>>(&device)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not the kind of network"), "{err}");
    let err = sda::score::train::load_model::<DefaultBackend, UNet<_>>(
        &a.join("model-00000030.safetensors"),
        &UNetConfig {
            grid: 32,
            ..net.clone()
        },
        &device,
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("checkpoint is for"), "{err}");
    let mut other = cfg.clone();
    other.network = UNetConfig { grid: 32, ..net }.into();
    let err =
        train::<DefaultBackend>(&other, &base.join("c"), false, None, false, &device).unwrap_err();
    assert!(err.to_string().contains("time, 2, 32, 32]"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}
