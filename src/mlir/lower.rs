//! Design -> melior module.
//!
//! The `aie`/`aiex` ops are built generically with the attribute names, attribute types,
//! operands and results of their upstream ODS definitions (mlir-aie `AIEOps.td`, `AIEX.td`),
//! so MLIR's generic print of the module is exactly what aie-opt would print with
//! `--mlir-print-op-generic` (modulo properties vs. attributes, which its parser accepts
//! either way). Tiles and cores carry a name location (`tile_0_2`, `core_0_2`) so the
//! printer gives them the SSA names aie-opt gives them.

use std::collections::HashMap;

use melior::{
    dialect::{arith, scf},
    ir::{
        attribute::{FlatSymbolRefAttribute, IntegerAttribute, StringAttribute, TypeAttribute},
        operation::OperationBuilder,
        operation::OperationLike,
        r#type::IntegerType,
        Attribute, Block, BlockLike, Identifier, Location, Module, Operation, Region, RegionLike,
        Type, Value,
    },
    Context,
};

use crate::design::info::SeqStep;
use crate::design::{BufferType, CoreStmt, Design, DesignInfo, KernelCtx, Port, SeqOp, TileId, Worker};

use super::{verify, MlirError};

/// The `aie.runtime_sequence` symbol aie-opt assumes when none is printed.
pub const SEQUENCE_SYMBOL: &str = "sequence";
/// The `aie.device` symbol aie-opt assumes when none is printed.
pub const DEVICE_SYMBOL: &str = "main";

/// Builds the module of `design`, validated as `info` (see [`verify::verify`]), in `context`
/// (see [`super::context`]) and verifies it with MLIR. The checks beyond validation
/// ([`verify::verify_validated`]) run first.
pub fn lower<'c>(
    context: &'c Context,
    design: &Design,
    info: &DesignInfo,
) -> Result<Module<'c>, MlirError> {
    verify::verify_validated(design, info)?;
    let b = Builder { context };
    let module = Module::new(b.unknown());

    let device_block = Block::new(&[]);
    {
        let mut tiles: HashMap<TileId, Value<'c, '_>> = HashMap::new();
        for &t in &design.tiles {
            let op = b.op(
                "aie.tile",
                b.named(&tile_ssa_name(t)),
                &[],
                &[b.index()],
                &[("col", b.i32(t.col as i64)), ("row", b.i32(t.row as i64))],
                vec![],
            )?;
            tiles.insert(
                t,
                device_block
                    .append_operation(op)
                    .result(0)
                    .map_err(build_err("aie.tile"))?
                    .into(),
            );
        }
        for f in &design.fifos {
            let mut operands = vec![tiles[&f.producer]];
            operands.extend(f.consumers.iter().map(|c| tiles[c]));
            let per_consumer = vec!["[]"; f.consumers.len()].join(", ");
            let op = b.op(
                "aie.objectfifo",
                b.unknown(),
                &operands,
                &[],
                &[
                    ("sym_name", StringAttribute::new(context, &f.name).into()),
                    ("elemNumber", b.i32(f.depth as i64)),
                    ("elemType", TypeAttribute::new(b.fifo_type(&f.ty)?).into()),
                    ("dimensionsToStream", b.attr("#aie<bd_dim_layout_array[]>")?),
                    (
                        "dimensionsFromStreamPerConsumer",
                        b.attr(&format!("#aie<bd_dim_layout_array_array[{per_consumer}]>"))?,
                    ),
                    // Default-valued; aie-opt's generic print spells them out too.
                    ("via_DMA", b.attr("false")?),
                    ("plio", b.attr("false")?),
                    ("disable_synchronization", b.attr("false")?),
                ],
                vec![],
            )?;
            device_block.append_operation(op);
        }
        for l in &design.links {
            let syms = |names: &[String]| -> String {
                let v: Vec<String> = names.iter().map(|n| format!("@{n}")).collect();
                format!("[{}]", v.join(", "))
            };
            let ints = |xs: &[usize]| -> String {
                let v: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
                format!("[{}]", v.join(", "))
            };
            let op = b.op(
                "aie.objectfifo.link",
                b.unknown(),
                &[],
                &[],
                &[
                    ("fifoIns", b.attr(&syms(&l.srcs))?),
                    ("fifoOuts", b.attr(&syms(&l.dsts))?),
                    ("src_offsets", b.attr(&ints(&l.src_offsets))?),
                    ("dst_offsets", b.attr(&ints(&l.dst_offsets))?),
                ],
                vec![],
            )?;
            device_block.append_operation(op);
        }
        let fifo_types: HashMap<&str, &BufferType> = design
            .fifos
            .iter()
            .map(|f| (f.name.as_str(), &f.ty))
            .collect();
        for w in &design.workers {
            let core = b.lower_worker(w, &device_block, &fifo_types)?;
            let op = b.op(
                "aie.core",
                b.named(&format!("core_{}_{}", w.tile.col, w.tile.row)),
                &[tiles[&w.tile]],
                &[b.index()],
                &[("stack_size", b.i32(w.stack_bytes as i64))],
                vec![core],
            )?;
            device_block.append_operation(op);
        }
        device_block.append_operation(b.lower_sequence(design, info)?);
    }
    device_block.append_operation(b.op("aie.end", b.unknown(), &[], &[], &[], vec![])?);

    let device_region = Region::new();
    device_region.append_block(device_block);
    let device = b.op(
        "aie.device",
        b.unknown(),
        &[],
        &[],
        &[
            ("device", b.i32(device_enum(&design.device)?)),
            (
                "sym_name",
                StringAttribute::new(context, DEVICE_SYMBOL).into(),
            ),
        ],
        vec![device_region],
    )?;
    module.body().append_operation(device);

    verify_with_mlir(context, &module, &design.name)?;
    Ok(module)
}

