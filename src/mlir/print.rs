//! Printing a lowered design as aie-opt prints it.
//!
//! Our MLIR does not know the `aie`/`aiex` dialects, so its printer would show those ops in
//! generic form. We print them ourselves in their custom assembly syntax (the formats in
//! mlir-aie's ODS and `AIEDialect.cpp`), and hand every upstream op (the kernel bodies) to
//! MLIR's own printer. One `AsmState` for the whole module gives every value the SSA name
//! MLIR would give it, so names agree between the two printers: `%tile_0_2`/`%core_0_2`
//! come from name locations, `%c0`/`%cst` from the upstream dialects' name hints, the rest
//! are numbered as aie-opt numbers them.

use std::ffi::c_void;
use std::fmt::Write as _;

use melior::ir::{
    attribute::{DenseI64ArrayAttribute, IntegerAttribute, TypeAttribute},
    block::BlockLike,
    operation::{OperationLike, OperationPrintingFlags},
    Attribute, Module, OperationRef, RegionLike, ValueLike,
};
use mlir_sys::{
    mlirAsmStateCreateForOperation, mlirAsmStateDestroy, mlirOpPrintingFlagsAssumeVerified,
    mlirOpPrintingFlagsCreate, mlirOpPrintingFlagsDestroy, mlirOpPrintingFlagsPrintNameLocAsPrefix,
    mlirOperationPrintWithState, mlirValuePrintAsOperand, MlirAsmState, MlirStringRef,
};

use crate::design::Design;

use super::{context, lower, verify, MlirError};

const INDENT: &str = "  ";

/// The design's module in aie-opt's custom syntax (what `aie-opt` prints for it).
pub fn emit(design: &Design) -> Result<String, MlirError> {
    let info = verify(design)?;
    let context = context();
    let module = lower(&context, design, &info)?;
    print_module(&module)
}

/// The design's module in MLIR's generic syntax: parseable by any MLIR with unregistered
/// dialects allowed, and by aie-opt.
pub fn emit_generic(design: &Design) -> Result<String, MlirError> {
    let info = verify(design)?;
    let context = context();
    let module = lower(&context, design, &info)?;
    generic(&module)
}

/// MLIR's generic print of a module.
pub fn generic(module: &Module) -> Result<String, MlirError> {
    module
        .as_operation()
        .to_string_with_flags(OperationPrintingFlags::new().print_generic_operation_form())
        .map_err(|e| MlirError::Print {
            op: "builtin.module".into(),
            message: e.to_string(),
        })
}

/// Prints a module built by [`lower`] in aie-opt's custom syntax.
pub fn print_module(module: &Module) -> Result<String, MlirError> {
    let printer = Printer::new(module.as_operation());
    let mut out = String::new();
    printer.op(&mut out, module.as_operation(), 0)?;
    // aie-opt (like mlir-opt) ends its output with an empty line.
    out.push('\n');
    Ok(out)
}

/// Owns the `AsmState` (SSA names for the whole module).
struct Printer {
    state: MlirAsmState,
}

impl Drop for Printer {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        unsafe { mlirAsmStateDestroy(self.state) }
    }
}

unsafe extern "C" fn append(s: MlirStringRef, user: *mut c_void) {
    // SAFETY: `user` is the `&mut String` passed by `Printer`; MLIR gives valid UTF-8 slices
    // of text it prints.
    let out = &mut *(user as *mut String);
    let bytes = std::slice::from_raw_parts(s.data as *const u8, s.length);
    out.push_str(&String::from_utf8_lossy(bytes));
}

fn print_err(op: &str, message: impl Into<String>) -> MlirError {
    MlirError::Print {
        op: op.to_string(),
        message: message.into(),
    }
}

