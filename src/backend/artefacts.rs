//! Text artefacts rendered from `templates/` (tera): the bootgen image description and the
//! JSON sections aiecc hands xclbinutil (kept as the readable form of what
//! [`package_xclbin`] packs into `final.xclbin` itself). They need no tools, so a build
//! always writes them, even on a machine without the AIE toolchain.

use serde::Serialize;
use uuid::Uuid;

use super::request::BuildRequest;
use super::BackendError;

/// File names in the artefact directory (aiecc's names, without its device prefix for the
/// files aiec itself writes).
pub mod names {
    pub const DESIGN_BIF: &str = "design.bif";
    pub const MEM_TOPOLOGY: &str = "mem_topology.json";
    pub const AIE_PARTITION: &str = "aie_partition.json";
    pub const KERNELS: &str = "kernels.json";
    pub const DESIGN_PDI: &str = "design.pdi";
    pub const FINAL_XCLBIN: &str = "final.xclbin";
    pub const INSTS_BIN: &str = "insts.bin";
    pub const INPUT_WITH_ADDRESSES: &str = "input_with_addresses.mlir";
    pub const INPUT_PHYSICAL: &str = "input_physical.mlir";
    pub const INPUT_PHYSICAL_WITH_ELFS: &str = "input_physical_with_elfs.mlir";
    pub const NPU_INSTS_MLIR: &str = "npu_insts.mlir";
}

/// The three CDO files `aie-translate --aie-generate-cdo` writes for device `@symbol`.
pub fn cdo_files(device_symbol: &str) -> [String; 3] {
    ["elfs", "init", "enable"].map(|part| format!("{device_symbol}_aie_cdo_{part}.bin"))
}

/// Per-core file name, aiecc's `<device>_core_<col>_<row>.<ext>`.
pub fn core_file(device_symbol: &str, col: u32, row: u32, ext: &str) -> String {
    format!("{device_symbol}_core_{col}_{row}.{ext}")
}

/// One rendered text artefact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedArtefact {
    pub file_name: &'static str,
    pub contents: String,
}

const TEMPLATES: [(&str, &str); 4] = [
    (
        names::DESIGN_BIF,
        include_str!("../../templates/design.bif.tera"),
    ),
    (
        names::MEM_TOPOLOGY,
        include_str!("../../templates/mem_topology.json.tera"),
    ),
    (
        names::AIE_PARTITION,
        include_str!("../../templates/aie_partition.json.tera"),
    ),
    (
        names::KERNELS,
        include_str!("../../templates/kernels.json.tera"),
    ),
];

/// One argument of the DPU kernel, in the order and at the byte offsets XRT passes them.
#[derive(Debug, Clone, Serialize)]
struct KernelArg {
    name: String,
    memory_connection: Option<&'static str>,
    address_qualifier: &'static str,
    #[serde(rename = "type")]
    ty: &'static str,
    offset: String,
}

/// `opcode`, `instr`, `ninstr`, then the host buffers `bo0..`, at aiecc's offsets.
fn kernel_args(host_buffers: u32) -> Vec<KernelArg> {
    let mut args = vec![
        KernelArg {
            name: "opcode".into(),
            memory_connection: None,
            address_qualifier: "SCALAR",
            ty: "uint64_t",
            offset: "0x00".into(),
        },
        KernelArg {
            name: "instr".into(),
            memory_connection: Some("SRAM"),
            address_qualifier: "GLOBAL",
            ty: "char *",
            offset: format!("{:#x}", 0x08),
        },
        KernelArg {
            name: "ninstr".into(),
            memory_connection: None,
            address_qualifier: "SCALAR",
            ty: "uint32_t",
            offset: format!("{:#x}", 0x10),
        },
    ];
    // aiecc always declares five buffers; a design with more host buffers needs more.
    let count = host_buffers.max(5);
    for i in 0..count {
        args.push(KernelArg {
            name: format!("bo{i}"),
            memory_connection: Some("HOST"),
            address_qualifier: "GLOBAL",
            ty: "void*",
            offset: format!("{:#x}", 0x14 + 8 * i),
        });
    }
    args
}

/// The PDI's uuid. XRT caches PDIs by uuid, so it must change whenever the design does and
/// stay put when nothing changed: a name-based (v5) uuid of the design text and request.
pub fn pdi_uuid(req: &BuildRequest, design_text: Option<&[u8]>) -> Uuid {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"aiec/backend/pdi");
    let mut key = format!(
        "{}\n{}\n{}\n{}\n{}\n{:?}\n",
        req.device, req.device_symbol, req.kernel_name, req.kernel_id, req.columns, req.cores
    )
    .into_bytes();
    if let Some(text) = design_text {
        key.extend_from_slice(text);
    }
    Uuid::new_v5(&namespace, &key)
}

/// Renders every template for `req`.
pub fn render_artefacts(
    req: &BuildRequest,
    pdi_uuid: Uuid,
) -> Result<Vec<RenderedArtefact>, BackendError> {
    req.validate()?;
    let mut tera = tera::Tera::default();
    tera.add_raw_templates(TEMPLATES.to_vec())
        .map_err(|source| BackendError::Template {
            name: "templates/".to_string(),
            source,
        })?;

    let json = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut ctx = tera::Context::new();
    ctx.insert("cdo_files", &cdo_files(&req.device_symbol));
    ctx.insert("column_width", &req.columns);
    ctx.insert("start_columns", &req.start_columns()?);
    ctx.insert("pdi_uuid_json", &json(&pdi_uuid.hyphenated().to_string()));
    ctx.insert("pdi_file_json", &json(names::DESIGN_PDI));
    ctx.insert("kernel_id_json", &json(&req.kernel_id));
    ctx.insert("kernel_name_json", &json(&req.kernel_name));
    ctx.insert("instance_name_json", &json(&req.instance_name));
    ctx.insert("arguments", &kernel_args(req.host_buffers));

    TEMPLATES
        .iter()
        .map(|(name, _)| {
            let contents = tera
                .render(name, &ctx)
                .map_err(|source| BackendError::Template {
                    name: (*name).to_string(),
                    source,
                })?;
            Ok(RenderedArtefact {
                file_name: name,
                contents,
            })
        })
        .collect()
}

/// `final.xclbin` for `req` around `pdi` (our packager, `npu::xclbin`), with the PDI uuid
/// `aie_partition.json` names.
pub fn package_xclbin(req: &BuildRequest, pdi: &[u8]) -> Result<Vec<u8>, BackendError> {
    req.validate()?;
    let design = std::fs::read(&req.design_mlir).ok();
    let narrow = |v: u32, what: &str| {
        u16::try_from(v).map_err(|_| BackendError::InvalidRequest {
            message: format!("{what} {v} does not fit the xclbin's 16-bit field"),
        })
    };
    let start_columns = req
        .start_columns()?
        .into_iter()
        .map(|c| narrow(c, "start column"))
        .collect::<Result<_, _>>()?;
    let package = crate::npu::xclbin::Package {
        kernel_name: req.kernel_name.clone(),
        instance_name: req.instance_name.clone(),
        dpu_kernel_id: req.kernel_id.clone(),
        host_buffers: req.host_buffers,
        column_width: narrow(req.columns, "column width")?,
        start_columns,
        pdi_uuid: *pdi_uuid(req, design.as_deref()).as_bytes(),
        pdi: pdi.to_vec(),
    };
    Ok(crate::npu::xclbin::package(&package)?)
}
