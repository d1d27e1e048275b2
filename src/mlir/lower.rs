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
use crate::design::{BufferType, Design, DesignInfo, FifoLink, ObjectFifo, SeqOp, TileId};

use super::aie_ops::{self, attr};
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
    b.lower_device_body(design, info, &device_block)?;
    device_block.append_operation(b.aie(&aie_ops::END, b.unknown(), &[], &[], &[], vec![])?);
    let device_region = Region::new();
    device_region.append_block(device_block);
    let device = b.aie(
        &aie_ops::DEVICE,
        b.unknown(),
        &[],
        &[],
        &[
            (attr::DEVICE, b.i32(device_enum(&design.device)?)),
            (
                attr::SYM_NAME,
                StringAttribute::new(context, DEVICE_SYMBOL).into(),
            ),
        ],
        vec![device_region],
    )?;
    module.body().append_operation(device);

    verify_with_mlir(context, &module, &design.name)?;
    Ok(module)
}

impl<'c> Builder<'c> {
    /// Tiles, object FIFOs, links, cores and the runtime sequence, in that order.
    fn lower_device_body(
        &self,
        design: &Design,
        info: &DesignInfo,
        device_block: &Block<'c>,
    ) -> Result<(), MlirError> {
        let mut tiles: HashMap<TileId, Value<'c, '_>> = HashMap::new();
        for &t in &design.tiles {
            let op = self.aie(
                &aie_ops::TILE,
                self.named(&tile_ssa_name(t)),
                &[],
                &[self.index()],
                &[
                    (attr::COL, self.i32(t.col as i64)),
                    (attr::ROW, self.i32(t.row as i64)),
                ],
                vec![],
            )?;
            let tile = device_block
                .append_operation(op)
                .result(0)
                .map_err(build_err(aie_ops::TILE.name))?;
            tiles.insert(t, tile.into());
        }
        for f in &design.fifos {
            let mut operands = vec![tiles[&f.producer]];
            operands.extend(f.consumers.iter().map(|c| tiles[c]));
            device_block.append_operation(self.objectfifo(f, &operands)?);
        }
        for l in &design.links {
            device_block.append_operation(self.link(l)?);
        }
        let fifo_types: HashMap<&str, &BufferType> = design
            .fifos
            .iter()
            .map(|f| (f.name.as_str(), &f.ty))
            .collect();
        for w in &design.workers {
            let core = self.lower_worker(w, device_block, &fifo_types)?;
            let op = self.aie(
                &aie_ops::CORE,
                self.named(&format!("core_{}_{}", w.tile.col, w.tile.row)),
                &[tiles[&w.tile]],
                &[self.index()],
                &[(attr::STACK_SIZE, self.i32(w.stack_bytes as i64))],
                vec![core],
            )?;
            device_block.append_operation(op);
        }
        device_block.append_operation(self.lower_sequence(design, info)?);
        Ok(())
    }

    fn objectfifo(
        &self,
        f: &ObjectFifo,
        tiles: &[Value<'c, '_>],
    ) -> Result<Operation<'c>, MlirError> {
        let per_consumer = vec!["[]"; f.consumers.len()].join(", ");
        self.aie(
            &aie_ops::OBJECTFIFO,
            self.unknown(),
            tiles,
            &[],
            &[
                (
                    attr::SYM_NAME,
                    StringAttribute::new(self.context, &f.name).into(),
                ),
                ("elemNumber", self.i32(f.depth as i64)),
                (
                    "elemType",
                    TypeAttribute::new(self.fifo_type(&f.ty)?).into(),
                ),
                (
                    "dimensionsToStream",
                    self.attr("#aie<bd_dim_layout_array[]>")?,
                ),
                (
                    "dimensionsFromStreamPerConsumer",
                    self.attr(&format!("#aie<bd_dim_layout_array_array[{per_consumer}]>"))?,
                ),
                // Default-valued; aie-opt's generic print spells them out too.
                ("via_DMA", self.attr("false")?),
                ("plio", self.attr("false")?),
                ("disable_synchronization", self.attr("false")?),
            ],
            vec![],
        )
    }

    fn link(&self, l: &FifoLink) -> Result<Operation<'c>, MlirError> {
        let syms = |names: &[String]| -> String {
            let v: Vec<String> = names.iter().map(|n| format!("@{n}")).collect();
            format!("[{}]", v.join(", "))
        };
        let ints = |xs: &[usize]| -> String {
            let v: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
            format!("[{}]", v.join(", "))
        };
        self.aie(
            &aie_ops::LINK,
            self.unknown(),
            &[],
            &[],
            &[
                ("fifoIns", self.attr(&syms(&l.srcs))?),
                ("fifoOuts", self.attr(&syms(&l.dsts))?),
                ("src_offsets", self.attr(&ints(&l.src_offsets))?),
                ("dst_offsets", self.attr(&ints(&l.dst_offsets))?),
            ],
            vec![],
        )
    }
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

