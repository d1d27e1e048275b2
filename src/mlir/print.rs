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
    Attribute, Module, OperationRef, RegionLike, Value, ValueLike,
};
use mlir_sys::{
    mlirAsmStateCreateForOperation, mlirAsmStateDestroy, mlirOpPrintingFlagsAssumeVerified,
    mlirOpPrintingFlagsCreate, mlirOpPrintingFlagsDestroy, mlirOpPrintingFlagsPrintNameLocAsPrefix,
    mlirOperationPrintWithState, mlirValuePrintAsOperand, MlirAsmState, MlirStringCallback,
    MlirStringRef,
};

use crate::design::Design;

use super::aie_ops::{self, attr, AieOp, Syntax};
use super::{context, lower, verify, MlirError};

const INDENT: &str = "  ";

/// The design's module in aie-opt's custom syntax (what `aie-opt` prints for it).
pub fn emit(design: &Design) -> Result<String, MlirError> {
    let info = verify(design)?;
    let context = context();
    let module = lower(&context, design, &info)?;
    Ok(hoist_affine_maps(&print_module(&module)?))
}

/// Replaces every inline `affine_map<...>` with an alias `#map`, `#map1`, ... declared at
/// the top of the module, numbered in order of first appearance, as MLIR's printer (and so
/// aie-opt) prints them.
fn hoist_affine_maps(text: &str) -> String {
    const OPEN: &str = "affine_map<";
    let mut maps: Vec<String> = Vec::new();
    let mut body = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        body.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        // The map ends at the `>` that closes `affine_map<`; the `>` of `->` does not count.
        let (mut depth, mut end, mut prev) = (1usize, None, ' ');
        for (i, c) in after.char_indices() {
            match c {
                '<' => depth += 1,
                '>' if prev != '-' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
            prev = c;
        }
        let Some(end) = end else {
            body.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let map = &rest[start..start + OPEN.len() + end + 1];
        let index = maps.iter().position(|m| m == map).unwrap_or_else(|| {
            maps.push(map.to_string());
            maps.len() - 1
        });
        body.push_str(&alias_name(index));
        rest = &after[end + 1..];
    }
    body.push_str(rest);
    let mut out = String::new();
    for (i, map) in maps.iter().enumerate() {
        out.push_str(&format!("{} = {map}\n", alias_name(i)));
    }
    out.push_str(&body);
    out
}

fn alias_name(index: usize) -> String {
    if index == 0 {
        "#map".to_string()
    } else {
        format!("#map{index}")
    }
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

/// The text an MLIR C API print call writes through `append`, given that callback and its
/// user data.
fn collect(print: impl FnOnce(MlirStringCallback, *mut c_void)) -> String {
    let mut s = String::new();
    print(Some(append), &mut s as *mut String as *mut c_void);
    s
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
        // SAFETY: the value belongs to the module the state was made for.
        collect(|callback, user| unsafe {
            mlirValuePrintAsOperand(v.to_raw(), self.state, callback, user)
        })
    }

    fn upstream(&self, op: OperationRef) -> String {
        // SAFETY: as above.
        collect(|callback, user| unsafe {
            mlirOperationPrintWithState(op.to_raw(), self.state, callback, user)
        })
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
        let contract = aie_ops::lookup(&name);
        match contract.map(|c| c.syntax) {
            Some(Syntax::Line(template)) => {
                writeln!(out, "{pad}{}", self.line(op, &name, template)?).ok();
            }
            Some(Syntax::Custom) => self.custom(out, op, contract, depth)?,
            None if name == "builtin.module" => {
                writeln!(out, "{pad}module {{").ok();
                self.region_body(out, op, 0, depth + 1, false)?;
                writeln!(out, "{pad}}}").ok();
            }
            None if name == "scf.for" && contains_aie(op) => self.worker_loop(out, op, depth)?,
            None if aie_ops::is_aie(&name) => {
                return Err(print_err(&name, "no custom syntax known for this op"));
            }
            None => {
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

    /// Fills a [`Syntax::Line`] template (placeholders as in [`aie_ops`]) from `op`.
    fn line(&self, op: OperationRef, name: &str, template: &str) -> Result<String, MlirError> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("{{") {
                out.push('{');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("}}") {
                out.push('}');
                rest = r;
            } else if let Some(r) = rest.strip_prefix('{') {
                let end = r.find('}').ok_or_else(|| {
                    print_err(name, format!("unclosed placeholder in `{template}`"))
                })?;
                out.push_str(&self.placeholder(op, name, &r[..end])?);
                rest = &r[end + 1..];
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Ok(out)
    }

    fn placeholder(&self, op: OperationRef, name: &str, p: &str) -> Result<String, MlirError> {
        let operand = |i: &str| -> Result<Value, MlirError> {
            let i: usize = i
                .parse()
                .map_err(|_| print_err(name, format!("bad placeholder `{{%{i}}}`")))?;
            op.operand(i)
                .map_err(|_| print_err(name, format!("no operand {i}")))
        };
        Ok(match p {
            "=" => self.results(op),
            "->" => op
                .result(0)
                .map_err(|_| print_err(name, "no result"))?
                .r#type()
                .to_string(),
            _ if p.starts_with('%') => {
                let n = &p[1..];
                if let Some(from) = n.strip_suffix("..") {
                    let from: usize = from
                        .parse()
                        .map_err(|_| print_err(name, format!("bad placeholder `{{{p}}}`")))?;
                    let values: Vec<String> =
                        op.operands().skip(from).map(|v| self.value(v)).collect();
                    values.join(", ")
                } else if let Some(i) = n.strip_suffix(":type") {
                    operand(i)?.r#type().to_string()
                } else {
                    self.value(operand(n)?)
                }
            }
            _ if p.starts_with('#') => int_attr(op, name, &p[1..])?.to_string(),
            _ if p.starts_with('$') => symbol(attribute(op, name, &p[1..])?),
            _ if p.starts_with(':') => TypeAttribute::try_from(attribute(op, name, &p[1..])?)
                .map_err(|_| print_err(name, format!("`{}` is not a type", &p[1..])))?
                .value()
                .to_string(),
            _ if p.starts_with("port ") => port_name(int_attr(op, name, &p[5..])?).to_string(),
            _ => attribute(op, name, p)?.to_string(),
        })
    }

    /// The ops whose syntax a one-line template cannot say: those with a region, and
    /// `dma_memcpy_nd` (its static lists and elided default attributes).
    fn custom(
        &self,
        out: &mut String,
        op: OperationRef,
        contract: Option<&AieOp>,
        depth: usize,
    ) -> Result<(), MlirError> {
        let pad = INDENT.repeat(depth);
        let name = contract.map_or("", |c| c.name);
        match contract {
            Some(&aie_ops::DEVICE) => {
                let dev = device_name(int_attr(op, name, attr::DEVICE)?)
                    .ok_or_else(|| print_err(name, "unknown device enum value"))?;
                let sym = symbol(attribute(op, name, attr::SYM_NAME)?);
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
            Some(&aie_ops::CORE) => {
                let tile = op
                    .operand(0)
                    .map_err(|_| print_err(name, "no tile operand"))?;
                let tile = self.value(tile);
                writeln!(out, "{pad}{}aie.core({tile}) {{", self.results(op)).ok();
                self.region_body(out, op, 0, depth + 1, false)?;
                let stack = int_attr(op, name, attr::STACK_SIZE)?;
                // `stack_size` is elided when it is the ODS default (0x400).
                if stack == 0x400 {
                    writeln!(out, "{pad}}}").ok();
                } else {
                    writeln!(out, "{pad}}} {{stack_size = {stack} : i32}}").ok();
                }
            }
            Some(&aie_ops::RUNTIME_SEQUENCE) => self.runtime_sequence(out, op, depth)?,
            Some(&aie_ops::DMA_MEMCPY_ND) => {
                writeln!(out, "{pad}{}", self.dma_memcpy_nd(op)?).ok();
            }
            _ => return Err(print_err(name, "no custom syntax known for this op")),
        }
        Ok(())
    }

    fn runtime_sequence(
        &self,
        out: &mut String,
        op: OperationRef,
        depth: usize,
    ) -> Result<(), MlirError> {
        let name = aie_ops::RUNTIME_SEQUENCE.name;
        let pad = INDENT.repeat(depth);
        let region = op.region(0).map_err(|_| print_err(name, "no region"))?;
        let block = region
            .first_block()
            .ok_or_else(|| print_err(name, "no block"))?;
        let args = (0..block.argument_count())
            .map(|i| {
                let a = block
                    .argument(i)
                    .map_err(|_| print_err(name, "bad argument"))?;
                Ok(format!("{}: {}", self.value(a), a.r#type()))
            })
            .collect::<Result<Vec<_>, MlirError>>()?;
        let sym = symbol(attribute(op, name, attr::SYM_NAME)?);
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
        Ok(())
    }

    fn dma_memcpy_nd(&self, op: OperationRef) -> Result<String, MlirError> {
        let name = aie_ops::DMA_MEMCPY_ND.name;
        let memref = op.operand(0).map_err(|_| print_err(name, "no memref"))?;
        let list = |key: &str| -> Result<String, MlirError> {
            let a = DenseI64ArrayAttribute::try_from(attribute(op, name, key)?)
                .map_err(|_| print_err(name, format!("`{key}` is not array<i64>")))?;
            let v = (0..a.len())
                .map(|i| a.element(i).map(|x| x.to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| print_err(name, e.to_string()))?;
            Ok(format!("[{}]", v.join(", ")))
        };
        let mut dict = vec![
            format!("id = {}", attribute(op, name, "id")?),
            format!("metadata = {}", attribute(op, name, "metadata")?),
        ];
        if let Ok(token) = op.attribute(attr::ISSUE_TOKEN) {
            // Default-valued (false) attributes are elided.
            if token.to_string() == "true" {
                dict.push("issue_token = true".into());
            }
        }
        dict.sort();
        Ok(format!(
            "aiex.npu.dma_memcpy_nd({}{}{}{}) {{{}}} : {}",
            self.value(memref),
            list("static_offsets")?,
            list("static_sizes")?,
            list("static_strides")?,
            dict.join(", "),
            memref.r#type()
        ))
    }

    /// A worker loop: only these hold aie ops, and they have no iter_args (see `lower`).
    fn worker_loop(
        &self,
        out: &mut String,
        op: OperationRef,
        depth: usize,
    ) -> Result<(), MlirError> {
        let name = "scf.for";
        let pad = INDENT.repeat(depth);
        let operand = |i: usize| -> Result<String, MlirError> {
            let v = op
                .operand(i)
                .map_err(|_| print_err(name, format!("no operand {i}")))?;
            Ok(self.value(v))
        };
        let region = op.region(0).map_err(|_| print_err(name, "no region"))?;
        let block = region
            .first_block()
            .ok_or_else(|| print_err(name, "no block"))?;
        let iv = block
            .argument(0)
            .map_err(|_| print_err(name, "no induction variable"))?;
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

fn attribute<'c>(
    op: OperationRef<'c, '_>,
    name: &str,
    key: &str,
) -> Result<Attribute<'c>, MlirError> {
    op.attribute(key)
        .map_err(|_| print_err(name, format!("missing attribute `{key}`")))
}

fn int_attr(op: OperationRef, name: &str, key: &str) -> Result<i64, MlirError> {
    IntegerAttribute::try_from(attribute(op, name, key)?)
        .map(|i| i.value())
        .map_err(|_| print_err(name, format!("`{key}` is not an integer")))
}

fn contains_aie(op: OperationRef) -> bool {
    let mut found = false;
    op.walk(melior::ir::operation::WalkOrder::PreOrder, |o| {
        let n = o.name();
        let n = n.as_string_ref().as_str().unwrap_or("");
        if aie_ops::is_aie(n) {
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
    match aie_ops::port_of(v) {
        Some(crate::design::Port::Produce) => "Produce",
        _ => "Consume",
    }
}

fn device_name(v: i64) -> Option<&'static str> {
    aie_ops::DEVICE_CASES
        .iter()
        .find(|(_, x)| *x == v)
        .map(|(n, _)| *n)
}
