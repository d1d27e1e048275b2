//! Host JIT of the worker programs.
//!
//! Each worker becomes `func.func @aiec_core_N(%ctx: i64)`: its control program as `scf.for`
//! loops and calls to the hooks of [`super::hooks`] (acquire / access / release), and its
//! kernels inlined by the very emitters the MLIR-AIE lowering puts inside `aie.core` (upstream
//! scf/arith/memref/vector/math only). The module is lowered to the LLVM dialect and compiled
//! by MLIR's ExecutionEngine (LLVM -O2 by default, see `SimOptions::opt_level`). Workers whose programs print identically (same kernels,
//! loops, buffer types; FIFOs numbered per worker) share one compiled function.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use melior::{
    dialect::{arith, func, scf},
    ir::{
        attribute::{FlatSymbolRefAttribute, IntegerAttribute, StringAttribute, TypeAttribute},
        operation::OperationLike,
        r#type::{FunctionType, IntegerType},
        Attribute, Block, BlockLike, Identifier, Location, Module, Region, RegionLike, Type, Value,
        ValueLike,
    },
    pass::PassManager,
    utility::parse_pass_pipeline,
    Context, ExecutionEngine,
};
use mlir_sys::MlirValue;

use super::from_aie;
use super::hooks;
use super::wiring::{Wiring, WorkerWiring};
use super::SimError;
use crate::design::visit::{walk, CoreVisitor, FifoUse};
use crate::design::{BufArg, BufferType, CoreStmt, Design, DesignInfo, Kernel, KernelCtx, Port};
use crate::mlir::memref_type;

/// Lowering to the LLVM dialect for the host. bf16 arithmetic and math are computed in f32
/// and rounded back (round-to-nearest-even), as the AIE vector unit accumulates bf16 in f32.
pub(crate) const HOST_PIPELINE: &str = "builtin.module(\
    func.func(math-extend-to-supported-types{target-type=f32}),\
    arith-emulate-unsupported-floats{source-types=bf16 target-type=f32},\
    convert-vector-to-scf{full-unroll=true},\
    lower-affine,\
    convert-scf-to-cf,\
    arith-expand{include-bf16=true},\
    convert-math-to-llvm,\
    convert-math-to-libm,\
    expand-strided-metadata,\
    convert-vector-to-llvm{vector-contract-lowering=outerproduct},\
    finalize-memref-to-llvm,\
    convert-arith-to-llvm,\
    convert-index-to-llvm,\
    convert-func-to-llvm,\
    convert-cf-to-llvm,\
    convert-ub-to-llvm,\
    reconcile-unrealized-casts)";

pub(crate) type CoreFn = unsafe extern "C" fn(i64);

/// Where the simulated core functions came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreSource {
    /// The `aie.core` bodies of the compiler's MLIR-AIE module (`crate::mlir::lower`).
    AieModule,
    /// The Design's programs, because the compiler rejected the design (its message).
    Design(String),
}

/// The compiled cores; `entries[w]` runs worker `w`.
pub(crate) struct Compiled {
    pub source: CoreSource,
    _engine: ExecutionEngine,
    pub entries: Vec<CoreFn>,
    /// Distinct compiled bodies (after sharing identical workers).
    pub distinct: usize,
}

fn jit_error(what: &str, diagnostics: &Rc<RefCell<Vec<String>>>) -> SimError {
    let notes = diagnostics.borrow();
    SimError::Jit(if notes.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {}", notes.join("; "))
    })
}

/// Builds, lowers and JIT-compiles every worker of `design`.
pub(crate) fn compile(
    context: &Context,
    design: &Design,
    info: &DesignInfo,
    wiring: &Wiring,
    opt_level: usize,
) -> Result<Compiled, SimError> {
    let diagnostics = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink = diagnostics.clone();
    let handler = context.attach_diagnostic_handler(move |d| {
        sink.borrow_mut().push(d.to_string());
        true
    });
    let result = compile_inner(context, design, info, wiring, opt_level, &diagnostics);
    context.detach_diagnostic_handler(handler);
    result
}

