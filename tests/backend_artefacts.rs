//! The rendered templates: the JSON sections xclbinutil reads and the bootgen image
//! description, with the field names and values aiecc writes, for npu1 and npu2.

use aiec::backend::{pdi_uuid, render_artefacts, BuildRequest, RenderedArtefact};
use serde_json::{json, Value};

fn render(device: &str) -> Vec<RenderedArtefact> {
    let req = BuildRequest::new("/art/design.mlir", "/art", device, vec![(0, 2)]).unwrap();
    render_artefacts(&req, pdi_uuid(&req, Some(b"module {}"))).unwrap()
}

fn file<'a>(all: &'a [RenderedArtefact], name: &str) -> &'a str {
    &all.iter().find(|a| a.file_name == name).unwrap().contents
}

fn parse(all: &[RenderedArtefact], name: &str) -> Value {
    serde_json::from_str(file(all, name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

#[test]
fn partition_width_and_start_follow_the_device() {
    for (device, width, starts) in [
        ("npu1", 4, json!([0])),
        ("npu2", 8, json!([0])),
        ("npu1_1col", 1, json!([1, 2, 3, 4])),
        ("npu1_2col", 2, json!([1, 2, 3])),
    ] {
        let all = render(device);
        let p = &parse(&all, "aie_partition.json")["aie_partition"];
        assert_eq!(p["partition"]["column_width"], json!(width), "{device}");
        assert_eq!(p["partition"]["start_columns"], starts, "{device}");
        assert_eq!(p["name"], "QoS");
        assert_eq!(p["operations_per_cycle"], "2048");
        let pdi = &p["PDIs"][0];
        assert_eq!(pdi["file_name"], "design.pdi");
        let group = &pdi["cdo_groups"][0];
        assert_eq!(group["name"], "DPU");
        assert_eq!(group["type"], "PRIMARY");
        assert_eq!(group["pdi_id"], "0x01");
        assert_eq!(group["dpu_kernel_ids"], json!(["0x901"]));
        assert_eq!(group["pre_cdo_groups"], json!(["0xC1"]));
        let uuid = pdi["uuid"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{uuid}");
    }
}

#[test]
fn kernels_json_declares_the_dpu_kernel_and_its_arguments() {
    for device in ["npu1", "npu2"] {
        let all = render(device);
        let k = &parse(&all, "kernels.json")["ps-kernels"]["kernels"][0];
        assert_eq!(k["name"], "MLIR_AIE");
        assert_eq!(k["type"], "dpu");
        assert_eq!(
            k["extended-data"],
            json!({"subtype": "DPU", "functional": "0", "dpu_kernel_id": "0x901"})
        );
        assert_eq!(k["instances"], json!([{"name": "MLIRAIE"}]));
        let args = k["arguments"].as_array().unwrap();
        let summary: Vec<(String, String)> = args
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["offset"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("opcode", "0x00"),
            ("instr", "0x8"),
            ("ninstr", "0x10"),
            ("bo0", "0x14"),
            ("bo1", "0x1c"),
            ("bo2", "0x24"),
            ("bo3", "0x2c"),
            ("bo4", "0x34"),
        ]
        .iter()
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect();
        assert_eq!(summary, want);
        assert_eq!(
            args[0],
            json!({"name": "opcode", "address-qualifier": "SCALAR", "type": "uint64_t", "offset": "0x00"})
        );
        assert_eq!(args[1]["memory-connection"], "SRAM");
        assert_eq!(args[1]["type"], "char *");
        assert_eq!(args[2]["type"], "uint32_t");
        assert_eq!(args[3]["memory-connection"], "HOST");
        assert_eq!(args[3]["type"], "void*");
        assert_eq!(args[3]["address-qualifier"], "GLOBAL");
    }
}

#[test]
fn more_host_buffers_extend_the_argument_list() {
    let mut req = BuildRequest::new("d.mlir", "out", "npu1", vec![]).unwrap();
    req.host_buffers = 7;
    let all = render_artefacts(&req, pdi_uuid(&req, None)).unwrap();
    let k = &parse(&all, "kernels.json")["ps-kernels"]["kernels"][0];
    let last = k["arguments"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["name"], "bo6");
    assert_eq!(last["offset"], "0x44");
}

#[test]
fn mem_topology_matches_aiecc() {
    let all = render("npu1");
    assert_eq!(
        parse(&all, "mem_topology.json"),
        json!({"mem_topology": {"m_count": "2", "m_mem_data": [
            {"m_type": "MEM_DRAM", "m_used": "1", "m_sizeKB": "0x10000", "m_tag": "HOST", "m_base_address": "0x4000000"},
            {"m_type": "MEM_DRAM", "m_used": "1", "m_sizeKB": "0xc000", "m_tag": "SRAM", "m_base_address": "0x4000000"}
        ]}})
    );
}

#[test]
fn bif_lists_the_three_cdo_files() {
    let all = render("npu2");
    let bif = file(&all, "design.bif");
    assert!(bif.starts_with("all:\n{\n  id_code = 0x14ca8093\n  extended_id_code = 0x01\n"));
    assert!(bif.contains("name=aie_image, id=0x1c000000"));
    assert!(bif.contains(
        "{ type=cdo file=main_aie_cdo_elfs.bin file=main_aie_cdo_init.bin file=main_aie_cdo_enable.bin }"
    ));
}

#[test]
fn pdi_uuid_follows_the_design() {
    let req = BuildRequest::new("d.mlir", "out", "npu1", vec![(0, 2)]).unwrap();
    let a = pdi_uuid(&req, Some(b"module { a }"));
    assert_eq!(a, pdi_uuid(&req, Some(b"module { a }")));
    assert_ne!(a, pdi_uuid(&req, Some(b"module { b }")));
    let other = BuildRequest::new("d.mlir", "out", "npu2", vec![(0, 2)]).unwrap();
    assert_ne!(a, pdi_uuid(&other, Some(b"module { a }")));
}

#[test]
fn names_are_json_escaped() {
    // Identifiers are validated, but the JSON must stay valid whatever passes validation.
    let mut req = BuildRequest::new("d.mlir", "out", "npu1", vec![]).unwrap();
    req.kernel_name = "k$1.v2".to_string();
    let all = render_artefacts(&req, pdi_uuid(&req, None)).unwrap();
    assert_eq!(
        parse(&all, "kernels.json")["ps-kernels"]["kernels"][0]["name"],
        "k$1.v2"
    );
}
