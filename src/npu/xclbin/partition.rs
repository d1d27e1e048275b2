//! AIE_PARTITION: the array partition the design occupies and its PDIs, each with the CDO
//! groups that tie it to the DPU kernel. The values are aiecc's `emit_partition`:
//! 2048 operations per cycle, fingerprints 23423/12345, one PDI with one PRIMARY CDO group
//! `DPU` (pdi_id 1) serving `dpu_kernel_id`, pre-CDO group 0xC1.
//!
//! Layout (xclbinutil's `SectionAIEPartition`): the 184-byte `aie_partition`, then a heap
//! in this order, every entry starting 8-aligned: partition name (the section's index name,
//! empty), kernel commit id (empty), start columns (u16 each), then per PDI its image, and
//! per CDO group its name, kernel ids (u64 each) and pre-CDO groups (u32 each); then the
//! 96-byte `cdo_group`s, then the 96-byte `aie_pdi`s. Offsets count from the section start.

use super::axlf::align8;

pub const PARTITION_BYTES: usize = 184;
pub const PDI_BYTES: usize = 96;
pub const CDO_GROUP_BYTES: usize = 96;
/// `CDO_Type::CT_PRIMARY`.
pub const CT_PRIMARY: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdoGroup {
    pub name: String,
    pub cdo_type: u8,
    pub pdi_id: u64,
    pub dpu_kernel_ids: Vec<u64>,
    pub pre_cdo_groups: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdi {
    pub uuid: [u8; 16],
    pub image: Vec<u8>,
    pub cdo_groups: Vec<CdoGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub operations_per_cycle: u32,
    pub inference_fingerprint: u64,
    pub pre_post_fingerprint: u64,
    pub column_width: u16,
    pub start_columns: Vec<u16>,
    pub kernel_commit_id: String,
    pub pdis: Vec<Pdi>,
}

/// aiecc's partition for one PDI serving `dpu_kernel_id`.
pub fn aiecc_partition(
    column_width: u16,
    start_columns: Vec<u16>,
    pdi_uuid: [u8; 16],
    pdi_image: Vec<u8>,
    dpu_kernel_id: u16,
) -> Partition {
    Partition {
        name: String::new(),
        operations_per_cycle: 2048,
        inference_fingerprint: 23423,
        pre_post_fingerprint: 12345,
        column_width,
        start_columns,
        kernel_commit_id: String::new(),
        pdis: vec![Pdi {
            uuid: pdi_uuid,
            image: pdi_image,
            cdo_groups: vec![CdoGroup {
                name: "DPU".into(),
                cdo_type: CT_PRIMARY,
                pdi_id: 1,
                dpu_kernel_ids: vec![u64::from(dpu_kernel_id)],
                pre_cdo_groups: vec![0xc1],
            }],
        }],
    }
}

/// The section heap: appends, then pads to 8 bytes, returning where the entry starts.
struct Heap(Vec<u8>);

impl Heap {
    fn put(&mut self, bytes: &[u8]) -> u32 {
        let at = self.0.len();
        self.0.extend_from_slice(bytes);
        self.0.resize(align8(self.0.len()), 0);
        at as u32
    }

    fn put_str(&mut self, s: &str) -> u32 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(&b)
    }
}

fn array(out: &mut [u8], at: usize, size: usize, offset: u32) {
    out[at..at + 4].copy_from_slice(&(size as u32).to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&offset.to_le_bytes());
}

pub fn encode(p: &Partition) -> Vec<u8> {
    let mut heap = Heap(vec![0; PARTITION_BYTES]);
    let name = heap.put_str(&p.name);
    let commit = heap.put_str(&p.kernel_commit_id);
    let cols: Vec<u8> = p
        .start_columns
        .iter()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let cols_at = heap.put(&cols);

    let mut pdi_records = Vec::new();
    for pdi in &p.pdis {
        let image_at = heap.put(&pdi.image);
        let mut groups = Vec::new();
        for g in &pdi.cdo_groups {
            let name_at = heap.put_str(&g.name);
            let ids: Vec<u8> = g
                .dpu_kernel_ids
                .iter()
                .flat_map(|i| i.to_le_bytes())
                .collect();
            let ids_at = heap.put(&ids);
            let pre: Vec<u8> = g
                .pre_cdo_groups
                .iter()
                .flat_map(|i| i.to_le_bytes())
                .collect();
            let pre_at = heap.put(&pre);
            let mut r = vec![0u8; CDO_GROUP_BYTES];
            r[0..4].copy_from_slice(&name_at.to_le_bytes());
            r[4] = g.cdo_type;
            r[8..16].copy_from_slice(&g.pdi_id.to_le_bytes());
            array(&mut r, 16, g.dpu_kernel_ids.len(), ids_at);
            array(&mut r, 24, g.pre_cdo_groups.len(), pre_at);
            groups.push(r);
        }
        let groups_at = heap.put(&groups.concat());
        let mut r = vec![0u8; PDI_BYTES];
        r[0..16].copy_from_slice(&pdi.uuid);
        array(&mut r, 16, pdi.image.len(), image_at);
        array(&mut r, 24, pdi.cdo_groups.len(), groups_at);
        pdi_records.push(r);
    }
    let pdis_at = heap.put(&pdi_records.concat());

    let mut out = heap.0;
    out[4..8].copy_from_slice(&name.to_le_bytes());
    out[8..12].copy_from_slice(&p.operations_per_cycle.to_le_bytes());
    out[16..24].copy_from_slice(&p.inference_fingerprint.to_le_bytes());
    out[24..32].copy_from_slice(&p.pre_post_fingerprint.to_le_bytes());
    out[32..34].copy_from_slice(&p.column_width.to_le_bytes());
    array(&mut out, 40, p.start_columns.len(), cols_at);
    array(&mut out, 120, p.pdis.len(), pdis_at);
    out[128..132].copy_from_slice(&commit.to_le_bytes());
    out
}
