//! Our xclbin against a real one made by mlir-aie's aiecc flow (FastFlowLM's, see
//! tests/data/xclbin/README.md): our reader reads theirs, and our packager, given their PDI
//! and PDI uuid, writes their section table and every section's bytes.

use aiec::backend::{package_xclbin, BuildRequest};
use aiec::npu::xclbin::{self, read, Package, SectionKind};

/// FastFlowLM's `src/xclbins/Gemma3-1B-NPU2/dequant.xclbin` (ROCm/FastFlowLM @8b8399c1),
/// from the path in AIEC_FLM_XCLBIN.
fn flm() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let path = std::env::var_os("AIEC_FLM_XCLBIN")
            .expect("AIEC_FLM_XCLBIN: the path of FastFlowLM's dequant.xclbin");
        std::fs::read(&path).expect("reading AIEC_FLM_XCLBIN")
    })
}

#[test]
#[ignore = "needs FastFlowLM's mlir-aie xclbin, not redistributed here (its TERMS.md calls the NPU binaries proprietary): set AIEC_FLM_XCLBIN, see tests/data/xclbin/README.md"]
fn reader_reads_the_flm_xclbin() {
    let x = read(flm()).unwrap();
    assert_eq!(x.length as usize, flm().len());
    assert_eq!(x.version, (2, 21, 75));
    let table: Vec<(SectionKind, &str, u64, u64)> = x
        .sections
        .iter()
        .map(|s| (s.kind, s.name.as_str(), s.offset, s.size))
        .collect();
    assert_eq!(
        table,
        [
            (SectionKind::MemTopology, "mem_topology", 0x2e0, 88),
            (SectionKind::AiePartition, "aie_partition", 0x338, 97880),
            (SectionKind::EmbeddedMetadata, "", 0x18190, 1351),
            (SectionKind::IpLayout, "", 0x186d8, 88),
            (SectionKind::Connectivity, "", 0x18730, 76),
            (SectionKind::GroupConnectivity, "", 0x18780, 148),
            (SectionKind::GroupTopology, "", 0x18818, 88),
        ]
    );
    // xclbinutil's JSON mirror of the metadata follows the last section.
    assert_eq!(x.trailing_bytes, 3452);
    assert!(flm()[0x18870..].starts_with(b"XCLBIN_MIRROR_DATA_START"));

    let mems = x.mem_topology.as_ref().unwrap();
    let tags: Vec<(&str, u64, u64)> = mems
        .iter()
        .map(|m| (m.tag.as_str(), m.base_address, m.size_kb))
        .collect();
    assert_eq!(
        tags,
        [("HOST", 0x400_0000, 0x10000), ("SRAM", 0x400_0000, 0xc000)]
    );
    assert_eq!(x.group_topology.as_ref(), Some(mems));

    let k = &x.kernels.as_ref().unwrap()[0];
    assert_eq!(
        (k.name.as_str(), k.kernel_type.as_str()),
        ("MLIR_AIE", "dpu")
    );
    assert_eq!(k.dpu_kernel_id.as_deref(), Some("0x901"));
    assert_eq!(k.instances, ["MLIRAIE"]);
    let args: Vec<(&str, u64, u64, &str)> = k
        .args
        .iter()
        .map(|a| (a.name.as_str(), a.offset, a.size, a.ty.as_str()))
        .collect();
    assert_eq!(
        args,
        [
            ("opcode", 0, 8, "uint64_t"),
            ("instr", 8, 8, "char *"),
            ("ninstr", 0x10, 4, "uint32_t"),
            ("bo0", 0x14, 8, "void*"),
            ("bo1", 0x1c, 8, "void*"),
            ("bo2", 0x24, 8, "void*"),
            ("bo3", 0x2c, 8, "void*"),
            ("bo4", 0x34, 8, "void*"),
        ]
    );
    let ip = &x.ip_layout.as_ref().unwrap()[0];
    assert_eq!((ip.ip_type, ip.properties), (7, 0x0901_0001));
    assert_eq!(ip.name, "MLIR_AIE:MLIRAIE");
    let conn = x.connectivity.as_ref().unwrap();
    assert_eq!(
        conn,
        &[
            (1, 0, 1),
            (3, 0, 0),
            (4, 0, 0),
            (5, 0, 0),
            (6, 0, 0),
            (7, 0, 0)
        ]
    );
    assert_eq!(
        x.group_connectivity.as_ref().unwrap(),
        &[conn.clone(), conn.clone()].concat()
    );

    let p = x.aie_partition.as_ref().unwrap();
    assert_eq!(
        (p.column_width, p.start_columns.as_slice()),
        (8, &[0u16][..])
    );
    assert_eq!(p.operations_per_cycle, 2048);
    assert_eq!(
        (p.inference_fingerprint, p.pre_post_fingerprint),
        (23423, 12345)
    );
    assert_eq!(p.pdis.len(), 1);
    let pdi = &p.pdis[0];
    assert_eq!(pdi.image.len(), 97456);
    assert!(pdi.image.starts_with(&xclbin::PDI_MAGIC));
    let g = &pdi.cdo_groups[0];
    assert_eq!(g.name, "DPU");
    assert_eq!((g.cdo_type, g.pdi_id), (1, 1));
    assert_eq!(g.dpu_kernel_ids, [0x901]);
    assert_eq!(g.pre_cdo_groups, [0xc1]);
}

