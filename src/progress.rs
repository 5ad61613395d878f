//! Progress of long work, on a terminal and off it: indicatif's bar when standard error is a
//! terminal; otherwise (a Slurm log, CI, `tee`) a plain line at most every
//! [`plain_interval`] seconds — `what: pos/len (pct), rate, ETA, message` — and one at the
//! end, so that a batch job's log shows it is alive and how long it will take.
//!
//! Reports nest: the bars of one process share one [`MultiProgress`], so work inside work (the
//! sampler's steps inside an evaluation's observations) draws a second bar below the first, and
//! off a terminal both print their lines.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The process's one set of terminal bars, drawn on standard error.
fn terminal_bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// Seconds between plain progress lines: `SDA_PROGRESS_SECONDS` if set, else 30.
pub fn plain_interval() -> Duration {
    let secs = std::env::var("SDA_PROGRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(30.0);
    Duration::from_secs_f64(secs)
}

/// A progress report of `len` units of work (steps, trajectories, observations).
pub struct Progress {
    bar: ProgressBar,
    /// Whether `bar` is one of [`terminal_bars`] (removed from them when done).
    drawn: bool,
    plain: Option<Plain>,
}

struct Plain {
    what: String,
    unit: String,
    len: u64,
    pos: AtomicU64,
    /// Units already done when this run started (a resumed training): not counted in the rate.
    base: AtomicU64,
    start: Instant,
    every: Duration,
    last: Mutex<Instant>,
    message: Mutex<String>,
}

impl Progress {
    /// A report of `len` `unit`s of `what` (e.g. `train`, `steps`), drawn with the indicatif
    /// `template` on a terminal; nothing at all unless `show`.
    pub fn new(len: u64, what: &str, unit: &str, template: &str, show: bool) -> Self {
        if !show {
            return Self::hidden();
        }
        if std::io::stderr().is_terminal() {
            let bar = terminal_bars().add(ProgressBar::new(len));
            bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
            if template.starts_with("{msg}") {
                bar.set_message(what.to_string());
            }
            return Self {
                bar,
                drawn: true,
                plain: None,
            };
        }
        let now = Instant::now();
        Self {
            bar: ProgressBar::hidden(),
            drawn: false,
            plain: Some(Plain {
                what: what.into(),
                unit: unit.into(),
                len,
                pos: AtomicU64::new(0),
                base: AtomicU64::new(0),
                start: now,
                every: plain_interval(),
                last: Mutex::new(now),
                message: Mutex::new(String::new()),
            }),
        }
    }

    /// No report.
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
            drawn: false,
            plain: None,
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(p) = &self.plain {
            p.pos.fetch_add(n, Ordering::Relaxed);
            p.maybe_print(false);
        }
    }

    /// The units done so far.
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        if let Some(p) = &self.plain {
            p.pos.store(pos, Ordering::Relaxed);
            p.maybe_print(false);
        }
    }

    /// A resumed run starts with `pos` units done before it; the rate and the ETA count only
    /// the units done after them.
    pub fn resume_from(&self, pos: u64) {
        self.bar.set_position(pos);
        self.bar.reset_eta();
        if let Some(p) = &self.plain {
            p.pos.store(pos, Ordering::Relaxed);
            p.base.store(pos, Ordering::Relaxed);
        }
    }

    /// The message beside the count (e.g. the last loss).
    pub fn set_message(&self, message: String) {
        if let Some(p) = &self.plain {
            *p.message.lock().unwrap_or_else(|e| e.into_inner()) = message.clone();
        }
        self.bar.set_message(message);
    }

    /// Runs `f` (which prints) without the bar drawn over its output.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// The end: the bar is cleared; off a terminal a last line is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        if let Some(p) = &self.plain {
            p.maybe_print(true);
        }
    }
}

impl Drop for Progress {
    /// A report dropped unfinished (its work failed) leaves no bar on the terminal.
    fn drop(&mut self) {
        if self.drawn {
            self.bar.finish_and_clear();
            terminal_bars().remove(&self.bar);
        }
    }
}

impl Plain {
    fn maybe_print(&self, last: bool) {
        if let Some(line) = self.line(last) {
            eprintln!("{line}");
        }
    }

