//! The registrations of the math core's own plugins: the `pick` and field observations, the
//! temporal-window blanket, the predictor–corrector and DDIM samplers, the VP schedules and the
//! SDA and DPS guidance, the classical filters. Systems register in their own files, experiment presets (Lorenz-63's
//! `lo` and `hi`) in their experiment's.

use std::sync::Arc;

use super::{
    params, BlanketPlugin, GuidancePlugin, MethodPlugin, NoParams, ObservationPlugin,
    SamplerPlugin, SchedulePlugin, SmootherPlugin,
};
use crate::backend::DefaultBackend;
use crate::blanket::{SpaceTimeWindow, TemporalWindow};
use crate::guidance::{Dps, Mmps, SdaGaussian};
use crate::methods::enks::Enks;
use crate::methods::enks::WindowEnks;
use crate::methods::ensemble::{Enkf, EnsembleSettings, Update};
use crate::methods::ensf::Ensf;
use crate::methods::letkf::letkf;
use crate::methods::letks::WindowLetks;
use crate::methods::reference::{Climatology, Var3d};
use crate::methods::var4d::Var4d;
use crate::methods::var4d_weak::WeakVar4d;
use crate::observe::{
    ops::{Pick, PickConfig},
    ObservationModel,
};
use crate::sampler::{Ddim, Heun, PredictorCorrector};
use crate::schedule::{check_eta, VpCosine, VpExp, VpLinear};
use crate::{Result, TrajectoryShape};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowParams {
    k: usize,
    #[serde(default = "crate::blanket::default_stride")]
    stride: usize,
}

inventory::submit! {
    ObservationPlugin {
        name: "pick",
        description: "chosen components at chosen states + N(0, sigma²): states=[..] | every=n, components=[..] | component_every=n, sigma; arctan = { offset, scale } observes arctan(offset + scale·x) of them (offset, scale: the data's mean and scale for arctan of the physical value)",
        build: |p, shape| Ok(Box::new(Pick::from_config(shape, params::<PickConfig>(p)?)?)),
    }
}

inventory::submit! {
    BlanketPlugin {
        name: "temporal-window",
        description: "windows x_{i-k:i+k} of 2k+1 states (Algorithm 2): k; stride = s evaluates every s-th window only (default 1)",
        build: |p| {
            let WindowParams { k, stride } = params(p)?;
            Ok(Box::new(TemporalWindow::strided(k, stride)?))
        },
    }
}

inventory::submit! {
    BlanketPlugin {
        name: "space-time-window",
        description: "windows of 2k+1 states x (P + 2r) sites on a periodic ring, P central sites kept: k, r, patch; stride = s in time as temporal-window's (default 1)",
        build: |p| Ok(Box::new(SpaceTimeWindow::new(params(p)?)?)),
    }
}

inventory::submit! {
    SamplerPlugin {
        name: "pc",
        description: "predictor-corrector, Algorithm 4: corrections (C, default 0), tau (default 0.25), corrector = langevin (paper) | diagonal (calibrated; tau default 0.1) | renoise",
        build: |p| Ok(Box::new(params::<PredictorCorrector>(p)?.checked()?)),
    }
}

inventory::submit! {
    SamplerPlugin {
        name: "ddim",
        description: "DDIM / exponential integrator (Algorithm 4's predictor): eta (default 0; 1 is DDPM)",
        build: |p| Ok(Box::new(Ddim::new(params::<Ddim>(p)?.eta)?)),
    }
}

inventory::submit! {
    SamplerPlugin {
        name: "ddpm",
        description: "ancestral DDPM (DDIM with eta = 1)",
        build: |p| {
            let NoParams {} = params(p)?;
            Ok(Box::new(Ddim::new(1.0)?))
        },
    }
}

inventory::submit! {
    SamplerPlugin {
        name: "heun",
        description: "Heun's second-order probability-flow ODE solver (EDM), 2 evaluations per step",
        build: |p| Ok(Box::new(params::<Heun>(p)?)),
    }
}