fn compile_inner(
    context: &Context,
    design: &Design,
    info: &DesignInfo,
    wiring: &Wiring,
    opt_level: usize,
    diagnostics: &Rc<RefCell<Vec<String>>>,
) -> Result<Compiled, SimError> {
    let location = Location::unknown(context);
    let module = Module::new(location);
    let access_names = declare_hooks(context, &module, wiring);

    // One function per worker, from the MLIR-AIE module when the compiler accepts the design;
    // otherwise (a design its static verifier rejects, e.g. one acquiring more buffers than a
    // FIFO holds) from the Design itself, so the run can still show what the hardware would do.
    let (functions, globals, source) = match crate::mlir::lower(context, design, info) {
        Ok(aie) => {
            let (functions, globals) =
                from_aie::core_functions(context, &aie, wiring, &access_names, "aiec_core_w")?;
            (functions, globals, CoreSource::AieModule)
        }
        Err(e) => {
            tracing::warn!("the compiler rejects the design ({e}); simulating it from the Design");
            let mut functions = Vec::new();
            let mut globals = Vec::new();
            for (w, wp) in design.workers.iter().zip(&wiring.workers) {
                let scratch = Module::new(location);
                functions.push(design_core(
                    context,
                    &scratch,
                    w,
                    wp,
                    &access_names,
                    w_name(functions.len()),
                )?);
                let mut next = scratch.body().first_operation();
                while let Some(op) = next {
                    globals.push((*op).clone());
                    next = op.next_in_block();
                }
            }
            (functions, globals, CoreSource::Design(e.to_string()))
        }
    };
    // Module-level constants the kernels asked for (lookup tables), once each.
    let mut globals_seen: Vec<String> = Vec::new();
    for op in globals {
        let text = op.to_string();
        if !globals_seen.contains(&text) {
            module.body().append_operation(op);
            globals_seen.push(text);
        }
    }
    // Workers whose functions print identically share one compiled body.
    let mut by_text: HashMap<String, String> = HashMap::new();
    let mut entry_names = Vec::new();
    for (w, function) in functions.into_iter().enumerate() {
        let key = function.to_string().replacen(&w_name(w), "", 1);
        if let Some(existing) = by_text.get(&key) {
            entry_names.push(existing.clone());
            continue;
        }
        module.body().append_operation(function);
        by_text.insert(key, w_name(w));
        entry_names.push(w_name(w));
    }

    if !module.as_operation().verify() {
        return Err(jit_error(
            "the host module for the cores does not verify",
            diagnostics,
        ));
    }
    let mut module = module;
    let lowering = std::time::Instant::now();
    let pm = PassManager::new(context);
    parse_pass_pipeline(pm.as_operation_pass_manager(), HOST_PIPELINE)
        .map_err(|e| SimError::Jit(format!("host pass pipeline: {e}")))?;
    pm.run(&mut module)
        .map_err(|_| jit_error("lowering the cores to the LLVM dialect failed", diagnostics))?;

    tracing::debug!(elapsed = ?lowering.elapsed(), "cores lowered to the LLVM dialect");
    let (engine, entries, distinct) =
        codegen(&module, opt_level, &access_names, &entry_names, diagnostics)?;
    Ok(Compiled {
        source,
        _engine: engine,
        entries,
        distinct,
    })
}

/// Compiles the lowered module and looks up each worker's entry (shared bodies once).
fn codegen(
    module: &Module,
    opt_level: usize,
    access_names: &HashMap<BufferType, String>,
    entry_names: &[String],
    diagnostics: &Rc<RefCell<Vec<String>>>,
) -> Result<(ExecutionEngine, Vec<CoreFn>, usize), SimError> {
    let started = std::time::Instant::now();
    let engine = ExecutionEngine::new(module, opt_level, &[], false, false);
    // SAFETY: the hooks have exactly the C signatures the declarations above give them.
    unsafe {
        engine.register_symbol("aiec_sim_acquire", hooks::acquire as *mut ());
        engine.register_symbol("aiec_sim_release", hooks::release as *mut ());
        engine.register_symbol("aiec_sim_alive", hooks::alive as *mut ());
        for (ty, name) in access_names {
            engine.register_symbol(
                &format!("_mlir_ciface_{name}"),
                hooks::access_for_rank(ty.shape.len()),
            );
        }
    }
    let mut cache: HashMap<String, CoreFn> = HashMap::new();
    let mut entries = Vec::new();
    for name in entry_names {
        let f = match cache.get(name) {
            Some(f) => *f,
            None => {
                let ptr = engine.lookup(name);
                if ptr.is_null() {
                    return Err(jit_error(
                        &format!("the JIT did not produce `{name}`"),
                        diagnostics,
                    ));
                }
                // SAFETY: `name` is a `func.func (i64) -> ()` lowered with the C convention.
                let f: CoreFn = unsafe { std::mem::transmute::<*mut (), CoreFn>(ptr) };
                cache.insert(name.clone(), f);
                f
            }
        };
        entries.push(f);
    }
    // Lookups materialise the code, so this includes LLVM's optimisation and codegen.
    tracing::debug!(elapsed = ?started.elapsed(), "cores compiled by LLVM");
    let distinct = cache.len();
    Ok((engine, entries, distinct))
}

