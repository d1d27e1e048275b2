//! MEM_TOPOLOGY (and ASK_GROUP_TOPOLOGY, the same bytes when no memory is grouped): the two
//! memories an NPU xclbin declares. Both are `MEM_DRAM` at 0x4000000, as mlir-aie's aiecc
//! writes them: `HOST` (64 MiB) for the data buffers and `SRAM` (48 MiB) for the
//! instruction stream. The NPU driver allocates real memory itself; XRT uses these entries
//! to map each kernel argument to a buffer group.
//!
//! Layout: `m_count` i32, 4 pad, then 40-byte `mem_data`: type u8, used u8, 6 pad, size in
//! KiB u64, base address u64, tag\[16\].

/// `MEM_TYPE::MEM_DRAM`.
pub const MEM_DRAM: u8 = 2;
pub const MEM_DATA_BYTES: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    pub mem_type: u8,
    pub used: bool,
    pub size_kb: u64,
    pub base_address: u64,
    pub tag: String,
}

/// Index of `HOST` in [`npu_memories`] (the `mem_data_index` of every data buffer).
pub const HOST: i32 = 0;
/// Index of `SRAM` (the instruction buffer's).
pub const SRAM: i32 = 1;

/// aiecc's `mem_topology`.
pub fn npu_memories() -> Vec<Memory> {
    let dram = |tag: &str, size_kb| Memory {
        mem_type: MEM_DRAM,
        used: true,
        size_kb,
        base_address: 0x400_0000,
        tag: tag.into(),
    };
    vec![dram("HOST", 0x10000), dram("SRAM", 0xc000)]
}

pub fn encode(memories: &[Memory]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + MEM_DATA_BYTES * memories.len());
    out.extend_from_slice(&(memories.len() as i32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    for m in memories {
        out.push(m.mem_type);
        out.push(u8::from(m.used));
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&m.size_kb.to_le_bytes());
        out.extend_from_slice(&m.base_address.to_le_bytes());
        let mut tag = [0u8; 16];
        let n = m.tag.len().min(15);
        tag[..n].copy_from_slice(&m.tag.as_bytes()[..n]);
        out.extend_from_slice(&tag);
    }
    out
}