impl Printer {
    fn new(top: OperationRef) -> Self {
        // SAFETY: plain C API calls on a live operation; the flags are only read while the
        // state is created.
        unsafe {
            let flags = mlirOpPrintingFlagsCreate();
            mlirOpPrintingFlagsPrintNameLocAsPrefix(flags);
            // `lower` has verified every op; without this MLIR re-verifies from the module,
            // where symbol uses inside the unregistered `aie.device` do not resolve, and
            // falls back to the generic form.
            mlirOpPrintingFlagsAssumeVerified(flags);
            let state = mlirAsmStateCreateForOperation(top.to_raw(), flags);
            mlirOpPrintingFlagsDestroy(flags);
            Self { state }
        }
    }

    fn value<'a, V: ValueLike<'a>>(&self, v: V) -> String {
        let mut s = String::new();
        // SAFETY: the value belongs to the module the state was made for.
        unsafe {
            mlirValuePrintAsOperand(
                v.to_raw(),
                self.state,
                Some(append),
                &mut s as *mut String as *mut c_void,
            )
        };
        s
    }

    fn upstream(&self, op: OperationRef) -> String {
        let mut s = String::new();
        // SAFETY: as above.
        unsafe {
            mlirOperationPrintWithState(
                op.to_raw(),
                self.state,
                Some(append),
                &mut s as *mut String as *mut c_void,
            )
        };
        s
    }

    fn results(&self, op: OperationRef) -> String {
        if op.result_count() == 0 {
            return String::new();
        }
        let names: Vec<String> = op.results().map(|r| self.value(r)).collect();
        format!("{} = ", names.join(", "))
    }

