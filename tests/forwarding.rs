//! A wrapped observation model (`Box<dyn ObservationModel>`, `&T`) answers every method exactly
//! like the bare model, the trait's default methods included: a forwarding impl that left one
//! out would silently answer with the default instead of the model's own override.

use burn::tensor::Tensor;
use sda::backend::{default_device, from_host, to_host, DefaultBackend, NoiseSource};
use sda::observe::field::FieldScenario;
use sda::observe::ObservationModel;
use sda::TrajectoryShape;

type B = DefaultBackend;

/// An observation that overrides every default method with an answer no default gives.
struct Overrides;

impl ObservationModel<B> for Overrides {
    fn trajectory_shape(&self) -> TrajectoryShape {
        TrajectoryShape::new(4, 2)
    }
    fn output_dim(&self) -> usize {
        3
    }
    fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        x.reshape([n, 8]).narrow(1, 0, 3)
    }
    fn noise_std(&self) -> Vec<f64> {
        vec![0.5; 3]
    }
    fn describe(&self) -> String {
        "overrides".into()
    }
    fn image_layout(&self) -> Option<[usize; 4]> {
        Some([3, 1, 1, 1])
    }
    fn observed_states(&self) -> Option<Vec<usize>> {
        Some(vec![0, 1, 2])
    }
    fn sample(&self, x: Tensor<B, 3>, _noise: &mut NoiseSource) -> Tensor<B, 2> {
        // deterministic, unlike the default's draw
        self.apply(x) * 2.0
    }
    fn log_likelihood(&self, _y: &[f64], x: Tensor<B, 3>) -> Tensor<B, 1> {
        let n = x.dims()[0];
        Tensor::<B, 1>::ones([n], &x.device()) * 42.0
    }
}

/// Every answer of a model, with the draws of `sample` and the log-likelihood on fixed
/// trajectories.
fn answers(m: &dyn ObservationModel<B>) -> String {
    let s = m.trajectory_shape();
    let x: Vec<f64> = (0..2 * s.len * s.dim)
        .map(|i| (i as f64 * 0.37).sin())
        .collect();
    let t = || from_host::<B, 3>(&x, [2, s.len, s.dim], &default_device());
    let y = vec![0.1; m.output_dim()];
    format!(
        "{:?} {} {:?} {} {:?} {:?} {:?} {:?} {:?}",
        s,
        m.output_dim(),
        to_host(m.apply(t())),
        m.describe(),
        m.noise_std(),
        m.image_layout(),
        m.observed_states(),
        to_host(m.sample(t(), &mut NoiseSource::new(3))),
        to_host(m.log_likelihood(&y, t())),
    )
}

#[test]
fn a_boxed_or_borrowed_observation_answers_like_the_bare_one() {
    let bare = answers(&Overrides);
    assert!(
        bare.contains("42.0") && bare.contains("Some([3, 1, 1, 1])"),
        "{bare}"
    );
    let boxed: Box<dyn ObservationModel<B>> = Box::new(Overrides);
    assert_eq!(answers(&boxed), bare);
    assert_eq!(answers(&&Overrides), bare);
    let boxed_ref: Box<&Overrides> = Box::new(&Overrides);
    assert_eq!(answers(&boxed_ref), bare);
}

#[test]
fn a_boxed_field_observation_keeps_its_image_layout_and_observed_states() {
    let field = FieldScenario::Assimilation.build(8, 8).unwrap();
    let boxed: Box<dyn ObservationModel<B>> = Box::new(field.clone());
    assert!(ObservationModel::<B>::image_layout(&field).is_some());
    assert_eq!(
        boxed.image_layout(),
        ObservationModel::<B>::image_layout(&field)
    );
    assert_eq!(
        boxed.observed_states(),
        ObservationModel::<B>::observed_states(&field)
    );
    assert_eq!(answers(&boxed), answers(&field));
}
