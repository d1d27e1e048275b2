//! The DPU kernel as XRT sees it, and the three sections that describe it:
//! EMBEDDED_METADATA (the kernel and its arguments as XML), IP_LAYOUT (one PS kernel
//! instance) and CONNECTIVITY (which memory each pointer argument lives in), plus
//! ASK_GROUP_CONNECTIVITY.
//!
//! The arguments are aiecc's: `opcode` u64 @0, `instr` (pointer, SRAM) @8, `ninstr` u32
//! @0x10, then `bo0..` (pointers, HOST) packed after it from 0x14 — the offsets are not
//! 8-aligned, because aiecc adds 12 after `instr` and xclbinutil keeps the offsets it is
//! given. XRT passes `run(3, instr, n, bo0, ...)` in this order.

use super::memory;

/// `addressQualifier` in the metadata: 0 scalar, 1 global (a buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Scalar,
    Global,
}

impl Qualifier {
    pub const fn code(self) -> u32 {
        match self {
            Qualifier::Scalar => 0,
            Qualifier::Global => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub name: String,
    pub qualifier: Qualifier,
    pub ty: &'static str,
    pub size: u32,
    pub offset: u32,
    /// Index into the memory topology for buffers.
    pub memory: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub name: String,
    pub instance: String,
    pub dpu_kernel_id: u16,
    pub args: Vec<Arg>,
}

/// aiecc always declares five data buffers; a design with more host buffers needs more.
pub const MIN_BUFFERS: u32 = 5;

/// The kernel aiecc declares for `buffers` host buffers (at least [`MIN_BUFFERS`]).
pub fn dpu_kernel(name: &str, instance: &str, dpu_kernel_id: u16, buffers: u32) -> Kernel {
    let arg = |name: &str, qualifier, ty, size, offset, memory| Arg {
        name: name.into(),
        qualifier,
        ty,
        size,
        offset,
        memory,
    };
    let mut args = vec![
        arg("opcode", Qualifier::Scalar, "uint64_t", 8, 0, None),
        arg(
            "instr",
            Qualifier::Global,
            "char *",
            8,
            8,
            Some(memory::SRAM),
        ),
        arg("ninstr", Qualifier::Scalar, "uint32_t", 4, 0x10, None),
    ];
    for i in 0..buffers.max(MIN_BUFFERS) {
        args.push(arg(
            &format!("bo{i}"),
            Qualifier::Global,
            "void*",
            8,
            0x14 + 8 * i,
            Some(memory::HOST),
        ));
    }
    Kernel {
        name: name.into(),
        instance: instance.into(),
        dpu_kernel_id,
        args,
    }
}

/// EMBEDDED_METADATA, the XML xclbinutil's `--add-kernel` writes for a PS kernel of type
/// `dpu` (same text, same indentation, trailing newline).
pub fn embedded_metadata(k: &Kernel) -> Vec<u8> {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<project>\n  <platform>\n    <device>\n      <core>\n");
    x.push_str(&format!(
        "        <kernel name=\"{}\" language=\"c\" type=\"dpu\">\n",
        xml_escape(&k.name)
    ));
    // subtype 1 is DPU (PS_SUBTYPE), functional 0.
    x.push_str(&format!(
        "          <extended-data subtype=\"1\" functional=\"0\" dpu_kernel_id=\"{:#x}\"/>\n",
        k.dpu_kernel_id
    ));
    for (id, a) in k.args.iter().enumerate() {
        // aiecc spells the first offset "0x00" and xclbinutil copies the string.
        let offset = if a.offset == 0 {
            "0x00".to_string()
        } else {
            format!("{:#x}", a.offset)
        };
        x.push_str(&format!(
            "          <arg name=\"{}\" addressQualifier=\"{}\" id=\"{id}\" size=\"{:#x}\" offset=\"{offset}\" hostOffset=\"0x0\" hostSize=\"{:#x}\" type=\"{}\"/>\n",
            xml_escape(&a.name),
            a.qualifier.code(),
            a.size,
            a.size,
            xml_escape(a.ty)
        ));
    }
    x.push_str(&format!(
        "          <instance name=\"{}\"/>\n",
        xml_escape(&k.instance)
    ));
    x.push_str("        </kernel>\n      </core>\n    </device>\n  </platform>\n</project>\n");
    x.into_bytes()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `IP_TYPE::IP_PS_KERNEL`.
pub const IP_PS_KERNEL: u32 = 7;
pub const IP_DATA_BYTES: usize = 80;

/// IP_LAYOUT: one `ip_data`, a PS kernel of subtype DPU (bits 0-1 = 1, functional bits 4-5
/// = 0) with its `dpu_kernel_id` in bits 16-27, no base address, named `KERNEL:INSTANCE`.
pub fn ip_layout(k: &Kernel) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + IP_DATA_BYTES);
    out.extend_from_slice(&1i32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&IP_PS_KERNEL.to_le_bytes());
    let properties: u32 = 1 | (u32::from(k.dpu_kernel_id & 0x0fff) << 16);
    out.extend_from_slice(&properties.to_le_bytes());
    out.extend_from_slice(&u64::MAX.to_le_bytes()); // "not_used"
    let mut name = [0u8; 64];
    let full = format!("{}:{}", k.name, k.instance);
    let n = full.len().min(63);
    name[..n].copy_from_slice(&full.as_bytes()[..n]);
    out.extend_from_slice(&name);
    out
}

/// (arg_index, ip_layout_index, mem_data_index) for every buffer argument.
pub fn connections(k: &Kernel) -> Vec<(i32, i32, i32)> {
    k.args
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.memory.map(|m| (i as i32, 0, m)))
        .collect()
}

/// CONNECTIVITY: `m_count` i32, then 12-byte `connection`s.
pub fn connectivity(k: &Kernel) -> Vec<u8> {
    encode_connections(&connections(k))
}

/// ASK_GROUP_CONNECTIVITY: the connections, then the same connections again against the
/// group topology. With no memory grouped (the group topology is the memory topology)
/// xclbinutil's second half repeats the first; FastFlowLM's mlir-aie xclbins carry that.
pub fn group_connectivity(k: &Kernel) -> Vec<u8> {
    let mut c = connections(k);
    c.extend(connections(k));
    encode_connections(&c)
}

fn encode_connections(c: &[(i32, i32, i32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 12 * c.len());
    out.extend_from_slice(&(c.len() as i32).to_le_bytes());
    for &(arg, ip, mem) in c {
        for v in [arg, ip, mem] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}
