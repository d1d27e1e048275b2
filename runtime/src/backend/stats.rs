//! Per-op-kind launch counts and times of a backend, for `--timings` and for the test that
//! every tensor op of the forward went through the backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The kinds of tensor op a [`super::Backend`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    LogMel,
    Conv,
    Linear,
    LayerNorm,
    Attention,
    KvWrite,
    KvReorder,
    Gelu,
    Add,
    Logits,
}

impl OpKind {
    pub const ALL: [OpKind; 10] = [
        OpKind::LogMel,
        OpKind::Conv,
        OpKind::Linear,
        OpKind::LayerNorm,
        OpKind::Attention,
        OpKind::KvWrite,
        OpKind::KvReorder,
        OpKind::Gelu,
        OpKind::Add,
        OpKind::Logits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::LogMel => "log-mel",
            OpKind::Conv => "conv1d",
            OpKind::Linear => "linear",
            OpKind::LayerNorm => "layernorm",
            OpKind::Attention => "attention",
            OpKind::KvWrite => "kv-write",
            OpKind::KvReorder => "kv-reorder",
            OpKind::Gelu => "gelu",
            OpKind::Add => "add",
            OpKind::Logits => "logits",
        }
    }
}

#[derive(Default)]
struct Counter {
    launches: AtomicU64,
    host_nanos: AtomicU64,
    device_nanos: AtomicU64,
}

/// Thread-safe counters, one set per [`OpKind`].
#[derive(Default)]
pub struct OpStats {
    counters: [Counter; OpKind::ALL.len()],
}

/// One op kind's totals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpTotals {
    pub kind: OpKind,
    pub launches: u64,
    /// Wall time the host spent in the calls.
    pub host: Duration,
    /// Time on the device: equal to `host` on the cpu, simulated time on `sim`.
    pub device: Duration,
}

impl OpStats {
    /// Records one launch of `kind`.
    pub fn record(&self, kind: OpKind, host: Duration, device: Duration) {
        let c = &self.counters[kind as usize];
        c.launches.fetch_add(1, Ordering::Relaxed);
        c.host_nanos
            .fetch_add(host.as_nanos() as u64, Ordering::Relaxed);
        c.device_nanos
            .fetch_add(device.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Runs `f` as one launch of `kind` on a device whose time is the host's.
    pub fn time<T>(&self, kind: OpKind, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let r = f();
        let t = start.elapsed();
        self.record(kind, t, t);
        r
    }

    pub fn get(&self, kind: OpKind) -> OpTotals {
        let c = &self.counters[kind as usize];
        OpTotals {
            kind,
            launches: c.launches.load(Ordering::Relaxed),
            host: Duration::from_nanos(c.host_nanos.load(Ordering::Relaxed)),
            device: Duration::from_nanos(c.device_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Every kind, in [`OpKind::ALL`] order.
    pub fn totals(&self) -> Vec<OpTotals> {
        OpKind::ALL.iter().map(|&k| self.get(k)).collect()
    }

    pub fn reset(&self) {
        for c in &self.counters {
            c.launches.store(0, Ordering::Relaxed);
            c.host_nanos.store(0, Ordering::Relaxed);
            c.device_nanos.store(0, Ordering::Relaxed);
        }
    }

    /// A table for `--timings`: launches, device and host time per kind with launches.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<11} {:>9} {:>11} {:>11}\n",
            "op", "launches", "device s", "host s"
        );
        for t in self.totals().iter().filter(|t| t.launches > 0) {
            s += &format!(
                "{:<11} {:>9} {:>11.3} {:>11.3}\n",
                t.kind.name(),
                t.launches,
                t.device.as_secs_f64(),
                t.host.as_secs_f64()
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_kind_and_resets() {
        let s = OpStats::default();
        s.record(
            OpKind::Linear,
            Duration::from_millis(2),
            Duration::from_millis(5),
        );
        s.record(
            OpKind::Linear,
            Duration::from_millis(1),
            Duration::from_millis(1),
        );
        let v = s.time(OpKind::Gelu, || 7);
        assert_eq!(v, 7);
        let lin = s.get(OpKind::Linear);
        assert_eq!(lin.launches, 2);
        assert_eq!(lin.host, Duration::from_millis(3));
        assert_eq!(lin.device, Duration::from_millis(6));
        assert_eq!(s.get(OpKind::Gelu).launches, 1);
        assert_eq!(s.get(OpKind::Attention).launches, 0);
        assert!(s.table().contains("linear"));
        s.reset();
        assert!(s.totals().iter().all(|t| t.launches == 0));
    }
}