/// The SSA name aie-opt gives a tile (`TileOp::getAsmResultNames`): on the NPUs row 0 is a
/// shim NOC tile and row 1 a memtile.
fn tile_ssa_name(t: TileId) -> String {
    let kind = match t.row {
        0 => "shim_noc_tile",
        1 => "mem_tile",
        _ => "tile",
    };
    format!("{kind}_{}_{}", t.col, t.row)
}

/// Runs MLIR's verifier, collecting its diagnostics into the error instead of stderr.
fn verify_with_mlir(context: &Context, module: &Module, design: &str) -> Result<(), MlirError> {
    let messages = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let sink = messages.clone();
    let handler = context.attach_diagnostic_handler(move |d| {
        sink.borrow_mut().push(d.to_string());
        true
    });
    // Each op of the device body is verified on its own: our MLIR does not know that
    // `aie.device` is a symbol table, so verifying from the module would look up symbols
    // (`memref.get_global @lut`) in the wrong scope. Symbol uses are checked below instead.
    let mut ok = true;
    let mut device = module.body().first_operation();
    while let Some(dev) = device {
        if let Some(block) = dev.region(0).ok().and_then(|r| r.first_block()) {
            let mut next = block.first_operation();
            while let Some(op) = next {
                ok &= op.verify();
                next = op.next_in_block();
            }
        }
        device = dev.next_in_block();
    }
    context.detach_diagnostic_handler(handler);
    if ok {
        check_global_uses(module)?;
    }
    if ok {
        Ok(())
    } else {
        Err(MlirError::MlirVerify {
            design: design.to_string(),
            diagnostics: messages.borrow().join("; "),
        })
    }
}

