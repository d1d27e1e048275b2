//! The acquire/release discipline of a core program: never more buffers held than a FIFO's
//! depth, releases only of held buffers, no use of a buffer after its release, and loop
//! bodies that leave every FIFO as they found it.

use std::collections::BTreeMap;

use crate::design::visit::{walk, CoreVisitor, FifoUse};
use crate::design::{BufArg, CoreStmt, Design, DesignInfo, Kernel, Port};

use super::super::MlirError;

/// A live acquire while walking a core program.
struct Held {
    fifo: String,
    port: Port,
    count: u32,
    binding: String,
    valid: bool,
}

pub(super) struct Discipline<'d> {
    design: &'d Design,
    info: &'d DesignInfo,
    /// `aie.core(aie.tile(c, r))`, naming the core in errors.
    op: String,
    held: Vec<Held>,
    /// Where the innermost loop body's acquires start in `held`.
    scope_start: usize,
}

impl<'d> Discipline<'d> {
    pub(super) fn check(
        design: &'d Design,
        info: &'d DesignInfo,
        op: String,
        program: &[CoreStmt],
    ) -> Result<(), MlirError> {
        let mut d = Discipline {
            design,
            info,
            op,
            held: Vec::new(),
            scope_start: 0,
        };
        walk(&mut d, program)
    }

    fn outstanding(&self, fifo: &str, port: Port) -> u32 {
        self.held
            .iter()
            .filter(|h| h.fifo == fifo && h.port == port && h.valid)
            .map(|h| h.count)
            .sum()
    }

    /// Buffers held per (FIFO, is-produce), for the loop balance check.
    fn holdings(&self) -> BTreeMap<(String, bool), u32> {
        self.held
            .iter()
            .filter(|h| h.valid)
            .fold(BTreeMap::new(), |mut m, h| {
                *m.entry((h.fifo.clone(), h.port == Port::Produce))
                    .or_default() += h.count;
                m
            })
    }

    fn depth(&self, fifo: &str) -> u32 {
        // `validate` has resolved every FIFO a program names.
        self.info
            .fifo_index
            .get(fifo)
            .map(|&i| self.design.fifos[i].depth)
            .unwrap_or(0)
    }
}

impl CoreVisitor for Discipline<'_> {
    type Error = MlirError;

    fn visit_loop(&mut self, count: u64, body: &[CoreStmt]) -> Result<(), MlirError> {
        if count == 0 {
            return Err(MlirError::invalid(
                &self.op,
                "scf.for with a trip count of 0",
            ));
        }
        let entry = self.holdings();
        let outer_start = std::mem::replace(&mut self.scope_start, self.held.len());
        walk(self, body)?;
        // Every iteration must leave the FIFOs as it found them, or the loop leaks or
        // over-releases buffers.
        let exit = self.holdings();
        if let Some((fifo, produce)) = exit
            .keys()
            .chain(entry.keys())
            .find(|k| exit.get(*k) != entry.get(*k))
            .cloned()
        {
            let port = if produce { "Produce" } else { "Consume" };
            let key = (fifo.clone(), produce);
            return Err(MlirError::invalid(
                &self.op,
                format!(
                    "scf.for body is unbalanced on @{fifo}({port}): {} buffers held on entry, {} on exit",
                    entry.get(&key).copied().unwrap_or(0),
                    exit.get(&key).copied().unwrap_or(0)
                ),
            ));
        }
        // Bindings made inside a loop body do not outlive it (the body is balanced).
        self.held.truncate(self.scope_start);
        self.scope_start = outer_start;
        Ok(())
    }

    fn visit_acquire(&mut self, u: FifoUse, binding: &str) -> Result<(), MlirError> {
        let FifoUse { fifo, port, count } = u;
        let what = format!(
            "{}: aie.objectfifo.acquire @{fifo}({port:?}, {count})",
            self.op
        );
        let total = self.outstanding(fifo, port) + count;
        let depth = self.depth(fifo);
        if total > depth {
            return Err(MlirError::invalid(
                what,
                format!("{total} buffers held at once but @{fifo} has depth {depth}"),
            ));
        }
        // A name may be reused once the buffers it named are released.
        if self.held[self.scope_start..]
            .iter()
            .any(|h| h.binding == binding && h.valid)
        {
            return Err(MlirError::invalid(
                what,
                format!("binding `{binding}` defined twice"),
            ));
        }
        self.held.push(Held {
            fifo: fifo.to_string(),
            port,
            count,
            binding: binding.to_string(),
            valid: true,
        });
        Ok(())
    }

    fn visit_release(&mut self, u: FifoUse) -> Result<(), MlirError> {
        let FifoUse { fifo, port, count } = u;
        let what = format!(
            "{}: aie.objectfifo.release @{fifo}({port:?}, {count})",
            self.op
        );
        let have = self.outstanding(fifo, port);
        if count == 0 || count > have {
            return Err(MlirError::invalid(
                what,
                format!("releases {count} buffers but {have} are held"),
            ));
        }
        // Buffers are released oldest first; a binding whose buffers are all gone can no
        // longer be used.
        let mut left = count;
        for h in self
            .held
            .iter_mut()
            .filter(|h| h.fifo == fifo && h.port == port && h.valid)
        {
            if left == 0 {
                break;
            }
            let take = left.min(h.count);
            h.count -= take;
            left -= take;
            if h.count == 0 {
                h.valid = false;
            }
        }
        Ok(())
    }

    fn visit_kernel(&mut self, kernel: &Kernel, args: &[BufArg]) -> Result<(), MlirError> {
        for a in args {
            let message = match self.held.iter().rev().find(|h| h.binding == a.binding) {
                Some(h) if h.valid && a.index < h.count => continue,
                Some(h) if h.valid => format!(
                    "kernel `{}` uses `{}`[{}] but only {} buffers were acquired",
                    kernel.name, a.binding, a.index, h.count
                ),
                Some(_) => format!(
                    "kernel `{}` uses `{}` after its release",
                    kernel.name, a.binding
                ),
                None => format!(
                    "kernel `{}` uses unknown binding `{}`",
                    kernel.name, a.binding
                ),
            };
            return Err(MlirError::invalid(&self.op, message));
        }
        Ok(())
    }
}
