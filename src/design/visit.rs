//! One walk over a worker's control program. Every pass that reads core statements (lowering,
//! the describer, validation, the verifier's acquire/release discipline, the simulator's
//! fallback emitter) implements [`CoreVisitor`] for the statements it cares about; [`walk`]
//! owns the `match`.

use super::{BufArg, CoreStmt, Kernel, Port};

/// What an acquire or release names: `count` buffers of `fifo`'s `port` end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FifoUse<'s> {
    pub fifo: &'s str,
    pub port: Port,
    pub count: u32,
}

impl<'s> FifoUse<'s> {
    pub fn new(fifo: &'s str, port: Port, count: u32) -> Self {
        Self { fifo, port, count }
    }
}

/// Callbacks for each kind of [`CoreStmt`]. The defaults do nothing, except
/// [`CoreVisitor::visit_loop`], which walks the body in place (a visitor that needs a scope or
/// a new block per loop overrides it and calls [`walk`] itself).
pub trait CoreVisitor {
    type Error;

    fn visit_loop(&mut self, _count: u64, body: &[CoreStmt]) -> Result<(), Self::Error> {
        walk(self, body)
    }

    fn visit_acquire(&mut self, _use: FifoUse, _binding: &str) -> Result<(), Self::Error> {
        Ok(())
    }

    fn visit_release(&mut self, _use: FifoUse) -> Result<(), Self::Error> {
        Ok(())
    }

    fn visit_kernel(&mut self, _kernel: &Kernel, _args: &[BufArg]) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Visits `stmts` in order, stopping at the first error.
pub fn walk<V: CoreVisitor + ?Sized>(visitor: &mut V, stmts: &[CoreStmt]) -> Result<(), V::Error> {
    for stmt in stmts {
        match stmt {
            CoreStmt::Loop { count, body } => visitor.visit_loop(*count, body)?,
            CoreStmt::Acquire {
                fifo,
                port,
                count,
                binding,
            } => visitor.visit_acquire(FifoUse::new(fifo, *port, *count), binding)?,
            CoreStmt::Release { fifo, port, count } => {
                visitor.visit_release(FifoUse::new(fifo, *port, *count))?
            }
            CoreStmt::Kernel { kernel, args } => visitor.visit_kernel(kernel, args)?,
        }
    }
    Ok(())
}

/// Bytes of the constant tables a program's kernels hold: each distinct kernel's once, as the
/// lowering emits one `memref.global` per table however often the kernel runs.
pub fn constant_table_bytes(stmts: &[CoreStmt]) -> usize {
    #[derive(Default)]
    struct Tables(Vec<(String, usize)>);
    impl CoreVisitor for Tables {
        type Error = std::convert::Infallible;
        fn visit_kernel(&mut self, kernel: &Kernel, _: &[BufArg]) -> Result<(), Self::Error> {
            if !self.0.iter().any(|(name, _)| *name == kernel.name) {
                self.0.push((kernel.name.clone(), kernel.const_bytes));
            }
            Ok(())
        }
    }
    let mut tables = Tables::default();
    let Ok(()) = walk(&mut tables, stmts);
    tables.0.iter().map(|(_, bytes)| bytes).sum()
}
