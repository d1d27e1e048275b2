//! Object FIFO semantics as counters, independent of threads and memory.
//!
//! A FIFO is a ring of `depth` buffers. Buffers are numbered by a running sequence number;
//! buffer `k` lives in slot `k % depth`. Each side has one or more *cursors*: normally one
//! producer and one cursor per consumer tile (a broadcast); a memtile link adds cursors so that
//! each DMA channel of a split reads (or each channel of a join writes) independently.
//! Buffer `k` is *filled* once every producer cursor has released it and *free again* once every
//! consumer cursor has released it, which is how the lock pairs of the hardware behave.
//!
//! Acquire follows mlir-aie: `acquire(n)` means "hold n buffers"; buffers already held count, so
//! only the difference is taken (the objectFifo stateful transform does the same).

/// One end of a FIFO held by one actor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Buffers this cursor has released (its next buffer is number `released`).
    pub released: u64,
    /// Buffers acquired and not yet released.
    pub held: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Produce,
    Consume,
}

#[derive(Debug, Clone)]
pub(crate) struct FifoState {
    pub depth: u64,
    pub producers: Vec<Cursor>,
    pub consumers: Vec<Cursor>,
}

impl FifoState {
    pub fn new(depth: u32, producer_cursors: usize, consumer_cursors: usize) -> Self {
        Self {
            depth: u64::from(depth),
            producers: vec![Cursor::default(); producer_cursors],
            consumers: vec![Cursor::default(); consumer_cursors],
        }
    }

    /// Buffers released by every producer cursor.
    pub fn filled_total(&self) -> u64 {
        self.producers.iter().map(|c| c.released).min().unwrap_or(0)
    }

    /// Buffers released by every consumer cursor.
    pub fn freed_total(&self) -> u64 {
        self.consumers.iter().map(|c| c.released).min().unwrap_or(0)
    }

    /// Buffers filled and not yet freed: what a look at the locks would show.
    pub fn occupancy(&self) -> u64 {
        self.filled_total() - self.freed_total()
    }

    pub fn cursor(&self, side: Side, cursor: usize) -> Cursor {
        match side {
            Side::Produce => self.producers[cursor],
            Side::Consume => self.consumers[cursor],
        }
    }

    fn cursor_mut(&mut self, side: Side, cursor: usize) -> &mut Cursor {
        match side {
            Side::Produce => &mut self.producers[cursor],
            Side::Consume => &mut self.consumers[cursor],
        }
    }

    /// How many more buffers this cursor could take right now.
    fn available(&self, side: Side, cursor: usize) -> u64 {
        let c = self.cursor(side, cursor);
        let next = c.released + c.held;
        let limit = match side {
            Side::Produce => self.freed_total() + self.depth,
            Side::Consume => self.filled_total(),
        };
        limit.saturating_sub(next)
    }

    /// Whether `acquire(want)` would return without blocking.
    pub fn can_acquire(&self, side: Side, cursor: usize, want: u64) -> bool {
        let held = self.cursor(side, cursor).held;
        held >= want || self.available(side, cursor) >= want - held
    }

    /// Takes the buffers if they are there; `false` means the caller must wait.
    pub fn try_acquire(&mut self, side: Side, cursor: usize, want: u64) -> bool {
        if !self.can_acquire(side, cursor, want) {
            return false;
        }
        let c = self.cursor_mut(side, cursor);
        c.held = c.held.max(want);
        true
    }

    /// Releases the `n` oldest held buffers; `Err(held)` if fewer are held.
    pub fn release(&mut self, side: Side, cursor: usize, n: u64) -> Result<(), u64> {
        let c = self.cursor_mut(side, cursor);
        if c.held < n {
            return Err(c.held);
        }
        c.held -= n;
        c.released += n;
        Ok(())
    }

    /// Slot of the `index`-th held buffer (oldest first), if held.
    pub fn slot(&self, side: Side, cursor: usize, index: u64) -> Option<usize> {
        let c = self.cursor(side, cursor);
        (index < c.held).then(|| ((c.released + index) % self.depth) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One buffer through `cursor` of `side`: acquired (it must be free) and released.
    fn acquire_and_release_one(f: &mut FifoState, side: Side, cursor: usize) {
        assert!(f.try_acquire(side, cursor, 1));
        f.release(side, cursor, 1).unwrap();
    }

    #[test]
    fn producer_blocks_when_ring_is_full_and_consumer_frees_in_order() {
        let mut f = FifoState::new(2, 1, 1);
        assert!(f.try_acquire(Side::Produce, 0, 1));
        assert_eq!(f.slot(Side::Produce, 0, 0), Some(0));
        f.release(Side::Produce, 0, 1).unwrap();
        assert!(f.try_acquire(Side::Produce, 0, 1));
        assert_eq!(f.slot(Side::Produce, 0, 0), Some(1));
        f.release(Side::Produce, 0, 1).unwrap();
        // Ring full: two filled, none freed.
        assert!(!f.try_acquire(Side::Produce, 0, 1));
        assert_eq!(f.occupancy(), 2);
        assert!(f.try_acquire(Side::Consume, 0, 2));
        assert_eq!(f.slot(Side::Consume, 0, 1), Some(1));
        f.release(Side::Consume, 0, 1).unwrap();
        assert!(f.try_acquire(Side::Produce, 0, 1));
        assert_eq!(f.slot(Side::Produce, 0, 0), Some(0));
    }

    #[test]
    fn acquire_counts_buffers_already_held() {
        let mut f = FifoState::new(3, 1, 1);
        assert!(f.try_acquire(Side::Produce, 0, 2));
        assert!(f.try_acquire(Side::Produce, 0, 2));
        assert_eq!(f.cursor(Side::Produce, 0).held, 2);
        assert!(f.try_acquire(Side::Produce, 0, 3));
        assert!(!f.try_acquire(Side::Produce, 0, 4));
    }

    /// With two cursors on the `many` side, `other` can take the buffer only once both
    /// passed it on.
    fn other_side_waits_for_both_cursors(f: &mut FifoState, many: Side, other: Side) {
        acquire_and_release_one(f, many, 0);
        assert!(!f.can_acquire(other, 0, 1));
        acquire_and_release_one(f, many, 1);
        assert!(f.can_acquire(other, 0, 1));
    }

    #[test]
    fn broadcast_frees_only_when_every_consumer_released() {
        let mut f = FifoState::new(1, 1, 2);
        acquire_and_release_one(&mut f, Side::Produce, 0);
        other_side_waits_for_both_cursors(&mut f, Side::Consume, Side::Produce);
        // Each consumer saw the one buffer once.
        assert!(!f.can_acquire(Side::Consume, 0, 1));
        assert!(!f.can_acquire(Side::Consume, 1, 1));
    }

    #[test]
    fn join_fills_only_when_every_producer_released() {
        let mut f = FifoState::new(1, 2, 1);
        other_side_waits_for_both_cursors(&mut f, Side::Produce, Side::Consume);
    }

    #[test]
    fn more_than_depth_can_never_be_acquired_and_over_release_is_refused() {
        let mut f = FifoState::new(2, 1, 1);
        assert!(!f.try_acquire(Side::Produce, 0, 3));
        assert_eq!(f.release(Side::Consume, 0, 1), Err(0));
    }
}
