//! The contract of the `aie`/`aiex` ops we emit, written once: name, operands, results,
//! attributes (their ODS names, mlir-aie `AIEOps.td` / `AIEX.td`) and custom syntax. Our MLIR
//! does not register these dialects, so this table is what keeps the three users in step:
//! lowering builds an op only with attributes its entry lists ([`super::lower`]), the printer
//! prints it from the entry's syntax ([`super::print`]), and the simulator recognises the ops
//! it cuts out of core bodies by the same names and attributes (`crate::sim`).
//!
//! A [`Syntax::Line`] template is literal text with placeholders:
//! `{=}` the results (`%x = `, empty without results); `{%N}` operand N; `{%N:type}` its type;
//! `{%N..}` operands N.. joined by `, `; `{->}` the first result's type; `{a}` attribute `a` as
//! MLIR prints it; `{#a}` integer attribute `a`; `{$a}` string attribute `a` unquoted;
//! `{:a}` type attribute `a`; `{port a}` an `ObjectFifoPort` case name. `{{` and `}}` are
//! literal braces.

use crate::design::Port;

/// Attribute names that more than one user reads.
pub mod attr {
    pub const SYM_NAME: &str = "sym_name";
    pub const DEVICE: &str = "device";
    pub const COL: &str = "col";
    pub const ROW: &str = "row";
    pub const STACK_SIZE: &str = "stack_size";
    pub const FIFO: &str = "objFifo_name";
    pub const PORT: &str = "port";
    pub const SIZE: &str = "size";
    pub const INDEX: &str = "index";
    pub const ISSUE_TOKEN: &str = "issue_token";
}

/// How an op prints in aie-opt's custom syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// One line from a template (see the module docs).
    Line(&'static str),
    /// Printed by the printer's own code: ops with a region, or with attributes whose
    /// default value aie-opt elides.
    Custom,
}

/// One op of the contract. Its name is written only here: users match an op on its entry
/// (`match lookup(name) { Some(&CORE) => .. }`), or read `CORE.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AieOp {
    pub name: &'static str,
    /// What the operands are, in order; the last one repeats when `variadic`.
    pub operands: &'static [&'static str],
    pub variadic: bool,
    pub results: usize,
    /// Every attribute the op may carry, ODS spelling.
    pub attributes: &'static [&'static str],
    pub regions: usize,
    pub syntax: Syntax,
}