    /// The line due now, if any: at most one every `every`, none for the last unit (the line
    /// of `finish`, `last`, says how long the whole took).
    fn line(&self, last: bool) -> Option<String> {
        let mut printed = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let pos = self.pos.load(Ordering::Relaxed);
        if !last && (now.duration_since(*printed) < self.every || pos >= self.len) {
            return None;
        }
        *printed = now;
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let base = self.base.load(Ordering::Relaxed);
        let here = pos.saturating_sub(base);
        let rate = here as f64 / elapsed.max(1e-9);
        let eta = match (last, rate > 0.0) {
            (true, _) => format!("done in {elapsed:.0} s"),
            (false, true) => format!("ETA {:.0} s", self.len.saturating_sub(pos) as f64 / rate),
            (false, false) => "ETA unknown".into(),
        };
        let speed = if here == 0 && base > 0 {
            format!("all {base} done before this run")
        } else {
            format!("{rate:.3} {}/s", self.unit)
        };
        let message = self.message.lock().unwrap_or_else(|e| e.into_inner());
        let pct = 100.0 * pos as f64 / self.len.max(1) as f64;
        Some(format!(
            "{}: {pos}/{} {} ({pct:.0}%), {speed}, {eta}{}{}",
            self.what,
            self.len,
            self.unit,
            if message.is_empty() { "" } else { ", " },
            message
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(len: u64, every: Duration) -> Plain {
        let long_ago = Instant::now() - Duration::from_secs(3600);
        Plain {
            what: "sampling".into(),
            unit: "steps".into(),
            len,
            pos: AtomicU64::new(0),
            base: AtomicU64::new(0),
            start: long_ago,
            every,
            last: Mutex::new(long_ago),
            message: Mutex::new(String::new()),
        }
    }

    #[test]
    fn plain_lines_are_spaced_and_the_last_unit_leaves_the_end_to_finish() {
        let p = plain(4, Duration::from_secs(3600));
        p.pos.store(1, Ordering::Relaxed);
        let first = p
            .line(false)
            .expect("the first line is due (an hour since the start)");
        assert!(first.starts_with("sampling: 1/4 steps (25%)"), "{first}");
        assert!(first.contains("ETA"), "{first}");
        p.pos.store(2, Ordering::Relaxed);
        assert_eq!(p.line(false), None, "a second line within `every`");
        let q = plain(4, Duration::ZERO);
        q.pos.store(4, Ordering::Relaxed);
        assert_eq!(q.line(false), None, "the last unit's line is finish's");
        let end = q.line(true).expect("finish always prints");
        assert!(
            end.starts_with("sampling: 4/4 steps (100%)") && end.contains("done in"),
            "{end}"
        );
    }

    /// A resumed run's rate counts only the units done in it: 3 000 of 10 000 done before,
    /// 3 600 more in an hour is 1 per second (not 6 600/3 600), and a run with nothing left
    /// says so.
    #[test]
    fn a_resumed_run_rates_only_its_own_units() {
        let p = plain(10_000, Duration::ZERO);
        p.base.store(3_000, Ordering::Relaxed);
        p.pos.store(6_600, Ordering::Relaxed);
        let end = p.line(true).expect("finish always prints");
        let rate: f64 = end
            .split(", ")
            .nth(1)
            .and_then(|r| r.strip_suffix(" steps/s"))
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no rate in {end}"));
        assert!((rate - 1.0).abs() < 0.01, "{end}");
        let report = |p: Plain| Progress {
            bar: ProgressBar::hidden(),
            drawn: false,
            plain: Some(p),
        };
        let last = |r: &Progress| r.plain.as_ref().and_then(|p| p.line(true));
        let q = report(plain(4, Duration::ZERO));
        q.resume_from(4);
        let end = last(&q).expect("finish prints");
        assert!(
            end.contains("all 4 done before this run") && !end.contains("steps/s"),
            "{end}"
        );
        // progress reported by position (the baselines' cycles) is not a resumption
        let r = report(plain(10_000, Duration::ZERO));
        r.set_position(3_600);
        let end = last(&r).expect("finish prints");
        assert!(end.contains("1.000 steps/s"), "{end}");
    }
}
