//! The performance model's predicted NPU time of the designs a transcription launched, for
//! `aiec run --device sim --timings`: each compiled [`super::kernels::Kernel`] carries its
//! prediction ([`crate::perf`], on the design's own device, one XRT dispatch included);
//! every launch adds it to a pending sum, which the backend's next op record attributes to
//! that op's kind and to the encoder window or the decoder step it belongs to.
//!
//! Phases follow the order Whisper runs its ops: a log-mel call starts a window; the
//! window's ops run until its first logits call, which ends the first decoder step; each
//! later logits call ends another step. The ops before the first logits are the window's
//! plus the first step's, so the window's time is that span less the mean of the later
//! steps (with a single step, the span is reported as the window's, its step included).
//!
//! The pending sum is process-wide: with several transcriptions at once (`aiec serve`) their
//! launches mix, which is why only `aiec run` prints it.

use std::sync::Mutex;
use std::time::Duration;

use aiec_runtime::backend::stats::OpKind;

static PENDING: Mutex<Duration> = Mutex::new(Duration::ZERO);

/// Adds one launch's predicted time.
pub(crate) fn add(d: Duration) {
    *PENDING.lock().unwrap_or_else(|p| p.into_inner()) += d;
}

fn take() -> Duration {
    std::mem::take(&mut *PENDING.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Predicted NPU time by op kind and by phase.
#[derive(Debug, Default)]
pub struct Predicted {
    pub per_kind: Vec<(OpKind, u64, Duration)>,
    pub windows: u64,
    /// From each window's log-mel to its first logits (inclusive).
    pub window_spans: Duration,
    /// Decoder steps after each window's first, and their time.
    pub later_steps: u64,
    pub later_steps_time: Duration,
    /// Every window's first step.
    pub first_steps: u64,
    since_logits: Duration,
    in_window: bool,
}

impl Predicted {
    /// Attributes the pending launches to a call of `kind`.
    pub(crate) fn record(&mut self, kind: OpKind) {
        self.record_time(kind, take());
    }

    /// [`Predicted::record`] of a call whose launches took `d`.
    fn record_time(&mut self, kind: OpKind, d: Duration) {
        match self.per_kind.iter_mut().find(|(k, _, _)| *k == kind) {
            Some(e) => {
                e.1 += 1;
                e.2 += d;
            }
            None => self.per_kind.push((kind, 1, d)),
        }
        if kind == OpKind::LogMel {
            self.windows += 1;
            self.in_window = true;
        }
        if self.in_window {
            self.window_spans += d;
        } else {
            self.since_logits += d;
        }
        if kind == OpKind::Logits {
            if self.in_window {
                self.first_steps += 1;
                self.in_window = false;
            } else {
                self.later_steps += 1;
                self.later_steps_time += std::mem::take(&mut self.since_logits);
            }
        }
    }

    pub fn total(&self) -> Duration {
        self.per_kind.iter().map(|e| e.2).sum()
    }

    /// The mean decoder step (steps after a window's first), if any ran.
    pub fn per_step(&self) -> Option<Duration> {
        (self.later_steps > 0).then(|| self.later_steps_time / self.later_steps as u32)
    }

    /// The mean encoder window (its span less one mean step).
    pub fn per_window(&self) -> Option<Duration> {
        (self.windows > 0).then(|| {
            let step = self.per_step().unwrap_or_default() * self.first_steps as u32;
            self.window_spans.saturating_sub(step) / self.windows as u32
        })
    }

    /// The `--timings` lines.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (kind, calls, d) in &self.per_kind {
            out.push_str(&format!(
                "  {:<12} {calls:>6} calls  predicted NPU {:>10.3} ms\n",
                kind.name(),
                d.as_secs_f64() * 1e3
            ));
        }
        let ms = |d: Option<Duration>| match d {
            Some(d) => format!("{:.3} ms", d.as_secs_f64() * 1e3),
            None => "-".to_string(),
        };
        out.push_str(&format!(
            "  total {:.3} ms; per encoder window {} ({} windows); per decoder step {} ({} steps after each window's first)\n",
            self.total().as_secs_f64() * 1e3,
            ms(self.per_window()),
            self.windows,
            ms(self.per_step()),
            self.later_steps
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_split_at_log_mel_and_logits() {
        let mut p = Predicted::default();
        let ms = Duration::from_millis;
        // A window: mel 10 + encoder 90, then its first step 5 (linear 3 + logits 2), two
        // more steps of 5.
        for (kind, d) in [
            (OpKind::LogMel, 10),
            (OpKind::Linear, 90),
            (OpKind::Linear, 3),
            (OpKind::Logits, 2),
            (OpKind::Linear, 3),
            (OpKind::Logits, 2),
            (OpKind::Linear, 3),
            (OpKind::Logits, 2),
        ] {
            p.record_time(kind, ms(d));
        }
        assert_eq!(p.total(), ms(115));
        assert_eq!(p.per_step(), Some(ms(5)));
        assert_eq!(p.per_window(), Some(ms(100)));
        assert_eq!(p.windows, 1);
    }
}
