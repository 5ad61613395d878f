//! A Markov blanket written outside the crate (the book's example, compiled here verbatim) is
//! registered with `inventory`, folds what it should, and composes by name in `sda oracle`.
//! (`tests/custom_system.rs` composes a trained network with it in `sda assimilate`.)

#[path = "../examples/custom_blanket.rs"]
mod custom_blanket;

use custom_blanket::{WindowAverage, WindowAverageConfig};
use proptest::prelude::*;
use sda::backend::{default_device, from_host, to_host, DefaultBackend};
use sda::blanket::MarkovBlanket;
use sda::TrajectoryShape;

type B = DefaultBackend;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// fold ∘ unfold is the identity (the mean of copies of x_i is x_i), and fold gives each
    /// state the mean over the windows that hold it of their outputs at its position.
    #[test]
    fn window_average_folds_the_mean_of_the_windows_holding_each_state(
        n in 1usize..4, k in 1usize..4, extra in 0usize..6, d in 1usize..4,
    ) {
        let len = 2 * k + 1 + extra;
        let blanket = WindowAverage::new(&WindowAverageConfig { k }).unwrap();
        let device = default_device();
        let values: Vec<f64> = (0..n * len * d).map(|i| i as f64).collect();
        let x = from_host::<B, 3>(&values, [n, len, d], &device);
        let windows = MarkovBlanket::<B>::unfold(&blanket, x);
        let nw = MarkovBlanket::<B>::num_windows(&blanket, TrajectoryShape::new(len, d));
        let w = 2 * k + 1;
        prop_assert_eq!(windows.dims(), [nw * n, w, d]);
        let back = to_host(MarkovBlanket::<B>::fold(&blanket, windows, TrajectoryShape::new(len, d)));
        for (a, b) in back.iter().zip(&values) {
            prop_assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{} vs {}", a, b);
        }
        // window j's output at position p is 100 j + p: state i gets the mean over its windows
        let tags: Vec<f64> = (0..nw * n * w * d)
            .map(|i| {
                let (j, p) = (i / (n * w * d), (i / d) % w);
                (j * 100 + p) as f64
            })
            .collect();
        let folded = to_host(MarkovBlanket::<B>::fold(
            &blanket,
            from_host::<B, 3>(&tags, [nw * n, w, d], &device),
            TrajectoryShape::new(len, d),
        ));
        for i in 0..len {
            let holders: Vec<usize> = (0..nw).filter(|&j| j <= i && i < j + w).collect();
            let mean = holders.iter().map(|&j| (j * 100 + i - j) as f64).sum::<f64>()
                / holders.len() as f64;
            prop_assert!((folded[i * d] - mean).abs() < 1e-3, "state {}: {} vs {}", i, folded[i * d], mean);
        }
    }
}

#[test]
fn window_average_is_listed_and_composes_by_name() {
    assert!(sda::cli::list_text().unwrap().contains("window-average"));
    // the oracle's analytic local score, composed by the custom blanket, guided and sampled
    let run = |params: &str| {
        sda::cli::run([
            "sda",
            "oracle",
            "--blanket",
            "window-average",
            "--blanket-params",
            params,
            "--samples",
            "64",
            "--steps",
            "32",
        ])
    };
    run("k = 2").unwrap();
    let err = run("kk = 2").unwrap_err().to_string();
    assert!(err.contains("unknown field `kk`"), "{err}");
    let err = run("k = 0").unwrap_err().to_string();
    assert!(err.contains("at least 1"), "{err}");
}