inventory::submit! {
    SchedulePlugin {
        name: "vp-cosine",
        description: "mu = cos(omega t)^2, omega = arccos sqrt(eta) (paper): eta (default 1e-3)",
        build: |p| { let s: VpCosine = params(p)?; check_eta(s.eta)?; Ok(Arc::new(s)) },
    }
}

inventory::submit! {
    SchedulePlugin {
        name: "vp-linear",
        description: "mu = 1 - (1 - eta) t: eta (default 1e-3)",
        build: |p| { let s: VpLinear = params(p)?; check_eta(s.eta)?; Ok(Arc::new(s)) },
    }
}

inventory::submit! {
    SchedulePlugin {
        name: "vp-exp",
        description: "mu = exp(ln(eta) t^2): eta (default 1e-3)",
        build: |p| { let s: VpExp = params(p)?; check_eta(s.eta)?; Ok(Arc::new(s)) },
    }
}

inventory::submit! {
    GuidancePlugin {
        name: "sda",
        description: "Algorithm 3: v = Sigma_y + (sigma/mu)^2 gamma: gamma",
        build: |p| Ok(Box::new(SdaGaussian::new(params::<SdaGaussian>(p)?.gamma)?)),
    }
}

inventory::submit! {
    GuidancePlugin {
        name: "mmps",
        description: "moment matching, N(y | A x_hat, Sigma_y + A V A^T) with Tweedie's V, by CG: iterations (default 2), covariance (\"tweedie\", default, or \"blended\" for epsilon-output networks)",
        build: |p| {
            let m: Mmps = params(p)?;
            Ok(Box::new(Mmps::new(m.iterations)?.with_covariance(m.covariance)))
        },
    }
}

inventory::submit! {
    GuidancePlugin {
        name: "dps",
        description: "diffusion posterior sampling, per-sample norm: zeta",
        build: |p| Ok(Box::new(Dps::new(params::<Dps>(p)?.zeta)?)),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldParams {
    ops: Vec<crate::observe::field::FieldOp>,
    sigma: f64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StrideParams {
    stride: usize,
}

fn field_preset(
    p: &toml::Value,
    shape: TrajectoryShape,
    scenario: crate::observe::field::FieldScenario,
) -> Result<Box<dyn ObservationModel<DefaultBackend>>> {
    let NoParams {} = params(p)?;
    let grid = crate::observe::field::grid_of(shape)?;
    Ok(Box::new(scenario.build(shape.len, grid)?))
}

inventory::submit! {
    ObservationPlugin {
        name: "field",
        description: "pipeline on (u, v) fields: ops = [{every-state = {every = 4}}, {pool = {factor = 8}}, \"vorticity\", ...], sigma",
        build: |p, shape| {
            let f: FieldParams = params(p)?;
            let grid = crate::observe::field::grid_of(shape)?;
            Ok(Box::new(crate::observe::field::FieldObservation::new(shape.len, grid, f.ops, f.sigma)?))
        },
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-assimilation",
        description: "Kolmogorov: every 4th state, 8x8 mean pooling, sigma 0.1",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Assimilation),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-extrapolation",
        description: "Kolmogorov: states 0, 3, 6 pooled 4x, centre crop [4:12], sigma 0.01",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Extrapolation),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-saturation",
        description: "Kolmogorov: every 3rd state pooled 4x, vorticity w (grid units), w/(1+|w|), crop [2:14], sigma 0.05",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Saturation),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-subsampling",
        description: "Kolmogorov: every stride-th grid point of every state, sigma 0.1: stride",
        build: |p, shape| {
            let s: StrideParams = params(p)?;
            let grid = crate::observe::field::grid_of(shape)?;
            Ok(Box::new(crate::observe::field::FieldScenario::Subsampling(s.stride).build(shape.len, grid)?))
        },
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-circle",
        description: "Kolmogorov: vorticity (grid units) of the last state on the ring 0.4 < r^2 < 0.6, sigma 0.2 (y = 0.6)",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Circle),
    }
}