/// Every `memref.get_global` must name a `memref.global` of the same device.
fn check_global_uses(module: &Module) -> Result<(), MlirError> {
    use melior::ir::operation::{WalkOrder, WalkResult};
    let mut globals = std::collections::HashSet::new();
    let mut uses = Vec::new();
    module.as_operation().walk(WalkOrder::PreOrder, |op| {
        let name = op.name();
        match name.as_string_ref().as_str().unwrap_or("") {
            "memref.global" => {
                if let Ok(a) = op.attribute("sym_name") {
                    globals.insert(a.to_string().trim_matches('"').to_string());
                }
            }
            "memref.get_global" => {
                if let Ok(a) = op.attribute("name") {
                    uses.push(a.to_string().trim_start_matches('@').to_string());
                }
            }
            _ => {}
        }
        WalkResult::Advance
    });
    for u in uses {
        if !globals.contains(&u) {
            return Err(MlirError::invalid(
                format!("memref.get_global @{u}"),
                "no memref.global of that name in the device",
            ));
        }
    }
    Ok(())
}

/// mlir-aie's `AIEDevice` cases. It is an `I32EnumAttr`: the attribute is the case's value.
pub(crate) const DEVICE_CASES: &[(&str, i64)] = &[
    ("xcvc1902", 1),
    ("xcve2302", 2),
    ("xcve2802", 3),
    ("npu1", 4),
    ("npu1_1col", 5),
    ("npu1_2col", 6),
    ("npu1_3col", 7),
    ("npu2", 8),
    ("npu2_1col", 9),
    ("npu2_2col", 10),
    ("npu2_3col", 11),
    ("npu2_4col", 12),
    ("npu2_5col", 13),
    ("npu2_6col", 14),
    ("npu2_7col", 15),
];

