//! Bounded concurrency with a bounded queue. A request takes a [`Ticket`] before its upload
//! is read, so at most `workers + queue` uploads are ever held in memory; a worker
//! [`Permit`] is then awaited in arrival order. When every ticket is out the request is
//! turned away at once (429) instead of piling up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Gate {
    workers: Arc<Semaphore>,
    tickets: Arc<Semaphore>,
    /// Requests between ticket and permit, for logs and `/health`.
    waiting: AtomicUsize,
    max_concurrent: usize,
    /// Moving average of a transcription's seconds (f64 bits), for `Retry-After`.
    mean_seconds: AtomicU64,
}

/// A place in the system (queue or worker); dropping it frees the place.
pub struct Ticket {
    _place: OwnedSemaphorePermit,
}

/// The right to run one transcription; held until the decoding thread ends, even if the
/// request gave up waiting for it, so the worker bound holds.
pub struct Permit {
    _worker: OwnedSemaphorePermit,
    _ticket: Ticket,
}

impl Gate {
    pub fn new(max_concurrent: usize, queue: usize) -> Self {
        Self {
            workers: Arc::new(Semaphore::new(max_concurrent)),
            tickets: Arc::new(Semaphore::new(max_concurrent + queue)),
            waiting: AtomicUsize::new(0),
            max_concurrent,
            mean_seconds: AtomicU64::new(1.0f64.to_bits()),
        }
    }

    /// Feeds one transcription's duration into the average behind [`Gate::retry_after`].
    pub fn record(&self, seconds: f64) {
        // Races between two updates lose one sample at worst; the average is a hint.
        let mean = f64::from_bits(self.mean_seconds.load(Ordering::Relaxed));
        let updated = 0.8 * mean + 0.2 * seconds;
        self.mean_seconds
            .store(updated.to_bits(), Ordering::Relaxed);
    }

    /// Seconds after which a refused client may find a place: the time the requests now
    /// waiting need to drain through the workers, at least 1 and at most 60.
    pub fn retry_after(&self) -> u32 {
        let mean = f64::from_bits(self.mean_seconds.load(Ordering::Relaxed));
        let ahead = (self.waiting() + self.max_concurrent) as f64 / self.max_concurrent as f64;
        (ahead * mean).ceil().clamp(1.0, 60.0) as u32
    }

    /// A ticket, or `None` when workers and queue are all taken.
    pub fn admit(&self) -> Option<Ticket> {
        let place = self.tickets.clone().try_acquire_owned().ok()?;
        Some(Ticket { _place: place })
    }

    /// Waits for a free worker (fair: first come, first served).
    pub async fn run(&self, ticket: Ticket) -> Permit {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .expect("the worker semaphore is never closed");
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Permit {
            _worker: worker,
            _ticket: ticket,
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tickets_are_bounded_by_workers_plus_queue() {
        let gate = Gate::new(1, 2);
        let held: Vec<Ticket> = (0..3).map(|_| gate.admit().unwrap()).collect();
        assert!(gate.admit().is_none(), "a fourth request must be refused");
        drop(held);
        assert!(gate.admit().is_some(), "freed places are reusable");
    }

    #[test]
    fn retry_after_grows_with_the_decoding_time_and_stays_bounded() {
        let gate = Gate::new(2, 4);
        assert_eq!(gate.retry_after(), 1, "the 1 s prior, one round of workers");
        for _ in 0..50 {
            gate.record(10.0);
        }
        assert_eq!(gate.retry_after(), 10);
        for _ in 0..50 {
            gate.record(1000.0);
        }
        assert_eq!(gate.retry_after(), 60);
    }

    #[tokio::test]
    async fn a_permit_keeps_its_ticket_until_dropped() {
        let gate = Gate::new(1, 0);
        let permit = gate.run(gate.admit().unwrap()).await;
        assert!(gate.admit().is_none());
        drop(permit);
        assert!(gate.admit().is_some());
    }
}