fn flm_package() -> Package {
    let x = read(flm()).unwrap();
    let pdi = &x.aie_partition.unwrap().pdis[0];
    Package {
        kernel_name: "MLIR_AIE".into(),
        instance_name: "MLIRAIE".into(),
        dpu_kernel_id: "0x901".into(),
        host_buffers: 5,
        column_width: 8,
        start_columns: vec![0],
        pdi_uuid: pdi.uuid,
        pdi: pdi.image.clone(),
    }
}

#[test]
#[ignore = "needs FastFlowLM's mlir-aie xclbin, not redistributed here (its TERMS.md calls the NPU binaries proprietary): set AIEC_FLM_XCLBIN, see tests/data/xclbin/README.md"]
fn our_xclbin_around_their_pdi_matches_theirs_section_by_section() {
    let ours = xclbin::package(&flm_package()).unwrap();
    let (o, t) = (read(&ours).unwrap(), read(flm()).unwrap());
    assert_eq!(o.sections, t.sections, "section tables differ");
    for s in &t.sections {
        let (a, b) = (
            o.section(&ours, s.kind).unwrap(),
            t.section(flm(), s.kind).unwrap(),
        );
        if let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) {
            panic!("{} differs from byte {at:#x}", s.kind.name());
        }
    }
    // The top block (magic, signature fields, key block) is the same; what differs is the
    // uuid, the timestamp/unique id (ours 0, for reproducible bytes) and the JSON mirror.
    assert_eq!(ours[..0x128], flm()[..0x128]);
    assert_eq!(o.length, t.length - t.trailing_bytes as u64);
    // Everything else, byte for byte: their file up to the mirror, with our four header
    // fields (unique id, length, timestamp at 0x128..0x140; uuid at 0x1a0) put in.
    let mut expected = flm()[..ours.len()].to_vec();
    for r in [0x128..0x140, 0x1a0..0x1b0] {
        expected[r.clone()].copy_from_slice(&ours[r]);
    }
    assert!(
        expected == ours,
        "our file differs from theirs outside the header fields"
    );
}

#[test]
#[ignore = "needs FastFlowLM's mlir-aie xclbin, not redistributed here (its TERMS.md calls the NPU binaries proprietary): set AIEC_FLM_XCLBIN, see tests/data/xclbin/README.md"]
fn the_build_request_for_npu2_packages_the_same_structure() {
    let dir = tempfile::tempdir().unwrap();
    let design = dir.path().join("design.mlir");
    std::fs::write(&design, "module {\n  aie.device(npu2) {\n  }\n}\n").unwrap();
    let req = BuildRequest::new(&design, dir.path(), "npu2", vec![(0, 2)]).unwrap();
    let theirs_pdi = flm_package().pdi;
    let ours = package_xclbin(&req, &theirs_pdi).unwrap();
    let (o, t) = (read(&ours).unwrap(), read(flm()).unwrap());
    assert_eq!(o.sections, t.sections);
    for kind in [
        SectionKind::MemTopology,
        SectionKind::EmbeddedMetadata,
        SectionKind::IpLayout,
        SectionKind::Connectivity,
        SectionKind::GroupConnectivity,
        SectionKind::GroupTopology,
    ] {
        assert_eq!(
            o.section(&ours, kind),
            t.section(flm(), kind),
            "{}",
            kind.name()
        );
    }
    // The partition differs only in the PDI uuid (ours is derived from the design).
    let (mut op, tp) = (o.aie_partition.unwrap(), t.aie_partition.unwrap());
    assert_ne!(op.pdis[0].uuid, tp.pdis[0].uuid);
    op.pdis[0].uuid = tp.pdis[0].uuid;
    assert_eq!(op, tp);
}

/// Corrupted copies of the real file (bytes flipped in the header, the section table and
/// the section structures; cuts with the length field kept consistent): the reader returns
/// a file or an error, never panics, never reads out of bounds.
#[test]
#[ignore = "needs FastFlowLM's mlir-aie xclbin, not redistributed here (its TERMS.md calls the NPU binaries proprietary): set AIEC_FLM_XCLBIN, see tests/data/xclbin/README.md"]
fn corrupted_xclbins_are_errors_not_panics() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Where the structure is: header and table, the partition's header and heap tail, and
    // the metadata sections after the PDI.
    let regions = [0..0x338, 0x338..0x338 + 0xd0, 0x18000..0x18870];
    let (mut ok, mut err) = (0, 0);
    for i in 0..4000 {
        let mut f = flm().to_vec();
        if i % 4 == 3 {
            let cut = 0x130 + (next() as usize % (flm().len() - 0x130));
            f.truncate(cut);
            f[0x130..0x138].copy_from_slice(&(cut as u64).to_le_bytes());
        } else {
            for _ in 0..1 + next() % 4 {
                let r = &regions[next() as usize % regions.len()];
                let at = r.start + next() as usize % r.len();
                f[at] = next() as u8;
            }
        }
        match read(&f) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    // Both outcomes happen: the corruption reaches fields that matter and fields that don't.
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}
