//! Core functions cut out of the MLIR-AIE module the compiler emits ([`crate::mlir::lower`]):
//! the body of each `aie.core` becomes the body of `func.func @name(%ctx: i64)`, unchanged
//! except for the AIE ops, which turn into hook calls (see [`super::hooks`]):
//! `aie.objectfifo.acquire @f(port, n)` -> `aiec_sim_acquire(ctx, local(f, port), n)`,
//! `aie.objectfifo.subview.access %s[i]` -> `aiec_sim_access_K(ctx, local, i)`,
//! `aie.objectfifo.release` -> `aiec_sim_release`, `aie.end` -> `func.return`.
//! So loops, kernels and their order are exactly what goes to aie-opt. Op and attribute names
//! are the contract's ([`crate::mlir::aie_ops`]).

use std::collections::HashMap;

use melior::{
    dialect::{arith, func},
    ir::{
        attribute::{FlatSymbolRefAttribute, IntegerAttribute, StringAttribute, TypeAttribute},
        block::BlockLike,
        operation::{OperationLike, OperationRef, WalkOrder, WalkResult},
        r#type::FunctionType,
        Location, Module, Operation, Region, RegionLike, Type, Value, ValueLike,
    },
    Context,
};
use mlir_sys::{
    mlirOperationDestroy, mlirRegionTakeBody, mlirValueReplaceAllUsesOfWith, MlirOperation,
    MlirValue,
};

use super::wiring::{Wiring, WorkerWiring};
use super::SimError;
use crate::design::BufferType;
use crate::mlir::aie_ops::{self, attr};
use crate::mlir::memref_type;

fn err(message: impl Into<String>) -> SimError {
    SimError::Jit(format!("reading the MLIR-AIE module: {}", message.into()))
}

fn op_name(op: &OperationRef) -> String {
    op.name().as_string_ref().as_str().unwrap_or("").to_string()
}

fn int_attr(op: &OperationRef, name: &str) -> Result<i64, SimError> {
    let attr = op
        .attribute(name)
        .map_err(|_| err(format!("{} has no `{name}`", op_name(op))))?;
    IntegerAttribute::try_from(attr)
        .map(|a| a.value())
        .map_err(|_| err(format!("{}: `{name}` is not an integer", op_name(op))))
}

/// The memref.global constants of the device and one function per `aie.core`, in worker
/// order, named `{prefix}{w}`.
pub(crate) fn core_functions<'c>(
    context: &'c Context,
    aie: &Module<'c>,
    wiring: &Wiring,
    access_names: &HashMap<BufferType, String>,
    prefix: &str,
) -> Result<(Vec<Operation<'c>>, Vec<Operation<'c>>), SimError> {
    let device = aie
        .body()
        .first_operation()
        .ok_or_else(|| err("no aie.device"))?;
    let block = device
        .region(0)
        .ok()
        .and_then(|r| r.first_block())
        .ok_or_else(|| err("aie.device has no body"))?;
    let (mut cores, mut globals) = (Vec::new(), Vec::new());
    let mut next = block.first_operation();
    while let Some(op) = next {
        match op_name(&op).as_str() {
            n if n == aie_ops::CORE.name => cores.push(op),
            "memref.global" => globals.push((*op).clone()),
            _ => {}
        }
        next = op.next_in_block();
    }
    if cores.len() != wiring.workers.len() {
        return Err(err(format!(
            "{} aie.core ops for {} workers",
            cores.len(),
            wiring.workers.len()
        )));
    }
    let mut functions = Vec::new();
    for (w, core) in cores.iter().enumerate() {
        let (function, ctx) = core_function(context, core, &format!("{prefix}{w}"))?;
        let hooks = Hooks {
            context,
            ctx,
            worker: &wiring.workers[w],
            access_names,
            core: w,
        };
        hooks.rewrite(&function)?;
        functions.push(function);
    }
    Ok((functions, globals))
}

/// A copy of `core`'s body as `func.func @name(%ctx: i64)`, and that `%ctx`.
fn core_function<'c>(
    context: &'c Context,
    core: &OperationRef<'c, '_>,
    name: &str,
) -> Result<(Operation<'c>, MlirValue), SimError> {
    let location = Location::unknown(context);
    let i64t: Type = melior::ir::r#type::IntegerType::new(context, 64).into();
    let copy = (**core).clone();
    let region = Region::new();
    let body = copy
        .region(0)
        .map_err(|_| err("aie.core without a region"))?;
    // SAFETY: both regions are live; the copy's body moves into `region`.
    unsafe { mlirRegionTakeBody(region.to_raw(), body.to_raw()) };
    drop(copy);
    let entry = region.first_block().ok_or_else(|| err("empty aie.core"))?;
    let ctx = entry.add_argument(i64t, location).to_raw();
    let function = func::func(
        context,
        StringAttribute::new(context, name),
        TypeAttribute::new(FunctionType::new(context, &[i64t], &[]).into()),
        region,
        &[],
        location,
    );
    Ok((function, ctx))
}

/// Rewrites the AIE ops of one core function into calls of the simulator's hooks.
struct Hooks<'c, 'w> {
    context: &'c Context,
    /// The function's `%ctx` argument.
    ctx: MlirValue,
    worker: &'w WorkerWiring,
    access_names: &'w HashMap<BufferType, String>,
    /// The worker's index, for errors.
    core: usize,
}

