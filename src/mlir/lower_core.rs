//! The body of one `aie.core`: a worker's program as `scf.for` loops, object-FIFO acquire /
//! subview access / release, and the kernels' own ops, then `aie.end`.

use std::collections::HashMap;

use melior::{
    dialect::{arith, scf},
    ir::{
        attribute::{FlatSymbolRefAttribute, IntegerAttribute},
        Block, BlockLike, Region, RegionLike, Value,
    },
};

use super::aie_ops::{self, attr};
use super::lower::{build_err, Builder};
use super::MlirError;
use crate::design::visit::{walk, CoreVisitor, FifoUse};
use crate::design::{BufArg, BufferType, CoreStmt, Kernel, KernelCtx, Port, Worker};

impl<'c> Builder<'c> {
    /// The region of `aie.core` for `w`.
    pub(super) fn lower_worker(
        &self,
        w: &Worker,
        device_block: &Block<'c>,
        fifos: &HashMap<&str, &BufferType>,
    ) -> Result<Region<'c>, MlirError> {
        let block = Block::new(&[]);
        walk(
            &mut CoreBody {
                b: self,
                block: &block,
                device_block,
                fifos,
                bound: HashMap::new(),
            },
            &w.program,
        )?;
        block.append_operation(self.aie(&aie_ops::END, self.unknown(), &[], &[], &[], vec![])?);
        let region = Region::new();
        region.append_block(block);
        Ok(region)
    }
}

/// Lowers statements into `block`; a loop body gets its own block and a copy of the bindings
/// (acquires inside it do not outlive it).
struct CoreBody<'c, 'v, 'x> {
    b: &'x Builder<'c>,
    block: &'v Block<'c>,
    device_block: &'x Block<'c>,
    fifos: &'x HashMap<&'x str, &'x BufferType>,
    bound: HashMap<String, Vec<Value<'c, 'v>>>,
}

impl<'c, 'v> CoreBody<'c, 'v, '_> {
    fn index_constant(&self, v: u64) -> Result<Value<'c, 'v>, MlirError> {
        let attr = IntegerAttribute::new(self.b.index(), v as i64).into();
        let op =
            self.block
                .append_operation(arith::constant(self.b.context, attr, self.b.unknown()));
        Ok(op.result(0).map_err(build_err("arith.constant"))?.into())
    }

    /// `objFifo_name`, `port` and `size`: what acquire and release both carry.
    fn fifo_attrs(
        &self,
        fifo: &str,
        port: Port,
        count: u32,
    ) -> [(&'static str, melior::ir::Attribute<'c>); 3] {
        [
            (
                attr::FIFO,
                FlatSymbolRefAttribute::new(self.b.context, fifo).into(),
            ),
            (attr::PORT, self.b.i32(aie_ops::port_enum(port))),
            (attr::SIZE, self.b.i32(count as i64)),
        ]
    }
}

impl CoreVisitor for CoreBody<'_, '_, '_> {
    type Error = MlirError;

    fn visit_loop(&mut self, count: u64, body: &[CoreStmt]) -> Result<(), MlirError> {
        let b = self.b;
        let lo = self.index_constant(0)?;
        let hi = self.index_constant(count)?;
        let step = self.index_constant(1)?;
        let body_block = Block::new(&[(b.index(), b.unknown())]);
        walk(
            &mut CoreBody {
                b,
                block: &body_block,
                device_block: self.device_block,
                fifos: self.fifos,
                bound: self.bound.clone(),
            },
            body,
        )?;
        body_block.append_operation(scf::r#yield(&[], b.unknown()));
        let region = Region::new();
        region.append_block(body_block);
        self.block
            .append_operation(scf::r#for(lo, hi, step, region, b.unknown()));
        Ok(())
    }

    fn visit_acquire(&mut self, u: FifoUse, binding: &str) -> Result<(), MlirError> {
        let FifoUse { fifo, port, count } = u;
        let b = self.b;
        let ty = self.fifos[fifo];
        let acquire = self.block.append_operation(b.aie(
            &aie_ops::ACQUIRE,
            b.unknown(),
            &[],
            &[b.subview_type(ty)?],
            &self.fifo_attrs(fifo, port, count),
            vec![],
        )?);
        let subview: Value = acquire
            .result(0)
            .map_err(build_err(aie_ops::ACQUIRE.name))?
            .into();
        let mut buffers = Vec::with_capacity(count as usize);
        for i in 0..count {
            let access = self.block.append_operation(b.aie(
                &aie_ops::SUBVIEW_ACCESS,
                b.unknown(),
                &[subview],
                &[b.memref(ty)?],
                &[(attr::INDEX, b.i32(i as i64))],
                vec![],
            )?);
            buffers.push(
                access
                    .result(0)
                    .map_err(build_err(aie_ops::SUBVIEW_ACCESS.name))?
                    .into(),
            );
        }
        self.bound.insert(binding.to_string(), buffers);
        Ok(())
    }

    fn visit_release(&mut self, u: FifoUse) -> Result<(), MlirError> {
        let FifoUse { fifo, port, count } = u;
        let b = self.b;
        self.block.append_operation(b.aie(
            &aie_ops::RELEASE,
            b.unknown(),
            &[],
            &[],
            &self.fifo_attrs(fifo, port, count),
            vec![],
        )?);
        Ok(())
    }

    fn visit_kernel(&mut self, kernel: &Kernel, args: &[BufArg]) -> Result<(), MlirError> {
        // Validation has checked every binding and index.
        let values: Vec<Value> = args
            .iter()
            .map(|a| self.bound[&a.binding][a.index as usize])
            .collect();
        let cx = KernelCtx {
            context: self.b.context,
            device_block: self.device_block,
            location: self.b.unknown(),
        };
        (kernel.emit)(&cx, self.block, &values)?;
        Ok(())
    }
}
