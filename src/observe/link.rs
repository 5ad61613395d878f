//! Pointwise links after a linear observation: `y = g(A_lin x) + η`, `g` applied to each value.
//!
//! The non-linear observation of the Ensemble Score Filter paper (Bao, Zhang & Zhang 2024) is
//! `y_j = arctan(x_{s_j}) + η_j` in physical units; on standardised trajectories
//! (`x = mean + scale · z`) it is [`Link::Arctan`] with `offset = mean`, `scale = scale`
//! applied to the picked values of z. A model that is such a composition says so
//! ([`super::ObservationModel::link`]), so that the classical methods, which see one Gaussian
//! observation of each state on the host, can read it with its exact Jacobian.

use burn::tensor::{backend::Backend, Tensor};

use crate::{Error, Result};

/// The affine argument of an arctan link: `y = arctan(offset + scale · u)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArctanLink {
    /// The value added before the arctan (the standardisation's mean, for arctan of the
    /// physical value).
    pub offset: f64,
    /// The factor before the arctan (the standardisation's scale).
    pub scale: f64,
}

/// A pointwise function `g` applied to each value of a linear observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// `g(u) = arctan(offset + scale · u)`, `g′(u) = scale / (1 + (offset + scale · u)²)`.
    Arctan(ArctanLink),
}

impl Link {
    /// The link, checked: finite offset, finite non-zero scale.
    pub fn arctan(link: ArctanLink) -> Result<Self> {
        if !(link.offset.is_finite() && link.scale.is_finite() && link.scale != 0.0) {
            return Err(Error::Invalid(format!(
                "arctan link: offset must be finite and scale finite and non-zero, got offset \
                 {} and scale {}",
                link.offset, link.scale
            )));
        }
        Ok(Self::Arctan(link))
    }

    /// `g(u)`.
    pub fn value(&self, u: f64) -> f64 {
        match self {
            Self::Arctan(a) => (a.offset + a.scale * u).atan(),
        }
    }

    /// `g′(u)`.
    pub fn derivative(&self, u: f64) -> f64 {
        match self {
            Self::Arctan(a) => {
                let v = a.offset + a.scale * u;
                a.scale / (1.0 + v * v)
            }
        }
    }

    /// `g` applied to every value of a tensor, differentiably.
    pub fn apply<B: Backend, const D: usize>(&self, u: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Arctan(a) => (u * a.scale + a.offset).atan(),
        }
    }

    /// A short description, e.g. `arctan(2.344 + 3.641·u)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Arctan(a) => format!("arctan({} + {}·u)", a.offset, a.scale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{from_host, to_host, DefaultBackend};

    #[test]
    fn arctan_value_derivative_and_tensor_agree() {
        let link = Link::arctan(ArctanLink {
            offset: 2.0,
            scale: 3.0,
        })
        .unwrap();
        let us = [-2.0, -0.5, 0.0, 0.3, 4.0];
        let device = Default::default();
        let t = to_host(link.apply(from_host::<DefaultBackend, 1>(&us, [5], &device)));
        for (&u, &tu) in us.iter().zip(&t) {
            assert!((link.value(u) - (2.0 + 3.0 * u).atan()).abs() < 1e-12);
            assert!(
                (tu - link.value(u)).abs() < 1e-5,
                "{tu} vs {}",
                link.value(u)
            );
            // central difference of g against g′
            let h = 1e-5;
            let fd = (link.value(u + h) - link.value(u - h)) / (2.0 * h);
            assert!((fd - link.derivative(u)).abs() < 1e-7, "{fd}");
        }
        for (offset, scale) in [(f64::NAN, 1.0), (0.0, 0.0), (0.0, f64::INFINITY)] {
            let err = Link::arctan(ArctanLink { offset, scale }).unwrap_err();
            assert!(err.to_string().contains("arctan link"), "{err}");
        }
    }
}