/// Declares the hooks the cores call: acquire, release, alive, and one subview access per
/// buffer type (returned by type).
fn declare_hooks(
    context: &Context,
    module: &Module,
    wiring: &Wiring,
) -> HashMap<BufferType, String> {
    let location = Location::unknown(context);
    let i64t: Type = IntegerType::new(context, 64).into();

    let declare = |name: &str, inputs: &[Type], results: &[Type], c_interface: bool| {
        let mut attrs = vec![(
            Identifier::new(context, "sym_visibility"),
            StringAttribute::new(context, "private").into(),
        )];
        if c_interface {
            attrs.push((
                Identifier::new(context, "llvm.emit_c_interface"),
                Attribute::unit(context),
            ));
        }
        module.body().append_operation(func::func(
            context,
            StringAttribute::new(context, name),
            TypeAttribute::new(FunctionType::new(context, inputs, results).into()),
            Region::new(),
            &attrs,
            location,
        ));
    };
    declare("aiec_sim_acquire", &[i64t, i64t, i64t], &[], false);
    declare("aiec_sim_release", &[i64t, i64t, i64t], &[], false);
    declare("aiec_sim_alive", &[i64t], &[i64t], false);
    let mut access_names: HashMap<BufferType, String> = HashMap::new();
    for w in &wiring.workers {
        for (_, ty) in &w.ports {
            if !access_names.contains_key(ty) {
                let name = format!("aiec_sim_access_{}", access_names.len());
                declare(
                    &name,
                    &[i64t, i64t, i64t],
                    &[memref_type(context, ty)],
                    true,
                );
                access_names.insert(ty.clone(), name);
            }
        }
    }

    access_names
}

fn w_name(w: usize) -> String {
    format!("aiec_core_w{w}")
}

/// A worker's function built from the Design: its control program lowered here, its kernels
/// from the same emitters the MLIR-AIE lowering inlines.
fn design_core<'c>(
    context: &'c Context,
    scratch: &Module<'c>,
    w: &crate::design::Worker,
    wp: &WorkerWiring,
    access_names: &HashMap<BufferType, String>,
    name: String,
) -> Result<melior::ir::Operation<'c>, SimError> {
    let location = Location::unknown(context);
    let i64t: Type = IntegerType::new(context, 64).into();
    let emitter = Emitter {
        context,
        location,
        device_block: &scratch.body(),
        i64t,
        worker: wp,
        access_names,
    };
    let body = Block::new(&[(i64t, location)]);
    let ctx = body.argument(0).expect("ctx argument").to_raw();
    walk(
        &mut DesignCore {
            e: &emitter,
            block: &body,
            ctx,
            bindings: HashMap::new(),
        },
        &w.program,
    )?;
    body.append_operation(func::r#return(&[], location));
    let region = Region::new();
    region.append_block(body);
    Ok(func::func(
        context,
        StringAttribute::new(context, &name),
        TypeAttribute::new(FunctionType::new(context, &[i64t], &[]).into()),
        region,
        &[],
        location,
    ))
}

struct Emitter<'c, 'm> {
    context: &'c Context,
    location: Location<'c>,
    device_block: &'m Block<'c>,
    i64t: Type<'c>,
    worker: &'m WorkerWiring,
    access_names: &'m HashMap<BufferType, String>,
}

type Bindings = HashMap<String, Vec<MlirValue>>;

fn value<'c, 'a>(raw: MlirValue) -> Value<'c, 'a> {
    // SAFETY: every raw value comes from an op of the function under construction, which
    // outlives the emission.
    unsafe { Value::from_raw(raw) }
}

impl<'c> Emitter<'c, '_> {
    fn constant(&self, block: &Block<'c>, ty: Type<'c>, v: i64) -> MlirValue {
        let op = arith::constant(
            self.context,
            IntegerAttribute::new(ty, v).into(),
            self.location,
        );
        block
            .append_operation(op)
            .result(0)
            .expect("constant")
            .to_raw()
    }

    fn call(
        &self,
        block: &Block<'c>,
        callee: &str,
        args: &[MlirValue],
        results: &[Type<'c>],
    ) -> Option<MlirValue> {
        let args: Vec<Value> = args.iter().map(|&r| value(r)).collect();
        let op = func::call(
            self.context,
            FlatSymbolRefAttribute::new(self.context, callee),
            &args,
            results,
            self.location,
        );
        let op = block.append_operation(op);
        (!results.is_empty()).then(|| op.result(0).expect("call result").to_raw())
    }
}