    fn op(&self, out: &mut String, op: OperationRef, depth: usize) -> Result<(), MlirError> {
        let name = op.name().as_string_ref().as_str().unwrap_or("").to_string();
        let pad = INDENT.repeat(depth);
        let attr = |key: &str| -> Result<Attribute, MlirError> {
            op.attribute(key)
                .map_err(|_| print_err(&name, format!("missing attribute `{key}`")))
        };
        let int = |key: &str| -> Result<i64, MlirError> {
            let a = attr(key)?;
            IntegerAttribute::try_from(a)
                .map(|i| i.value())
                .map_err(|_| print_err(&name, format!("`{key}` is not an integer")))
        };
        let operand = |i: usize| -> Result<String, MlirError> {
            let v = op
                .operand(i)
                .map_err(|_| print_err(&name, format!("no operand {i}")))?;
            Ok(self.value(v))
        };
        match name.as_str() {
            "builtin.module" => {
                writeln!(out, "{pad}module {{").ok();
                self.region_body(out, op, 0, depth + 1, false)?;
                writeln!(out, "{pad}}}").ok();
            }
            "aie.device" => {
                let dev = device_name(int("device")?)
                    .ok_or_else(|| print_err(&name, "unknown device enum value"))?;
                let sym = symbol(attr("sym_name")?);
                let sym = if sym == super::lower::DEVICE_SYMBOL {
                    String::new()
                } else {
                    format!(" @{sym}")
                };
                writeln!(out, "{pad}aie.device({dev}){sym} {{").ok();
                // The trailing `aie.end` is implicit in the custom form.
                self.region_body(out, op, 0, depth + 1, true)?;
                writeln!(out, "{pad}}}").ok();
            }
            "aie.tile" => {
                writeln!(
                    out,
                    "{pad}{}aie.tile({}, {})",
                    self.results(op),
                    int("col")?,
                    int("row")?
                )
                .ok();
            }
            "aie.objectfifo" => {
                let producer = operand(0)?;
                let consumers = (1..op.operand_count())
                    .map(operand)
                    .collect::<Result<Vec<_>, _>>()?;
                let elem_type = TypeAttribute::try_from(attr("elemType")?)
                    .map_err(|_| print_err(&name, "`elemType` is not a type"))?
                    .value();
                writeln!(
                    out,
                    // aie-opt ends this line with a space (its printer emits one before
                    // the optional attribute dictionary); we match it byte for byte.
                    "{pad}aie.objectfifo @{}({producer}, {{{}}}, {}) : {elem_type} ",
                    symbol(attr("sym_name")?),
                    consumers.join(", "),
                    attr("elemNumber")?
                )
                .ok();
            }
            "aie.objectfifo.link" => {
                writeln!(
                    out,
                    "{pad}aie.objectfifo.link {} -> {}({} {})",
                    attr("fifoIns")?,
                    attr("fifoOuts")?,
                    attr("src_offsets")?,
                    attr("dst_offsets")?
                )
                .ok();
            }
            "aie.core" => {
                let tile = operand(0)?;
                writeln!(out, "{pad}{}aie.core({tile}) {{", self.results(op)).ok();
                self.region_body(out, op, 0, depth + 1, false)?;
                let stack = int("stack_size")?;
                // `stack_size` is elided when it is the ODS default (0x400).
                if stack == 0x400 {
                    writeln!(out, "{pad}}}").ok();
                } else {
                    writeln!(out, "{pad}}} {{stack_size = {stack} : i32}}").ok();
                }
            }
            "aie.end" => {
                writeln!(out, "{pad}aie.end").ok();
            }
            "aie.objectfifo.acquire" => {
                let ty = op
                    .result(0)
                    .map_err(|_| print_err(&name, "no result"))?
                    .r#type();
                writeln!(
                    out,
                    "{pad}{}aie.objectfifo.acquire {}({}, {}) : {ty}",
                    self.results(op),
                    attr("objFifo_name")?,
                    port_name(int("port")?),
                    int("size")?
                )
                .ok();
            }
            "aie.objectfifo.release" => {
                writeln!(
                    out,
                    "{pad}aie.objectfifo.release {}({}, {})",
                    attr("objFifo_name")?,
                    port_name(int("port")?),
                    int("size")?
                )
                .ok();
            }
            "aie.objectfifo.subview.access" => {
                let sub = op.operand(0).map_err(|_| print_err(&name, "no operand"))?;
                let ty = op
                    .result(0)
                    .map_err(|_| print_err(&name, "no result"))?
                    .r#type();
                writeln!(
                    out,
                    "{pad}{}aie.objectfifo.subview.access {}[{}] : {} -> {ty}",
                    self.results(op),
                    self.value(sub),
                    int("index")?,
                    sub.r#type()
                )
                .ok();
            }
            "aie.runtime_sequence" => {
                let region = op.region(0).map_err(|_| print_err(&name, "no region"))?;
                let block = region
                    .first_block()
                    .ok_or_else(|| print_err(&name, "no block"))?;
                let args = (0..block.argument_count())
                    .map(|i| {
                        let a = block
                            .argument(i)
                            .map_err(|_| print_err(&name, "bad argument"))?;
                        Ok(format!("{}: {}", self.value(a), a.r#type()))
                    })
                    .collect::<Result<Vec<_>, MlirError>>()?;
                let sym = symbol(attr("sym_name")?);
                let sym = if sym == super::lower::SEQUENCE_SYMBOL {
                    String::new()
                } else {
                    format!(" @{sym}")
                };
                writeln!(
                    out,
                    "{pad}aie.runtime_sequence{sym}({}) {{",
                    args.join(", ")
                )
                .ok();
                self.region_body(out, op, 0, depth + 1, false)?;
                writeln!(out, "{pad}}}").ok();
            }
            "aiex.npu.dma_memcpy_nd" => {
                let memref = op.operand(0).map_err(|_| print_err(&name, "no memref"))?;
                let list = |key: &str| -> Result<String, MlirError> {
                    let a = DenseI64ArrayAttribute::try_from(attr(key)?)
                        .map_err(|_| print_err(&name, format!("`{key}` is not array<i64>")))?;
                    let v = (0..a.len())
                        .map(|i| a.element(i).map(|x| x.to_string()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| print_err(&name, e.to_string()))?;
                    Ok(format!("[{}]", v.join(", ")))
                };
                let mut dict = vec![
                    format!("id = {}", attr("id")?),
                    format!("metadata = {}", attr("metadata")?),
                ];
                if let Ok(token) = op.attribute("issue_token") {
                    // Default-valued (false) attributes are elided.
                    if token.to_string() == "true" {
                        dict.push("issue_token = true".into());
                    }
                }
                dict.sort();
                writeln!(
                    out,
                    "{pad}aiex.npu.dma_memcpy_nd({}{}{}{}) {{{}}} : {}",
                    self.value(memref),
                    list("static_offsets")?,
                    list("static_sizes")?,
                    list("static_strides")?,
                    dict.join(", "),
                    memref.r#type()
                )
                .ok();
            }
            "aiex.npu.dma_wait" => {
                writeln!(
                    out,
                    "{pad}aiex.npu.dma_wait {{symbol = {}}}",
                    attr("symbol")?
                )
                .ok();
            }
            "scf.for" if contains_aie(op) => {
                // Only worker loops hold aie ops; they have no iter_args (see `lower`).
                let region = op.region(0).map_err(|_| print_err(&name, "no region"))?;
                let block = region
                    .first_block()
                    .ok_or_else(|| print_err(&name, "no block"))?;
                let iv = block
                    .argument(0)
                    .map_err(|_| print_err(&name, "no induction variable"))?;
                writeln!(
                    out,
                    "{pad}scf.for {} = {} to {} step {} {{",
                    self.value(iv),
                    operand(0)?,
                    operand(1)?,
                    operand(2)?
                )
                .ok();
                self.region_body(out, op, 0, depth + 1, true)?;
                writeln!(out, "{pad}}}").ok();
            }
            n if n.starts_with("aie.") || n.starts_with("aiex.") => {
                return Err(print_err(n, "no custom syntax known for this op"));
            }
            _ => {
                for line in self.upstream(op).lines() {
                    if line.is_empty() {
                        writeln!(out).ok();
                    } else {
                        writeln!(out, "{pad}{line}").ok();
                    }
                }
            }
        }
        Ok(())
    }

    /// Prints the ops of the single block of region `index`; `skip_terminator` drops an
    /// implicit terminator (`aie.end` of a device, `scf.yield` of a loop).
    fn region_body(
        &self,
        out: &mut String,
        op: OperationRef,
        index: usize,
        depth: usize,
        skip_terminator: bool,
    ) -> Result<(), MlirError> {
        let region = op
            .region(index)
            .map_err(|_| print_err("region", "missing region"))?;
        let mut block = region.first_block();
        while let Some(b) = block {
            let mut next = b.first_operation();
            while let Some(o) = next {
                next = o.next_in_block();
                if skip_terminator && next.is_none() {
                    break;
                }
                self.op(out, o, depth)?;
            }
            block = b.next_in_region();
        }
        Ok(())
    }
}

fn contains_aie(op: OperationRef) -> bool {
    let mut found = false;
    op.walk(melior::ir::operation::WalkOrder::PreOrder, |o| {
        let n = o.name();
        let n = n.as_string_ref().as_str().unwrap_or("");
        if n.starts_with("aie.") || n.starts_with("aiex.") {
            found = true;
            melior::ir::operation::WalkResult::Interrupt
        } else {
            melior::ir::operation::WalkResult::Advance
        }
    });
    found
}

/// The text of a string attribute (`"in"` -> `in`).
fn symbol(a: Attribute) -> String {
    melior::ir::attribute::StringAttribute::try_from(a)
        .map(|s| s.value().to_string())
        .unwrap_or_else(|_| a.to_string())
}

fn port_name(v: i64) -> &'static str {
    if v == super::lower::port_enum(crate::design::Port::Produce) {
        "Produce"
    } else {
        "Consume"
    }
}

fn device_name(v: i64) -> Option<&'static str> {
    super::lower::DEVICE_CASES
        .iter()
        .find(|(_, x)| *x == v)
        .map(|(n, _)| *n)
}
