//! Bounded concurrency with a bounded queue. A request takes a [`Ticket`] before its upload
//! is read, so at most `workers + queue` uploads are ever held in memory; a worker
//! [`Permit`] is then awaited in arrival order. When every ticket is out the request is
//! turned away at once (429) instead of piling up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Gate {
    workers: Arc<Semaphore>,
    tickets: Arc<Semaphore>,
    /// Requests between ticket and permit, for logs and `/health`.
    waiting: AtomicUsize,
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
        }
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

    #[tokio::test]
    async fn a_permit_keeps_its_ticket_until_dropped() {
        let gate = Gate::new(1, 0);
        let permit = gate.run(gate.admit().unwrap()).await;
        assert!(gate.admit().is_none());
        drop(permit);
        assert!(gate.admit().is_some());
    }
}