/// Emits a worker program into `block` through the hooks; a loop body gets its own block and
/// a copy of the bindings.
struct DesignCore<'x, 'c, 'm> {
    e: &'x Emitter<'c, 'm>,
    block: &'x Block<'c>,
    ctx: MlirValue,
    bindings: Bindings,
}

impl DesignCore<'_, '_, '_> {
    /// The local port number and the (local, count) constants of an acquire or release.
    fn port_constants(&self, fifo: &str, port: Port, count: u32) -> (usize, MlirValue, MlirValue) {
        let e = self.e;
        // `validate` has numbered every FIFO end the program uses.
        let local = e.worker.local[&(fifo.to_string(), port)];
        let l = e.constant(self.block, e.i64t, local as i64);
        let n = e.constant(self.block, e.i64t, i64::from(count));
        (local, l, n)
    }
}

impl CoreVisitor for DesignCore<'_, '_, '_> {
    type Error = SimError;

    fn visit_loop(&mut self, count: u64, body: &[CoreStmt]) -> Result<(), SimError> {
        let e = self.e;
        let count = i64::try_from(count).map_err(|_| SimError::Invalid {
            design: String::new(),
            message: format!("loop count {count} does not fit an index"),
        })?;
        if count == 0 {
            return Ok(());
        }
        let index = Type::index(e.context);
        let lo = e.constant(self.block, index, 0);
        let hi = e.constant(self.block, index, count);
        let step = e.constant(self.block, index, 1);
        let inner = Block::new(&[(index, e.location)]);
        walk(
            &mut DesignCore {
                e,
                block: &inner,
                ctx: self.ctx,
                bindings: self.bindings.clone(),
            },
            body,
        )?;
        inner.append_operation(scf::r#yield(&[], e.location));
        let region = Region::new();
        region.append_block(inner);
        self.block.append_operation(scf::r#for(
            value(lo),
            value(hi),
            value(step),
            region,
            e.location,
        ));
        Ok(())
    }

    fn visit_acquire(&mut self, u: FifoUse, binding: &str) -> Result<(), SimError> {
        let FifoUse { fifo, port, count } = u;
        let e = self.e;
        let (local, l, n) = self.port_constants(fifo, port, count);
        e.call(self.block, "aiec_sim_acquire", &[self.ctx, l, n], &[]);
        let ty = &e.worker.ports[local].1;
        let memref = memref_type(e.context, ty);
        let views = (0..count)
            .map(|i| {
                let idx = e.constant(self.block, e.i64t, i64::from(i));
                e.call(
                    self.block,
                    &e.access_names[ty],
                    &[self.ctx, l, idx],
                    &[memref],
                )
                .expect("access result")
            })
            .collect();
        self.bindings.insert(binding.to_string(), views);
        Ok(())
    }

    fn visit_release(&mut self, u: FifoUse) -> Result<(), SimError> {
        let FifoUse { fifo, port, count } = u;
        let (_, l, n) = self.port_constants(fifo, port, count);
        self.e
            .call(self.block, "aiec_sim_release", &[self.ctx, l, n], &[]);
        Ok(())
    }

    /// The kernel runs only while the simulation is alive (`aiec_sim_alive`), so an aborted
    /// run does not compute on buffers it no longer holds.
    fn visit_kernel(&mut self, kernel: &Kernel, args: &[BufArg]) -> Result<(), SimError> {
        let e = self.e;
        let alive = e
            .call(self.block, "aiec_sim_alive", &[self.ctx], &[e.i64t])
            .expect("alive");
        let zero = e.constant(self.block, e.i64t, 0);
        let cond = self
            .block
            .append_operation(arith::cmpi(
                e.context,
                arith::CmpiPredicate::Ne,
                value(alive),
                value(zero),
                e.location,
            ))
            .result(0)
            .expect("cmpi")
            .to_raw();
        let then = Block::new(&[]);
        let values: Vec<Value> = args
            .iter()
            .map(|a| value(self.bindings[&a.binding][a.index as usize]))
            .collect();
        let kctx = KernelCtx {
            context: e.context,
            device_block: e.device_block,
            location: e.location,
        };
        (kernel.emit)(&kctx, &then, &values).map_err(SimError::Kernel)?;
        then.append_operation(scf::r#yield(&[], e.location));
        let then_region = Region::new();
        then_region.append_block(then);
        self.block.append_operation(scf::r#if(
            value(cond),
            &[],
            then_region,
            Region::new(),
            e.location,
        ));
        Ok(())
    }
}