fn device_enum(name: &str) -> Result<i64, MlirError> {
    aie_ops::DEVICE_CASES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            MlirError::invalid(
                format!("aie.device({name})"),
                format!(
                    "aie-opt has no such device; it knows {}",
                    aie_ops::DEVICE_CASES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

pub(super) fn build_err(what: &'static str) -> impl Fn(melior::Error) -> MlirError {
    move |e| MlirError::Build {
        what: what.to_string(),
        message: e.to_string(),
    }
}

pub(super) struct Builder<'c> {
    pub(super) context: &'c Context,
}

impl<'c> Builder<'c> {
    pub(super) fn unknown(&self) -> Location<'c> {
        Location::unknown(self.context)
    }

    pub(super) fn named(&self, name: &str) -> Location<'c> {
        Location::name(self.context, name, self.unknown())
    }

    pub(super) fn index(&self) -> Type<'c> {
        Type::index(self.context)
    }

    pub(super) fn i32(&self, v: i64) -> Attribute<'c> {
        IntegerAttribute::new(IntegerType::new(self.context, 32).into(), v).into()
    }

    pub(super) fn i64(&self, v: i64) -> Attribute<'c> {
        IntegerAttribute::new(IntegerType::new(self.context, 64).into(), v).into()
    }

    pub(super) fn attr(&self, text: &str) -> Result<Attribute<'c>, MlirError> {
        Attribute::parse(self.context, text).ok_or_else(|| MlirError::Build {
            what: text.to_string(),
            message: "MLIR cannot parse this attribute".into(),
        })
    }

    pub(super) fn ty(&self, text: &str) -> Result<Type<'c>, MlirError> {
        Type::parse(self.context, text).ok_or_else(|| MlirError::Build {
            what: text.to_string(),
            message: "MLIR cannot parse this type".into(),
        })
    }

    pub(super) fn memref(&self, ty: &BufferType) -> Result<Type<'c>, MlirError> {
        self.ty(&ty.mlir())
    }

    pub(super) fn fifo_type(&self, ty: &BufferType) -> Result<Type<'c>, MlirError> {
        self.ty(&format!("!aie.objectfifo<{}>", ty.mlir()))
    }

    pub(super) fn subview_type(&self, ty: &BufferType) -> Result<Type<'c>, MlirError> {
        self.ty(&format!("!aie.objectfifosubview<{}>", ty.mlir()))
    }

    /// An `aie`/`aiex` op, checked against its contract in [`aie_ops`].
    pub(super) fn aie(
        &self,
        op: &aie_ops::AieOp,
        location: Location<'c>,
        operands: &[Value<'c, '_>],
        results: &[Type<'c>],
        attributes: &[(&str, Attribute<'c>)],
        regions: Vec<Region<'c>>,
    ) -> Result<Operation<'c>, MlirError> {
        let names: Vec<&str> = attributes.iter().map(|(n, _)| *n).collect();
        op.check(&names, operands.len(), results.len(), regions.len())
            .map_err(|message| MlirError::Build {
                what: op.name.to_string(),
                message,
            })?;
        let attributes: Vec<(Identifier<'c>, Attribute<'c>)> = attributes
            .iter()
            .map(|(n, a)| (Identifier::new(self.context, n), *a))
            .collect();
        OperationBuilder::new(op.name, location)
            .add_operands(operands)
            .add_results(results)
            .add_attributes(&attributes)
            .add_regions_vec(regions)
            .build()
            .map_err(|e| MlirError::Build {
                what: op.name.to_string(),
                message: e.to_string(),
            })
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
                    block.append_operation(self.aie(
                        &aie_ops::DMA_WAIT,
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
            let &SeqStep::Transfer {
                bd, issue_token, ..
            } = step
            else {
                return Err(MlirError::invalid(
                    aie_ops::DMA_MEMCPY_ND.name,
                    "no DMA schedule",
                ));
            };
            let list = |xs: &[i64]| -> Result<Attribute<'c>, MlirError> {
                let v: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
                self.attr(&format!("array<i64: {}>", v.join(", ")))
            };
            let sizes: Vec<i64> = pattern.sizes.iter().map(|&s| s as i64).collect();
            let strides: Vec<i64> = pattern.strides.iter().map(|&s| s as i64).collect();
            let memref = block
                .argument(arg)
                .map_err(build_err(aie_ops::RUNTIME_SEQUENCE.name))?;
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
                attrs.push((attr::ISSUE_TOKEN, self.attr("true")?));
            }
            block.append_operation(self.aie(
                &aie_ops::DMA_MEMCPY_ND,
                self.unknown(),
                &[memref.into()],
                &[],
                &attrs,
                vec![],
            )?);
        }
        let region = Region::new();
        region.append_block(block);
        self.aie(
            &aie_ops::RUNTIME_SEQUENCE,
            self.unknown(),
            &[],
            &[],
            &[(
                attr::SYM_NAME,
                StringAttribute::new(self.context, SEQUENCE_SYMBOL).into(),
            )],
            vec![region],
        )
    }
}