fn device_enum(name: &str) -> Result<i64, MlirError> {
    DEVICE_CASES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            MlirError::invalid(
                format!("aie.device({name})"),
                format!(
                    "aie-opt has no such device; it knows {}",
                    DEVICE_CASES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// Case names of mlir-aie's `ObjectFifoPort` enum, also `I32EnumAttr`.
pub(crate) fn port_enum(port: Port) -> i64 {
    match port {
        Port::Produce => 0,
        Port::Consume => 1,
    }
}

fn build_err(what: &'static str) -> impl Fn(melior::Error) -> MlirError {
    move |e| MlirError::Build {
        what: what.to_string(),
        message: e.to_string(),
    }
}

struct Builder<'c> {
    context: &'c Context,
}

impl<'c> Builder<'c> {
    fn unknown(&self) -> Location<'c> {
        Location::unknown(self.context)
    }

    fn named(&self, name: &str) -> Location<'c> {
        Location::name(self.context, name, self.unknown())
    }

    fn index(&self) -> Type<'c> {
        Type::index(self.context)
    }

    fn i32(&self, v: i64) -> Attribute<'c> {
        IntegerAttribute::new(IntegerType::new(self.context, 32).into(), v).into()
    }

    fn i64(&self, v: i64) -> Attribute<'c> {
        IntegerAttribute::new(IntegerType::new(self.context, 64).into(), v).into()
    }

    fn attr(&self, text: &str) -> Result<Attribute<'c>, MlirError> {
        Attribute::parse(self.context, text).ok_or_else(|| MlirError::Build {
            what: text.to_string(),
            message: "MLIR cannot parse this attribute".into(),
        })
    }

    fn ty(&self, text: &str) -> Result<Type<'c>, MlirError> {
        Type::parse(self.context, text).ok_or_else(|| MlirError::Build {
            what: text.to_string(),
            message: "MLIR cannot parse this type".into(),
        })
    }

    fn memref(&self, ty: &BufferType) -> Result<Type<'c>, MlirError> {
        self.ty(&ty.mlir())
    }

    fn fifo_type(&self, ty: &BufferType) -> Result<Type<'c>, MlirError> {
        self.ty(&format!("!aie.objectfifo<{}>", ty.mlir()))
    }

    fn subview_type(&self, ty: &BufferType) -> Result<Type<'c>, MlirError> {
        self.ty(&format!("!aie.objectfifosubview<{}>", ty.mlir()))
    }

    fn op(
        &self,
        name: &str,
        location: Location<'c>,
        operands: &[Value<'c, '_>],
        results: &[Type<'c>],
        attributes: &[(&str, Attribute<'c>)],
        regions: Vec<Region<'c>>,
    ) -> Result<Operation<'c>, MlirError> {
        let attributes: Vec<(Identifier<'c>, Attribute<'c>)> = attributes
            .iter()
            .map(|(n, a)| (Identifier::new(self.context, n), *a))
            .collect();
        OperationBuilder::new(name, location)
            .add_operands(operands)
            .add_results(results)
            .add_attributes(&attributes)
            .add_regions_vec(regions)
            .build()
            .map_err(|e| MlirError::Build {
                what: name.to_string(),
                message: e.to_string(),
            })
    }

    fn index_constant<'v>(&self, block: &'v Block<'c>, v: u64) -> Result<Value<'c, 'v>, MlirError> {
        let attr = IntegerAttribute::new(self.index(), v as i64).into();
        let op = block.append_operation(arith::constant(self.context, attr, self.unknown()));
        Ok(op.result(0).map_err(build_err("arith.constant"))?.into())
    }

    /// The body of one `aie.core`: its program, then `aie.end`.
    fn lower_worker(
        &self,
        w: &Worker,
        device_block: &Block<'c>,
        fifos: &HashMap<&str, &BufferType>,
    ) -> Result<Region<'c>, MlirError> {
        let block = Block::new(&[]);
        self.lower_stmts(&w.program, &block, device_block, fifos, &HashMap::new())?;
        block.append_operation(self.op("aie.end", self.unknown(), &[], &[], &[], vec![])?);
        let region = Region::new();
        region.append_block(block);
        Ok(region)
    }

    fn lower_stmts<'v>(
        &self,
        stmts: &[CoreStmt],
        block: &'v Block<'c>,
        device_block: &Block<'c>,
        fifos: &HashMap<&str, &BufferType>,
        outer: &HashMap<String, Vec<Value<'c, 'v>>>,
    ) -> Result<(), MlirError> {
        let mut bound = outer.clone();
        for stmt in stmts {
            match stmt {
                CoreStmt::Loop { count, body } => {
                    let lo = self.index_constant(block, 0)?;
                    let hi = self.index_constant(block, *count)?;
                    let step = self.index_constant(block, 1)?;
                    let body_block = Block::new(&[(self.index(), self.unknown())]);
                    self.lower_stmts(body, &body_block, device_block, fifos, &bound)?;
                    body_block.append_operation(scf::r#yield(&[], self.unknown()));
                    let region = Region::new();
                    region.append_block(body_block);
                    block.append_operation(scf::r#for(lo, hi, step, region, self.unknown()));
                }
                CoreStmt::Acquire {
                    fifo,
                    port,
                    count,
                    binding,
                } => {
                    let ty = fifos[fifo.as_str()];
                    let subview_ty = self.subview_type(ty)?;
                    let acquire = block.append_operation(self.op(
                        "aie.objectfifo.acquire",
                        self.unknown(),
                        &[],
                        &[subview_ty],
                        &[
                            (
                                "objFifo_name",
                                FlatSymbolRefAttribute::new(self.context, fifo).into(),
                            ),
                            ("port", self.i32(port_enum(*port))),
                            ("size", self.i32(*count as i64)),
                        ],
                        vec![],
                    )?);
                    let subview: Value = acquire
                        .result(0)
                        .map_err(build_err("aie.objectfifo.acquire"))?
                        .into();
                    let mut buffers = Vec::with_capacity(*count as usize);
                    for i in 0..*count {
                        let access = block.append_operation(self.op(
                            "aie.objectfifo.subview.access",
                            self.unknown(),
                            &[subview],
                            &[self.memref(ty)?],
                            &[("index", self.i32(i as i64))],
                            vec![],
                        )?);
                        buffers.push(
                            access
                                .result(0)
                                .map_err(build_err("aie.objectfifo.subview.access"))?
                                .into(),
                        );
                    }
                    bound.insert(binding.clone(), buffers);
                }
                CoreStmt::Release { fifo, port, count } => {
                    block.append_operation(self.op(
                        "aie.objectfifo.release",
                        self.unknown(),
                        &[],
                        &[],
                        &[
                            (
                                "objFifo_name",
                                FlatSymbolRefAttribute::new(self.context, fifo).into(),
                            ),
                            ("port", self.i32(port_enum(*port))),
                            ("size", self.i32(*count as i64)),
                        ],
                        vec![],
                    )?);
                }
                CoreStmt::Kernel { kernel, args } => {
                    // The verifier has checked every binding and index.
                    let values: Vec<Value<'c, 'v>> = args
                        .iter()
                        .map(|a| bound[&a.binding][a.index as usize])
                        .collect();
                    let cx = KernelCtx {
                        context: self.context,
                        device_block,
                        location: self.unknown(),
                    };
                    (kernel.emit)(&cx, block, &values)?;
                }
            }
        }
        Ok(())
    }

    /// `aie.runtime_sequence(%arg0: memref<..>, ...) { dma_memcpy_nd / dma_wait }`.
    fn lower_sequence(
        &self,
        design: &Design,
        info: &DesignInfo,
    ) -> Result<Operation<'c>, MlirError> {
        let seq = &design.sequence;
        let args = seq
            .args
            .iter()
            .map(|a| Ok((self.memref(&a.ty)?, self.unknown())))
            .collect::<Result<Vec<_>, MlirError>>()?;
        let block = Block::new(&args);
        for (op, step) in seq.ops.iter().zip(&info.sequence) {
            let (fifo, arg, pattern) = match op {
                SeqOp::Fill { fifo, arg, pattern } | SeqOp::Drain { fifo, arg, pattern } => {
                    (fifo, *arg, pattern)
                }
                SeqOp::Wait { fifo } => {
                    block.append_operation(self.op(
                        "aiex.npu.dma_wait",
                        self.unknown(),
                        &[],
                        &[],
                        &[(
                            "symbol",
                            FlatSymbolRefAttribute::new(self.context, fifo).into(),
                        )],
                        vec![],
                    )?);
                    continue;
                }
            };
            let &SeqStep::Transfer { bd, issue_token, .. } = step else {
                return Err(MlirError::invalid("aiex.npu.dma_memcpy_nd", "no DMA schedule"));
            };
            let list = |xs: &[i64]| -> Result<Attribute<'c>, MlirError> {
                let v: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
                self.attr(&format!("array<i64: {}>", v.join(", ")))
            };
            let sizes: Vec<i64> = pattern.sizes.iter().map(|&s| s as i64).collect();
            let strides: Vec<i64> = pattern.strides.iter().map(|&s| s as i64).collect();
            let memref = block
                .argument(arg)
                .map_err(build_err("aie.runtime_sequence"))?;
            let mut attrs = vec![
                ("operandSegmentSizes", self.attr("array<i32: 1, 0, 0, 0>")?),
                ("static_offsets", list(&[0, 0, 0, pattern.offset as i64])?),
                ("static_sizes", list(&sizes)?),
                ("static_strides", list(&strides)?),
                (
                    "metadata",
                    FlatSymbolRefAttribute::new(self.context, fifo).into(),
                ),
                ("id", self.i64(bd as i64)),
            ];
            if issue_token {
                attrs.push(("issue_token", self.attr("true")?));
            }
            block.append_operation(self.op(
                "aiex.npu.dma_memcpy_nd",
                self.unknown(),
                &[memref.into()],
                &[],
                &attrs,
                vec![],
            )?);
        }
        let region = Region::new();
        region.append_block(block);
        self.op(
            "aie.runtime_sequence",
            self.unknown(),
            &[],
            &[],
            &[(
                "sym_name",
                StringAttribute::new(self.context, SEQUENCE_SYMBOL).into(),
            )],
            vec![region],
        )
    }
}
