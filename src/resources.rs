//! What a run may ask of the machine: an estimate of the memory a run needs is checked before
//! anything is allocated, so that a size like `--samples 18446744073709551615` is refused with
//! the estimate and the limit instead of overflowing a capacity or aborting on allocation.

use crate::{Error, Result};

/// The memory this process may use, in bytes: the machine's (`MemTotal` in `/proc/meminfo`),
/// or the control group's limit when lower; `None` where unknown (then only sizes that
/// overflow 64 bits are refused).
pub fn memory_limit() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The product of `factors`, or `None` when it overflows 128 bits.
pub fn product(factors: &[usize]) -> Option<u128> {
    factors
        .iter()
        .try_fold(1u128, |acc, &f| acc.checked_mul(f as u128))
}

/// Refuses a run of `what` (e.g. `sampling --samples 1024 × L 65 × D 3`) whose estimated
/// memory, `bytes` (`None`: the estimate itself overflowed), exceeds the machine's
/// ([`memory_limit`]); the error gives the estimate and the limit.
pub fn check_memory(what: &str, bytes: Option<u128>) -> Result<()> {
    let gib = |b: u128| b as f64 / (1u128 << 30) as f64;
    let limit = memory_limit();
    match (bytes, limit) {
        (None, _) => Err(Error::Invalid(format!(
            "{what}: the sizes overflow (more than 2^128 bytes); reduce them"
        ))),
        (Some(b), Some(l)) if b > l as u128 => Err(Error::Invalid(format!(
            "{what} needs about {:.1} GiB, more than this machine's {:.1} GiB; reduce the sizes",
            gib(b),
            gib(l as u128)
        ))),
        (Some(b), None) if b > u64::MAX as u128 => Err(Error::Invalid(format!(
            "{what} needs about {:.3e} GiB; reduce the sizes",
            gib(b)
        ))),
        _ => Ok(()),
    }
}
