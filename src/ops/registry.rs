//! The op registry: what every op module provides ([`OpSpec`]) and the one table that names
//! them ([`OPS`]). Adding an op is its module plus one line in [`OPS`]; nothing else in the
//! compiler matches on op kinds.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::design::{Design, DesignError};
use crate::device::DeviceModel;
use crate::sim::inputs::InputGen;
use crate::sim::verify::TestCase;
use crate::spec::{Fields, SpecError};

/// What [`crate::op_spec!`] implements from the declaration: the fields every spec has, and
/// the spec fields that size per-core buffers.
pub trait SpecHeader {
    fn name(&self) -> &str;
    fn device(&self) -> &str;
    fn as_any(&self) -> &dyn Any;
    /// The spec fields that size per-core buffers (named when a tile runs out of memory).
    fn buffer_fields(&self) -> &'static str;
}

/// The fields every spec shares, borrowed (what design builders take).
#[derive(Debug, Clone, Copy)]
pub struct SpecCommon<'a> {
    pub name: &'a str,
    pub device: &'a str,
    pub dtype: crate::spec::Dtype,
    pub array: crate::spec::ArraySpec,
    pub depth: u32,
    pub stack_bytes: usize,
}

/// Everything about one op, reached from its parsed spec.
pub trait OpSpec: SpecHeader + Debug + Send + Sync + 'static {
    /// Field rules: what can be judged from the spec and the device shape alone.
    fn check(&self, f: &Fields, device: &DeviceModel) -> Result<(), SpecError>;
    /// The design the spec describes.
    fn build(&self) -> Result<Design, DesignError>;
    /// Inputs for `aiec sim` drawn from `gen`, and the judge comparing the design's outputs
    /// with the op's float64 reference under its documented tolerance.
    fn test_case(&self, design: &Design, gen: &mut InputGen) -> TestCase;
}

/// One registered op: its `op = "..."` key and how to read its spec.
pub struct OpEntry {
    pub name: &'static str,
    pub parse: fn(&str) -> Result<Arc<dyn OpSpec>, toml::de::Error>,
}

impl OpEntry {
    const fn of<S: OpSpec + DeserializeOwned>(name: &'static str) -> Self {
        OpEntry {
            name,
            parse: parse_as::<S>,
        }
    }
}

fn parse_as<S: OpSpec + DeserializeOwned>(text: &str) -> Result<Arc<dyn OpSpec>, toml::de::Error> {
    Ok(Arc::new(toml::from_str::<S>(text)?))
}

/// Every op a spec may name.
pub const OPS: &[OpEntry] = &[
    OpEntry::of::<super::matmul::MatmulSpec>("matmul"),
    OpEntry::of::<super::mel::MelSpec>("mel"),
    OpEntry::of::<super::attention::AttentionSpec>("attention"),
    OpEntry::of::<super::attention::AttentionDecodeSpec>("attention_decode"),
    OpEntry::of::<super::gelu::GeluSpec>("gelu"),
    OpEntry::of::<super::layernorm::LayernormSpec>("layernorm"),
    OpEntry::of::<super::softmax::SoftmaxSpec>("softmax"),
    OpEntry::of::<super::rmsnorm::RmsnormSpec>("rmsnorm"),
    OpEntry::of::<super::elementwise::ElementwiseSpec>("elementwise"),
    OpEntry::of::<super::add::AddSpec>("add"),
    OpEntry::of::<super::linear::LinearSpec>("linear"),
    OpEntry::of::<super::conv::ConvSpec>("conv"),
    OpEntry::of::<super::quantize::QuantizeSpec>("quantize"),
];

/// The entry for `op`, if one is registered.
pub fn lookup(op: &str) -> Option<&'static OpEntry> {
    OPS.iter().find(|e| e.name == op)
}

/// The registered op names, for error messages.
pub fn names() -> Vec<&'static str> {
    OPS.iter().map(|e| e.name).collect()
}

/// Declares an op's spec struct: the fields every spec shares (`op`, `name`, `device`,
/// `dtype`, `array`, `depth`, `stack_bytes`) followed by the op's own, parsed strictly
/// (unknown keys are errors); then `buffer_fields = "..."`, the fields that size per-core
/// buffers (what a resource error tells the user to reduce).
#[macro_export]
macro_rules! op_spec {
    (
        $(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }
        buffer_fields = $buffer_fields:literal;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The `op` key (already used to pick this struct).
            #[serde(rename = "op", default)]
            #[doc(hidden)]
            pub _op: serde::de::IgnoredAny,
            pub name: String,
            /// Device model name (`npu1`, `npu1_3col`, `npu2`, ...).
            pub device: String,
            pub dtype: $crate::spec::Dtype,
            pub array: $crate::spec::ArraySpec,
            /// Object FIFO depth of the streams (2 = double buffering).
            #[serde(default = "crate::spec::default_depth")]
            pub depth: u32,
            /// Stack reserved on each core, bytes.
            #[serde(default = "crate::spec::default_stack")]
            pub stack_bytes: usize,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// The fields every spec shares.
            pub fn common(&self) -> $crate::ops::registry::SpecCommon<'_> {
                $crate::ops::registry::SpecCommon {
                    name: &self.name,
                    device: &self.device,
                    dtype: self.dtype,
                    array: self.array,
                    depth: self.depth,
                    stack_bytes: self.stack_bytes,
                }
            }
        }

        impl $crate::ops::registry::SpecHeader for $name {
            fn name(&self) -> &str {
                &self.name
            }
            fn device(&self) -> &str {
                &self.device
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
            fn buffer_fields(&self) -> &'static str {
                $buffer_fields
            }
        }
    };
}