impl<'c> Hooks<'c, '_> {
    fn rewrite(&self, function: &Operation<'c>) -> Result<(), SimError> {
        let (context, worker, access_names) = (self.context, self.worker, self.access_names);
        let location = Location::unknown(context);
        let i64t: Type = melior::ir::r#type::IntegerType::new(context, 64).into();
        // SAFETY: the argument of `function`'s entry block, alive as long as the function.
        let ctx: Value = unsafe { Value::from_raw(self.ctx) };
        let mut subviews: HashMap<usize, (usize, String)> = HashMap::new();
        let mut acquires = Vec::new();
        for raw in aie_ops_in(function) {
            // SAFETY: `raw` is an op of `function`, erased at most once below.
            let op = unsafe { OperationRef::from_raw(raw) };
            let block = op.block().ok_or_else(|| err("detached op"))?;
            let constant = |v: i64| -> Value {
                let c = arith::constant(context, IntegerAttribute::new(i64t, v).into(), location);
                block
                    .insert_operation_before(op, c)
                    .result(0)
                    .expect("constant")
                    .into()
            };
            let call =
                |callee: &str, args: &[Value<'c, '_>], results: &[Type<'c>]| -> Option<MlirValue> {
                    let c = func::call(
                        context,
                        FlatSymbolRefAttribute::new(context, callee),
                        args,
                        results,
                        location,
                    );
                    let c = block.insert_operation_before(op, c);
                    c.result(0).ok().map(|r| r.to_raw())
                };
            match aie_ops::lookup(&op_name(&op)) {
                Some(&aie_ops::ACQUIRE) => {
                    let l = self.local(&op)?;
                    let (lc, n) = (constant(l as i64), constant(int_attr(&op, attr::SIZE)?));
                    call("aiec_sim_acquire", &[ctx, lc, n], &[]);
                    let result = op.result(0).map_err(|_| err("acquire without result"))?;
                    let ty = &worker.ports[l].1;
                    subviews.insert(result.to_raw().ptr as usize, (l, access_names[ty].clone()));
                    acquires.push(raw);
                }
                Some(&aie_ops::SUBVIEW_ACCESS) => {
                    let subview = op.operand(0).map_err(|_| err("access without operand"))?;
                    let (l, access) = subviews
                        .get(&(subview.to_raw().ptr as usize))
                        .cloned()
                        .ok_or_else(|| err("access of an unknown subview"))?;
                    let ty = &worker.ports[l].1;
                    let (lc, i) = (constant(l as i64), constant(int_attr(&op, attr::INDEX)?));
                    let new = call(&access, &[ctx, lc, i], &[memref_type(context, ty)])
                        .expect("access result");
                    let old = op
                        .result(0)
                        .map_err(|_| err("access without result"))?
                        .to_raw();
                    // SAFETY: both values are live; the old op is erased once unused.
                    unsafe {
                        mlirValueReplaceAllUsesOfWith(old, new);
                        mlirOperationDestroy(raw);
                    }
                }
                Some(&aie_ops::RELEASE) => {
                    let l = self.local(&op)?;
                    let (lc, n) = (constant(l as i64), constant(int_attr(&op, attr::SIZE)?));
                    call("aiec_sim_release", &[ctx, lc, n], &[]);
                    // SAFETY: a release has no results.
                    unsafe { mlirOperationDestroy(raw) };
                }
                Some(&aie_ops::END) => {
                    block.insert_operation_before(op, func::r#return(&[], location));
                    // SAFETY: a terminator without results.
                    unsafe { mlirOperationDestroy(raw) };
                }
                _ => {
                    let other = op_name(&op);
                    return Err(err(format!("unexpected `{other}` inside aie.core")));
                }
            }
        }
        for raw in acquires {
            // SAFETY: every access of the subview was replaced above.
            unsafe { mlirOperationDestroy(raw) };
        }
        Ok(())
    }

    /// The worker's local number of the FIFO end an acquire or release names.
    fn local(&self, op: &OperationRef) -> Result<usize, SimError> {
        let fifo = op
            .attribute(attr::FIFO)
            .map_err(|_| err("acquire/release without objFifo_name"))?
            .to_string();
        let fifo = fifo.trim_start_matches('@').to_string();
        let key = aie_ops::port_of(int_attr(op, attr::PORT)?)
            .ok_or_else(|| err(format!("{}: unknown port", op_name(op))))?;
        self.worker
            .local
            .get(&(fifo.clone(), key))
            .copied()
            .ok_or_else(|| {
                err(format!(
                    "core {} uses @{fifo} ({key:?}), unknown to the design",
                    self.core
                ))
            })
    }
}

/// The `aie`/`aiex` ops inside `function`, in pre-order.
fn aie_ops_in(function: &Operation) -> Vec<MlirOperation> {
    let mut found = Vec::new();
    function.walk(WalkOrder::PreOrder, |op| {
        if aie_ops::is_aie(&op_name(&op)) {
            found.push(op.to_raw());
        }
        WalkResult::Advance
    });
    found
}
