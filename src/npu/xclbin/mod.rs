//! `final.xclbin`, packaged by us (no xclbinutil): the AXLF container XRT loads, laid out
//! section by section as mlir-aie's aiecc flow makes it with
//! `xclbinutil --add-replace-section MEM_TOPOLOGY:JSON --add-kernel kernels.json
//! --add-replace-section AIE_PARTITION:JSON`:
//!
//! | # | section | module |
//! |---|---|---|
//! | 0 | MEM_TOPOLOGY `mem_topology` | [`memory`] |
//! | 1 | AIE_PARTITION `aie_partition` (the PDI) | [`partition`] |
//! | 2 | EMBEDDED_METADATA | [`kernel`] |
//! | 3 | IP_LAYOUT | [`kernel`] |
//! | 4 | CONNECTIVITY | [`kernel`] |
//! | 5 | ASK_GROUP_CONNECTIVITY | [`kernel`] |
//! | 6 | ASK_GROUP_TOPOLOGY | [`memory`] |
//!
//! [`axlf`] writes the header and section table, [`reader`] parses any AXLF back into facts.
//! What differs from an xclbinutil file: no JSON mirror after the last section (XRT does
//! not read it), a name-based uuid and timestamp 0 instead of random/now, so the same
//! design gives the same bytes.

pub mod axlf;
pub mod describe;
pub mod kernel;
pub mod memory;
pub mod partition;
pub mod reader;

pub use axlf::SectionKind;
pub use reader::{read, ReadError, Xclbin};

/// The version xclbinutil 2.21.75 stamps, the release whose layout we follow (and that
/// FastFlowLM's mlir-aie xclbins carry).
pub const FORMAT_VERSION: (u8, u8, u16) = (2, 21, 75);

/// Every PDI bootgen writes starts with its width-detection words.
pub const PDI_MAGIC: [u8; 16] = [
    0xdd, 0, 0, 0, 0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, 0xcc, 0xbb, 0xaa, 0x99,
];

#[derive(thiserror::Error, Debug, PartialEq, Eq)]
pub enum PackageError {
    #[error("the PDI is not a bootgen image: it does not start with the width-detection words dd000000 44332211 88776655 ccbbaa99 ({len} bytes)")]
    NotPdi { len: usize },
    #[error("dpu_kernel_id {0:?} is not a hex number below 0x1000")]
    KernelId(String),
    #[error("the partition needs a column width of 1..=8 and at least one start column")]
    Partition,
}

/// What one xclbin packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub kernel_name: String,
    pub instance_name: String,
    /// As aiecc spells it, e.g. `0x901`.
    pub dpu_kernel_id: String,
    pub host_buffers: u32,
    pub column_width: u16,
    pub start_columns: Vec<u16>,
    pub pdi_uuid: [u8; 16],
    pub pdi: Vec<u8>,
}

pub fn parse_kernel_id(s: &str) -> Result<u16, PackageError> {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .filter(|&id| id < 0x1000)
        .ok_or_else(|| PackageError::KernelId(s.to_string()))
}

/// The sections, in aiecc/xclbinutil's order.
pub fn sections(p: &Package) -> Result<Vec<axlf::Section>, PackageError> {
    if !p.pdi.starts_with(&PDI_MAGIC) {
        return Err(PackageError::NotPdi { len: p.pdi.len() });
    }
    if !(1..=8).contains(&p.column_width) || p.start_columns.is_empty() {
        return Err(PackageError::Partition);
    }
    let id = parse_kernel_id(&p.dpu_kernel_id)?;
    let k = kernel::dpu_kernel(&p.kernel_name, &p.instance_name, id, p.host_buffers);
    let mems = memory::encode(&memory::npu_memories());
    let part = partition::aiecc_partition(
        p.column_width,
        p.start_columns.clone(),
        p.pdi_uuid,
        p.pdi.clone(),
        id,
    );
    let s = |kind, name: &str, payload| axlf::Section {
        kind,
        name: name.into(),
        payload,
    };
    Ok(vec![
        s(SectionKind::MemTopology, "mem_topology", mems.clone()),
        s(
            SectionKind::AiePartition,
            "aie_partition",
            partition::encode(&part),
        ),
        s(
            SectionKind::EmbeddedMetadata,
            "",
            kernel::embedded_metadata(&k),
        ),
        s(SectionKind::IpLayout, "", kernel::ip_layout(&k)),
        s(SectionKind::Connectivity, "", kernel::connectivity(&k)),
        s(
            SectionKind::GroupConnectivity,
            "",
            kernel::group_connectivity(&k),
        ),
        s(SectionKind::GroupTopology, "", mems),
    ])
}

