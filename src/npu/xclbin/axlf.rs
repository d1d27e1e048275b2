//! The AXLF container (XRT's `xclbin.h`): a 496-byte top block (magic, signature fields,
//! key block, unique id, the 152-byte `axlf_header`), the table of 40-byte section headers,
//! then the section payloads, each starting on an 8-byte boundary as xclbinutil places them.
//!
//! | offset | field |
//! |---|---|
//! | 0x000 | magic `xclbin2\0` |
//! | 0x008 | signature length, i32 (-1: unsigned) |
//! | 0x00c | reserved\[28\], 0xff |
//! | 0x028 | key block\[256\], 0xff |
//! | 0x128 | unique id, u64 |
//! | 0x130 | header: length, timestamp, feature-ROM timestamp (u64 each), version patch u16, major u8, minor u8, mode u16, action mask u16, interface uuid\[16\], platform VBNV\[64\], xclbin uuid\[16\], debug bin\[16\], section count u32, 4 pad |
//! | 0x1c8 | section headers: kind u32, name\[16\], 4 pad, offset u64, size u64 |

/// `axlf_section_kind` values this packager writes or the reader names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SectionKind {
    EmbeddedMetadata,
    MemTopology,
    Connectivity,
    IpLayout,
    GroupTopology,
    GroupConnectivity,
    AiePartition,
    /// Any other kind, by number.
    Other(u32),
}

impl SectionKind {
    pub const fn code(self) -> u32 {
        match self {
            SectionKind::EmbeddedMetadata => 2,
            SectionKind::MemTopology => 6,
            SectionKind::Connectivity => 7,
            SectionKind::IpLayout => 8,
            SectionKind::GroupTopology => 26,
            SectionKind::GroupConnectivity => 27,
            SectionKind::AiePartition => 32,
            SectionKind::Other(n) => n,
        }
    }

    pub const fn from_code(code: u32) -> Self {
        match code {
            2 => SectionKind::EmbeddedMetadata,
            6 => SectionKind::MemTopology,
            7 => SectionKind::Connectivity,
            8 => SectionKind::IpLayout,
            26 => SectionKind::GroupTopology,
            27 => SectionKind::GroupConnectivity,
            32 => SectionKind::AiePartition,
            n => SectionKind::Other(n),
        }
    }

    /// xclbinutil's spelling (`--dump-section KIND:...`).
    pub fn name(self) -> String {
        match self {
            SectionKind::EmbeddedMetadata => "EMBEDDED_METADATA".into(),
            SectionKind::MemTopology => "MEM_TOPOLOGY".into(),
            SectionKind::Connectivity => "CONNECTIVITY".into(),
            SectionKind::IpLayout => "IP_LAYOUT".into(),
            SectionKind::GroupTopology => "ASK_GROUP_TOPOLOGY".into(),
            SectionKind::GroupConnectivity => "ASK_GROUP_CONNECTIVITY".into(),
            SectionKind::AiePartition => "AIE_PARTITION".into(),
            SectionKind::Other(n) => format!("kind {n}"),
        }
    }
}

pub const MAGIC: &[u8; 8] = b"xclbin2\0";
/// Where the inline `axlf_header` starts.
pub const HEADER_AT: usize = 0x130;
/// Where the section table starts (`sizeof(axlf)` minus its one inline section header).
pub const SECTIONS_AT: usize = 0x1c8;
pub const SECTION_HEADER_BYTES: usize = 40;
/// `m_sectionName` is 16 bytes, NUL-terminated.
pub const SECTION_NAME_BYTES: usize = 16;

/// The header fields the packager chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderFields {
    pub uuid: [u8; 16],
    /// Seconds since the epoch; xclbinutil also uses it as the unique id.
    pub timestamp: u64,
    /// (major, minor, patch) of the xclbin format writer.
    pub version: (u8, u8, u16),
}

/// One section to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: SectionKind,
    /// At most 15 bytes (the header field keeps a NUL).
    pub name: String,
    pub payload: Vec<u8>,
}

pub(crate) fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// The whole file: top block, header, section table, payloads in the given order.
pub fn write(header: &HeaderFields, sections: &[Section]) -> Vec<u8> {
    let table_end = SECTIONS_AT + SECTION_HEADER_BYTES * sections.len();
    let mut offsets = Vec::with_capacity(sections.len());
    let mut at = table_end;
    for s in sections {
        at = align8(at);
        offsets.push(at);
        at += s.payload.len();
    }
    let length = at;

    let mut out = vec![0u8; length];
    out[..8].copy_from_slice(MAGIC);
    out[8..12].copy_from_slice(&(-1i32).to_le_bytes());
    out[12..0x128].fill(0xff); // reserved and key block: "initialized to 0xFFs"
    out[0x128..0x130].copy_from_slice(&header.timestamp.to_le_bytes());
    let h = HEADER_AT;
    put_u64(&mut out, h, length as u64);
    put_u64(&mut out, h + 8, header.timestamp);
    put_u64(&mut out, h + 0x10, 0);
    out[h + 0x18..h + 0x1a].copy_from_slice(&header.version.2.to_le_bytes());
    out[h + 0x1a] = header.version.0;
    out[h + 0x1b] = header.version.1;
    // mode 0 (XCLBIN_FLAT), action mask 0, interface uuid and VBNV empty: no platform, as
    // in mlir-aie's NPU xclbins.
    out[h + 0x70..h + 0x80].copy_from_slice(&header.uuid);
    out[h + 0x90..h + 0x94].copy_from_slice(&(sections.len() as u32).to_le_bytes());

    for (i, (s, &offset)) in sections.iter().zip(&offsets).enumerate() {
        let e = SECTIONS_AT + SECTION_HEADER_BYTES * i;
        out[e..e + 4].copy_from_slice(&s.kind.code().to_le_bytes());
        let name = s.name.as_bytes();
        let n = name.len().min(SECTION_NAME_BYTES - 1);
        out[e + 4..e + 4 + n].copy_from_slice(&name[..n]);
        put_u64(&mut out, e + 24, offset as u64);
        put_u64(&mut out, e + 32, s.payload.len() as u64);
        out[offset..offset + s.payload.len()].copy_from_slice(&s.payload);
    }
    out
}

fn put_u64(out: &mut [u8], at: usize, v: u64) {
    out[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