const fn op(name: &'static str, attributes: &'static [&'static str], syntax: Syntax) -> AieOp {
    AieOp {
        name,
        operands: &[],
        variadic: false,
        results: 0,
        attributes,
        regions: 0,
        syntax,
    }
}

pub const DEVICE: AieOp = AieOp {
    regions: 1,
    ..op(
        "aie.device",
        &[attr::DEVICE, attr::SYM_NAME],
        Syntax::Custom,
    )
};
pub const TILE: AieOp = AieOp {
    results: 1,
    ..op(
        "aie.tile",
        &[attr::COL, attr::ROW],
        Syntax::Line("{=}aie.tile({#col}, {#row})"),
    )
};
pub const OBJECTFIFO: AieOp = AieOp {
    operands: &["producer tile", "consumer tile"],
    variadic: true,
    ..op(
        "aie.objectfifo",
        &[
            attr::SYM_NAME,
            "elemNumber",
            "elemType",
            "dimensionsToStream",
            "dimensionsFromStreamPerConsumer",
            "via_DMA",
            "plio",
            "disable_synchronization",
        ],
        // aie-opt ends this line with a space (its printer emits one before the optional
        // attribute dictionary); we match it byte for byte.
        Syntax::Line("aie.objectfifo @{$sym_name}({%0}, {{{%1..}}}, {elemNumber}) : {:elemType} "),
    )
};
pub const LINK: AieOp = op(
    "aie.objectfifo.link",
    &["fifoIns", "fifoOuts", "src_offsets", "dst_offsets"],
    Syntax::Line("aie.objectfifo.link {fifoIns} -> {fifoOuts}({src_offsets} {dst_offsets})"),
);
pub const CORE: AieOp = AieOp {
    operands: &["tile"],
    results: 1,
    regions: 1,
    // `stack_size` is elided when it is the ODS default.
    ..op("aie.core", &[attr::STACK_SIZE], Syntax::Custom)
};
pub const END: AieOp = op("aie.end", &[], Syntax::Line("aie.end"));
pub const ACQUIRE: AieOp = AieOp {
    results: 1,
    ..op(
        "aie.objectfifo.acquire",
        &[attr::FIFO, attr::PORT, attr::SIZE],
        Syntax::Line("{=}aie.objectfifo.acquire {objFifo_name}({port port}, {#size}) : {->}"),
    )
};
pub const RELEASE: AieOp = op(
    "aie.objectfifo.release",
    &[attr::FIFO, attr::PORT, attr::SIZE],
    Syntax::Line("aie.objectfifo.release {objFifo_name}({port port}, {#size})"),
);
pub const SUBVIEW_ACCESS: AieOp = AieOp {
    operands: &["subview"],
    results: 1,
    ..op(
        "aie.objectfifo.subview.access",
        &[attr::INDEX],
        Syntax::Line("{=}aie.objectfifo.subview.access {%0}[{#index}] : {%0:type} -> {->}"),
    )
};
pub const RUNTIME_SEQUENCE: AieOp = AieOp {
    regions: 1,
    ..op("aie.runtime_sequence", &[attr::SYM_NAME], Syntax::Custom)
};
pub const DMA_MEMCPY_ND: AieOp = AieOp {
    operands: &["host memref"],
    // Default-valued `issue_token` is elided.
    ..op(
        "aiex.npu.dma_memcpy_nd",
        &[
            "operandSegmentSizes",
            "static_offsets",
            "static_sizes",
            "static_strides",
            "metadata",
            "id",
            attr::ISSUE_TOKEN,
        ],
        Syntax::Custom,
    )
};
pub const DMA_WAIT: AieOp = op(
    "aiex.npu.dma_wait",
    &["symbol"],
    Syntax::Line("aiex.npu.dma_wait {{symbol = {symbol}}}"),
);

/// mlir-aie's `AIEDevice` cases. It is an `I32EnumAttr`: the attribute is the case's value.
pub const DEVICE_CASES: &[(&str, i64)] = &[
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

/// mlir-aie's `ObjectFifoPort` enum, also an `I32EnumAttr`.
pub const fn port_enum(port: Port) -> i64 {
    match port {
        Port::Produce => 0,
        Port::Consume => 1,
    }
}

/// The port an `ObjectFifoPort` value names.
pub fn port_of(value: i64) -> Option<Port> {
    [Port::Produce, Port::Consume]
        .into_iter()
        .find(|p| port_enum(*p) == value)
}

/// Every op we emit.
pub const OPS: &[AieOp] = &[
    DEVICE,
    TILE,
    OBJECTFIFO,
    LINK,
    CORE,
    END,
    ACQUIRE,
    RELEASE,
    SUBVIEW_ACCESS,
    RUNTIME_SEQUENCE,
    DMA_MEMCPY_ND,
    DMA_WAIT,
];

/// The contract of the op called `name`.
pub fn lookup(name: &str) -> Option<&'static AieOp> {
    OPS.iter().find(|op| op.name == name)
}

/// Whether `name` belongs to the `aie` or `aiex` dialect.
pub fn is_aie(name: &str) -> bool {
    name.starts_with("aie.") || name.starts_with("aiex.")
}

impl AieOp {
    /// Checks a build of this op against the contract: attribute names, operand and result
    /// counts, regions. `Err` says what is off.
    pub fn check(
        &self,
        attributes: &[&str],
        operands: usize,
        results: usize,
        regions: usize,
    ) -> Result<(), String> {
        if let Some(a) = attributes.iter().find(|a| !self.attributes.contains(a)) {
            return Err(format!("attribute `{a}` is not part of its contract"));
        }
        let arity_ok = if self.variadic {
            operands >= self.operands.len()
        } else {
            operands == self.operands.len()
        };
        if !arity_ok || results != self.results || regions != self.regions {
            return Err(format!(
                "built with {operands} operands, {results} results, {regions} regions; its contract has {}{} operands, {} results, {} regions",
                self.operands.len(),
                if self.variadic { "+" } else { "" },
                self.results,
                self.regions
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_in_the_aie_dialects() {
        for (i, a) in OPS.iter().enumerate() {
            assert!(is_aie(a.name), "{}", a.name);
            assert!(OPS[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
            assert_eq!(lookup(a.name), Some(a));
        }
    }

    #[test]
    fn line_templates_name_only_contract_attributes() {
        for op in OPS {
            let Syntax::Line(t) = op.syntax else { continue };
            let mut rest = t.replace("{{", "").replace("}}", "");
            while let Some(start) = rest.find('{') {
                let end = rest[start..].find('}').expect("closed placeholder") + start;
                let p = &rest[start + 1..end];
                let key = p
                    .trim_start_matches(['#', '$', ':'])
                    .trim_start_matches("port ");
                let structural = p == "=" || p == "->" || p.starts_with('%');
                assert!(
                    structural || op.attributes.contains(&key),
                    "{}: `{p}` is not an attribute of the op",
                    op.name
                );
                rest = rest[end + 1..].to_string();
            }
        }
    }

    #[test]
    fn builds_outside_the_contract_are_refused() {
        assert!(RELEASE
            .check(&["objFifo_name", "port", "size"], 0, 0, 0)
            .is_ok());
        let err = RELEASE
            .check(&["objFifo_name", "count"], 0, 0, 0)
            .unwrap_err();
        assert!(err.contains("`count`"), "{err}");
        assert!(OBJECTFIFO.check(&[], 3, 0, 0).is_ok());
        assert!(OBJECTFIFO.check(&[], 1, 0, 0).is_err());
        assert!(TILE.check(&["col", "row"], 0, 0, 0).is_err());
    }
}