inventory::submit! {
    ObservationPlugin {
        name: "kolmogorov-loop",
        description: "Kolmogorov: loop closure x_1 - x_L, sigma 0.01 (y = 0)",
        build: |p, shape| field_preset(p, shape, crate::observe::field::FieldScenario::Loop),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "enkf",
        description: "stochastic EnKF, perturbed observations (Burgers et al. 1998): ensemble, inflation (1), rotate (false)",
        build: |p| Ok(Box::new(Enkf::new(Update::PerturbedObservations, params::<EnsembleSettings>(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "etkf",
        description: "ensemble transform Kalman filter, symmetric square root (Hunt et al. 2007): ensemble, inflation (1), rotate (false)",
        build: |p| Ok(Box::new(Enkf::new(Update::Etkf, params::<EnsembleSettings>(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "denkf",
        description: "deterministic EnKF (Sakov & Oke 2008): ensemble, inflation (1), rotate (false)",
        build: |p| Ok(Box::new(Enkf::new(Update::Denkf, params::<EnsembleSettings>(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "enks",
        description: "ensemble Kalman smoother over lag observation cycles, ETKF analysis of the stacked ensembles (Evensen & van Leeuwen 2000): ensemble, lag, inflation (1), rotate (false)",
        build: |p| Ok(Box::new(Enks::new(Update::Etkf, params(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "ensf",
        description: "Ensemble Score Filter (Bao, Zhang & Zhang 2024), training-free reverse SDE with the forecast ensemble's score: ensemble (20), steps (500), eps_alpha (0.5), eps_beta (0.025), prior (\"member\" or \"mixture\")",
        build: |p| Ok(Box::new(Ensf::new(params(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "letkf",
        description: "local ETKF with Gaspari-Cohn R-localisation on a periodic 1-D domain (Hunt et al. 2007): ensemble, radius, inflation (1), rotate (false)",
        build: |p| Ok(Box::new(letkf(params(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "var3d",
        description: "3D-Var, Kalman analysis of the forecast mean with B = background x climatological covariance: background",
        build: |p| Ok(Box::new(Var3d::new(params(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "var4d",
        description: "strong-constraint 4D-Var over sliding windows of lag observation cycles, incremental (Gauss-Newton outer loops, L-BFGS inner with the tangent-linear and adjoint models): lag, background (B = background x covariance), covariance (\"climatology\" or \"identity\"), outer (10), inner (100)",
        build: |p| Ok(Box::new(Var4d::new(params(p)?)?)),
    }
}

inventory::submit! {
    MethodPlugin {
        name: "climatology",
        description: "the long-run mean and variance of the system (no parameters)",
        build: |p| {
            params::<NoParams>(p)?;
            Ok(Box::new(Climatology::default()))
        },
    }
}

inventory::submit! {
    SmootherPlugin {
        name: "enks",
        description: "ensemble Kalman smoother over the whole window (Evensen & van Leeuwen 2000), one member per sample: analysis (\"enkf\" perturbed obs., \"etkf\", \"denkf\"), inflation (1)",
        build: |p| Ok(Box::new(WindowEnks::new(params(p)?)?)),
    }
}

inventory::submit! {
    SmootherPlugin {
        name: "letks",
        description: "local ensemble transform Kalman smoother over the window (the LETKF's weights applied to the earlier states; Kalnay & Yang 2010), one member per sample: radius, inflation (1), ensemble (the samples)",
        build: |p| Ok(Box::new(WindowLetks::new(params(p)?)?)),
    }
}

inventory::submit! {
    SmootherPlugin {
        name: "var4d-weak",
        description: "weak-constraint 4D-Var over the window (L-BFGS, adjoint gradient), samples from its Gauss-Newton Laplace posterior: model_noise (the model's), iterations (1000), laplace (true)",
        build: |p| Ok(Box::new(WeakVar4d::new(params(p)?)?)),
    }
}