/// The xclbin file. Its uuid is a v5 uuid of the sections, so it changes exactly when
/// something XRT caches (the PDI, the kernel) changes.
pub fn package(p: &Package) -> Result<Vec<u8>, PackageError> {
    let sections = sections(p)?;
    let namespace = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"aiec/npu/xclbin");
    let mut key = Vec::new();
    for s in &sections {
        key.extend_from_slice(&s.kind.code().to_le_bytes());
        key.extend_from_slice(&(s.payload.len() as u64).to_le_bytes());
        key.extend_from_slice(&s.payload);
    }
    let header = axlf::HeaderFields {
        uuid: *uuid::Uuid::new_v5(&namespace, &key).as_bytes(),
        timestamp: 0,
        version: FORMAT_VERSION,
    };
    Ok(axlf::write(&header, &sections))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(buffers: u32) -> Package {
        let mut pdi = PDI_MAGIC.to_vec();
        pdi.extend_from_slice(b"rest of an image");
        Package {
            kernel_name: "MLIR_AIE".into(),
            instance_name: "MLIRAIE".into(),
            dpu_kernel_id: "0x901".into(),
            host_buffers: buffers,
            column_width: 4,
            start_columns: vec![0],
            pdi_uuid: [7; 16],
            pdi,
        }
    }

    #[test]
    fn package_reads_back() {
        let p = pkg(3);
        let bytes = package(&p).unwrap();
        let x = read(&bytes).unwrap();
        assert_eq!(x.length as usize, bytes.len());
        assert_eq!(x.version, FORMAT_VERSION);
        assert_eq!(x.trailing_bytes, 0);
        let kinds: Vec<u32> = x.sections.iter().map(|s| s.kind.code()).collect();
        assert_eq!(kinds, [6, 32, 2, 8, 7, 27, 26]);
        for s in &x.sections {
            assert_eq!(s.offset % 8, 0, "{s:?}");
        }
        let k = &x.kernels.as_ref().unwrap()[0];
        assert_eq!(k.name, "MLIR_AIE");
        assert_eq!(k.dpu_kernel_id.as_deref(), Some("0x901"));
        // Fewer than five host buffers still get aiecc's five.
        let offsets: Vec<u64> = k.args.iter().map(|a| a.offset).collect();
        assert_eq!(offsets, [0, 8, 0x10, 0x14, 0x1c, 0x24, 0x2c, 0x34]);
        let part = x.aie_partition.unwrap();
        assert_eq!(part.column_width, 4);
        assert_eq!(part.pdis[0].image, p.pdi);
        assert_eq!(part.pdis[0].uuid, [7; 16]);
        assert_eq!(part.pdis[0].cdo_groups[0].dpu_kernel_ids, [0x901]);
        assert_eq!(
            x.connectivity.unwrap(),
            [
                (1, 0, 1),
                (3, 0, 0),
                (4, 0, 0),
                (5, 0, 0),
                (6, 0, 0),
                (7, 0, 0)
            ]
        );
        assert_eq!(x.ip_layout.unwrap()[0].properties, 0x0901_0001);
        // Same input, same bytes; another PDI, another uuid.
        assert_eq!(package(&p).unwrap(), bytes);
        let mut q = p.clone();
        q.pdi.push(0);
        assert_ne!(read(&package(&q).unwrap()).unwrap().uuid, x.uuid);
    }

    #[test]
    fn more_buffers_than_five_get_more_args() {
        let x = read(&package(&pkg(7)).unwrap()).unwrap();
        let k = &x.kernels.unwrap()[0];
        assert_eq!(k.args.len(), 10);
        assert_eq!(k.args[9].name, "bo6");
        assert_eq!(k.args[9].offset, 0x14 + 6 * 8);
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut p = pkg(5);
        p.pdi = b"not a pdi".to_vec();
        assert_eq!(package(&p), Err(PackageError::NotPdi { len: 9 }));
        let mut p = pkg(5);
        p.dpu_kernel_id = "901".into();
        assert!(matches!(package(&p), Err(PackageError::KernelId(_))));
    }

    #[test]
    fn truncated_or_foreign_files_are_located_errors() {
        let bytes = package(&pkg(5)).unwrap();
        assert!(matches!(
            read(b"PK\x03\x04...."),
            Err(ReadError::Magic { .. })
        ));
        let cut = &bytes[..bytes.len() - 10];
        assert!(matches!(read(cut), Err(ReadError::Length { .. })));
        // A section table entry pointing past the end.
        let mut bad = bytes.clone();
        let e = axlf::SECTIONS_AT + 24;
        bad[e..e + 8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        let err = read(&bad).unwrap_err();
        assert!(err.to_string().contains("MEM_TOPOLOGY payload"), "{err}");
    }
}
