//! The facts of an xclbin as text (`aiec xclbin FILE`): header, section table, then each
//! decoded section, one fact per line.

use std::fmt::Write as _;

use super::reader::Xclbin;

pub fn describe(x: &Xclbin) -> String {
    let mut o = String::new();
    let (major, minor, patch) = x.version;
    let _ = writeln!(
        o,
        "xclbin {} bytes, format {major}.{minor}.{patch}, uuid {}, timestamp {}",
        x.length,
        uuid::Uuid::from_bytes(x.uuid).hyphenated(),
        x.timestamp
    );
    for s in &x.sections {
        let _ = writeln!(
            o,
            "section {:<22} name={:?} offset={:#x} size={}",
            s.kind.name(),
            s.name,
            s.offset,
            s.size
        );
    }
    if x.trailing_bytes > 0 {
        let _ = writeln!(
            o,
            "after the sections: {} bytes (xclbinutil's JSON mirror)",
            x.trailing_bytes
        );
    }
    for (label, mems) in [("mem", &x.mem_topology), ("group mem", &x.group_topology)] {
        for (i, m) in mems.iter().flatten().enumerate() {
            let _ = writeln!(
                o,
                "{label} {i}: {} type={} used={} base={:#x} size={:#x} KiB",
                m.tag, m.mem_type, m.used, m.base_address, m.size_kb
            );
        }
    }
    for ip in x.ip_layout.iter().flatten() {
        let _ = writeln!(
            o,
            "ip {} type={} properties={:#010x} base={:#x}",
            ip.name, ip.ip_type, ip.properties, ip.base_address
        );
    }
    for k in x.kernels.iter().flatten() {
        let _ = writeln!(
            o,
            "kernel {} type={} dpu_kernel_id={} instances={}",
            k.name,
            k.kernel_type,
            k.dpu_kernel_id.as_deref().unwrap_or("-"),
            k.instances.join(",")
        );
        for a in &k.args {
            let _ = writeln!(
                o,
                "  arg {} {}: {} offset={:#x} size={:#x}{}",
                a.id,
                a.name,
                a.ty,
                a.offset,
                a.size,
                if a.address_qualifier == 1 {
                    " (buffer)"
                } else {
                    ""
                }
            );
        }
    }
    for (label, conns) in [
        ("connection", &x.connectivity),
        ("group connection", &x.group_connectivity),
    ] {
        let list: Vec<String> = conns
            .iter()
            .flatten()
            .map(|(arg, ip, mem)| format!("arg{arg}->ip{ip}:mem{mem}"))
            .collect();
        if !list.is_empty() {
            let _ = writeln!(o, "{label}s: {}", list.join(" "));
        }
    }
    if let Some(p) = &x.aie_partition {
        let _ = writeln!(
            o,
            "aie partition {:?}: {} column(s) from {:?}, {} ops/cycle, fingerprints {}/{}",
            p.name,
            p.column_width,
            p.start_columns,
            p.operations_per_cycle,
            p.inference_fingerprint,
            p.pre_post_fingerprint
        );
        for pdi in &p.pdis {
            let _ = writeln!(
                o,
                "  pdi {} ({} bytes)",
                uuid::Uuid::from_bytes(pdi.uuid).hyphenated(),
                pdi.image.len()
            );
            for g in &pdi.cdo_groups {
                let ids: Vec<String> = g.dpu_kernel_ids.iter().map(|i| format!("{i:#x}")).collect();
                let pre: Vec<String> = g.pre_cdo_groups.iter().map(|i| format!("{i:#x}")).collect();
                let _ = writeln!(
                    o,
                    "    cdo group {} type={} pdi_id={:#x} dpu_kernel_ids=[{}] pre_cdo_groups=[{}]",
                    g.name,
                    g.cdo_type,
                    g.pdi_id,
                    ids.join(","),
                    pre.join(",")
                );
            }
        }
    }
    o
}
