//! Experiments: the paper's studies as library calls, each composed from the math core and the
//! systems below it. Presets (the Lorenz-63 `lo`/`hi` observations, the oracle's problem)
//! live with the experiment that uses them.
//!
//! | experiment | module |
//! |---|---|
//! | dataset generation (resumable, byte-identical per seed) | [`generate`] |
//! | the exact linear-Gaussian oracle | [`oracle`] |
//! | posteriors of a trained prior (vectors and fields) in physical units | [`posterior`] |
//! | the classical window smoothers on SDA's observations | [`classical`] |
//! | the Figure-2 evaluation against particle filters | [`evaluate`] |
//! | SDA as a filter: sliding windows scored state by state | [`filtering`] |
//! | the Lorenz-63 experiment (§4.1) | [`lorenz`] |
//! | the Kolmogorov-flow experiment (§4.2) | [`flow`] |
//! | markdown tables of the results | [`markdown`] |

pub mod baseline;
pub mod classical;
pub mod evaluate;
pub mod filtering;
pub mod flow;
pub mod generate;
pub mod lorenz;
pub mod markdown;
pub mod oracle;
pub mod posterior;
