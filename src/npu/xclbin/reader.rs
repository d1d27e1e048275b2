//! Reads an AXLF file back into facts: the header, the section table, and every section this
//! packager writes, decoded. It reads mlir-aie's own xclbins (FastFlowLM's) as well as ours,
//! and covers what XRT 2.13's parser cannot (AIE_PARTITION postdates it). Every read is
//! bounds-checked; a bad file gets one error naming the field and offset.

use super::axlf::{self, SectionKind};
use super::memory::{Memory, MEM_DATA_BYTES};
use super::partition::{CdoGroup, Partition, Pdi, CDO_GROUP_BYTES, PARTITION_BYTES, PDI_BYTES};

#[derive(thiserror::Error, Debug, PartialEq, Eq)]
pub enum ReadError {
    #[error("not an xclbin: it starts with \"{found}\", not the magic \"xclbin2\"")]
    Magic { found: String },
    #[error("{what} at {at:#x}..{end:#x} is outside the {len}-byte {within}")]
    OutOfBounds {
        what: String,
        at: usize,
        end: usize,
        len: usize,
        within: &'static str,
    },
    #[error("the header's length {header} is not the file's {file} bytes")]
    Length { header: u64, file: usize },
    #[error("{section}: {message}")]
    Section { section: String, message: String },
}

/// One entry of the section table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionEntry {
    pub kind: SectionKind,
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// A kernel argument as EMBEDDED_METADATA states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataArg {
    pub name: String,
    pub address_qualifier: u32,
    pub id: u32,
    pub size: u64,
    pub offset: u64,
    pub ty: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataKernel {
    pub name: String,
    pub kernel_type: String,
    pub dpu_kernel_id: Option<String>,
    pub args: Vec<MetadataArg>,
    pub instances: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpData {
    pub ip_type: u32,
    pub properties: u32,
    pub base_address: u64,
    pub name: String,
}

/// Everything read from one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xclbin {
    pub length: u64,
    pub timestamp: u64,
    pub unique_id: u64,
    pub version: (u8, u8, u16),
    pub uuid: [u8; 16],
    pub sections: Vec<SectionEntry>,
    pub mem_topology: Option<Vec<Memory>>,
    pub group_topology: Option<Vec<Memory>>,
    pub ip_layout: Option<Vec<IpData>>,
    pub connectivity: Option<Vec<(i32, i32, i32)>>,
    pub group_connectivity: Option<Vec<(i32, i32, i32)>>,
    pub kernels: Option<Vec<MetadataKernel>>,
    pub aie_partition: Option<Partition>,
    /// xclbinutil appends a JSON mirror of the metadata after the last section
    /// (`XCLBIN_MIRROR_DATA_START...END`); its size, 0 when absent.
    pub trailing_bytes: usize,
}

impl Xclbin {
    /// The payload of the first section of `kind` in `file`.
    pub fn section<'a>(&self, file: &'a [u8], kind: SectionKind) -> Option<&'a [u8]> {
        let s = self.sections.iter().find(|s| s.kind == kind)?;
        file.get(s.offset as usize..(s.offset + s.size) as usize)
    }
}

struct Bytes<'a> {
    data: &'a [u8],
    within: &'static str,
}

impl<'a> Bytes<'a> {
    fn get(&self, at: usize, n: usize, what: &str) -> Result<&'a [u8], ReadError> {
        let end = at.saturating_add(n);
        self.data
            .get(at..end)
            .ok_or_else(|| ReadError::OutOfBounds {
                what: what.to_string(),
                at,
                end,
                len: self.data.len(),
                within: self.within,
            })
    }
    fn u8(&self, at: usize, what: &str) -> Result<u8, ReadError> {
        Ok(self.get(at, 1, what)?[0])
    }
    fn u16(&self, at: usize, what: &str) -> Result<u16, ReadError> {
        Ok(u16::from_le_bytes(
            self.get(at, 2, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&self, at: usize, what: &str) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(
            self.get(at, 4, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn i32(&self, at: usize, what: &str) -> Result<i32, ReadError> {
        Ok(i32::from_le_bytes(
            self.get(at, 4, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&self, at: usize, what: &str) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(
            self.get(at, 8, what)?.try_into().unwrap_or_default(),
        ))
    }
    /// A NUL-terminated string in a fixed field of `n` bytes.
    fn fixed_str(&self, at: usize, n: usize, what: &str) -> Result<String, ReadError> {
        let b = self.get(at, n, what)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(n);
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
    /// A NUL-terminated string starting at `at` (a heap entry).
    fn c_str(&self, at: usize, what: &str) -> Result<String, ReadError> {
        let rest = self.get(at, 0, what).map(|_| &self.data[at..])?;
        let end = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| ReadError::OutOfBounds {
                what: format!("{what} (no NUL)"),
                at,
                end: self.data.len(),
                len: self.data.len(),
                within: self.within,
            })?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
    /// An `array_offset` {size u32, offset u32}.
    fn array(&self, at: usize, what: &str) -> Result<(usize, usize), ReadError> {
        Ok((
            self.u32(at, what)? as usize,
            self.u32(at + 4, what)? as usize,
        ))
    }
}

pub fn read(file: &[u8]) -> Result<Xclbin, ReadError> {
    let f = Bytes {
        data: file,
        within: "file",
    };
    let magic = f.get(0, 8, "magic")?;
    if magic != axlf::MAGIC {
        return Err(ReadError::Magic {
            found: magic.escape_ascii().to_string(),
        });
    }
    let h = axlf::HEADER_AT;
    let length = f.u64(h, "header length")?;
    if length != file.len() as u64 {
        return Err(ReadError::Length {
            header: length,
            file: file.len(),
        });
    }
    let count = f.u32(h + 0x90, "section count")? as usize;
    let mut sections = Vec::with_capacity(count.min(64));
    let mut end_of_sections = axlf::SECTIONS_AT;
    for i in 0..count {
        let e = axlf::SECTIONS_AT + axlf::SECTION_HEADER_BYTES * i;
        let what = format!("section header {i}");
        let kind = SectionKind::from_code(f.u32(e, &what)?);
        let offset = f.u64(e + 24, &what)?;
        let size = f.u64(e + 32, &what)?;
        f.get(
            offset as usize,
            size as usize,
            &format!("{} payload", kind.name()),
        )?;
        end_of_sections = end_of_sections.max((offset + size) as usize);
        sections.push(SectionEntry {
            kind,
            name: f.fixed_str(e + 4, axlf::SECTION_NAME_BYTES, &what)?,
            offset,
            size,
        });
    }
    let mut x = Xclbin {
        length,
        timestamp: f.u64(h + 8, "timestamp")?,
        unique_id: f.u64(0x128, "unique id")?,
        version: (
            f.u8(h + 0x1a, "version")?,
            f.u8(h + 0x1b, "version")?,
            f.u16(h + 0x18, "version")?,
        ),
        uuid: f.get(h + 0x70, 16, "uuid")?.try_into().unwrap_or_default(),
        sections: sections.clone(),
        mem_topology: None,
        group_topology: None,
        ip_layout: None,
        connectivity: None,
        group_connectivity: None,
        kernels: None,
        aie_partition: None,
        trailing_bytes: file.len().saturating_sub(axlf::align8(end_of_sections)),
    };
    for s in &sections {
        let data = &file[s.offset as usize..(s.offset + s.size) as usize];
        let b = Bytes {
            data,
            within: "section",
        };
        match s.kind {
            SectionKind::MemTopology => x.mem_topology = Some(memories(&b)?),
            SectionKind::GroupTopology => x.group_topology = Some(memories(&b)?),
            SectionKind::IpLayout => x.ip_layout = Some(ip_layout(&b)?),
            SectionKind::Connectivity => x.connectivity = Some(connections(&b)?),
            SectionKind::GroupConnectivity => x.group_connectivity = Some(connections(&b)?),
            SectionKind::EmbeddedMetadata => x.kernels = Some(kernels(data)?),
            SectionKind::AiePartition => x.aie_partition = Some(partition(&b)?),
            SectionKind::Other(_) => {}
        }
    }
    Ok(x)
}

fn memories(b: &Bytes) -> Result<Vec<Memory>, ReadError> {
    let n = b.i32(0, "m_count")?.max(0) as usize;
    (0..n)
        .map(|i| {
            let at = 8 + MEM_DATA_BYTES * i;
            let what = format!("mem_data {i}");
            Ok(Memory {
                mem_type: b.u8(at, &what)?,
                used: b.u8(at + 1, &what)? != 0,
                size_kb: b.u64(at + 8, &what)?,
                base_address: b.u64(at + 16, &what)?,
                tag: b.fixed_str(at + 24, 16, &what)?,
            })
        })
        .collect()
}

fn ip_layout(b: &Bytes) -> Result<Vec<IpData>, ReadError> {
    let n = b.i32(0, "m_count")?.max(0) as usize;
    (0..n)
        .map(|i| {
            let at = 8 + super::kernel::IP_DATA_BYTES * i;
            let what = format!("ip_data {i}");
            Ok(IpData {
                ip_type: b.u32(at, &what)?,
                properties: b.u32(at + 4, &what)?,
                base_address: b.u64(at + 8, &what)?,
                name: b.fixed_str(at + 16, 64, &what)?,
            })
        })
        .collect()
}

fn connections(b: &Bytes) -> Result<Vec<(i32, i32, i32)>, ReadError> {
    let n = b.i32(0, "m_count")?.max(0) as usize;
    (0..n)
        .map(|i| {
            let at = 4 + 12 * i;
            let what = format!("connection {i}");
            Ok((
                b.i32(at, &what)?,
                b.i32(at + 4, &what)?,
                b.i32(at + 8, &what)?,
            ))
        })
        .collect()
}

fn metadata_error(message: String) -> ReadError {
    ReadError::Section {
        section: "EMBEDDED_METADATA".into(),
        message,
    }
}

fn kernels(data: &[u8]) -> Result<Vec<MetadataKernel>, ReadError> {
    let text = std::str::from_utf8(data)
        .map_err(|e| metadata_error(format!("not UTF-8: {e}")))?
        .trim_end_matches('\0');
    let doc = roxmltree::Document::parse(text).map_err(|e| metadata_error(e.to_string()))?;
    let attr = |n: roxmltree::Node, a: &str| -> Result<String, ReadError> {
        n.attribute(a)
            .map(str::to_string)
            .ok_or_else(|| metadata_error(format!("<{}> has no `{a}`", n.tag_name().name())))
    };
    let number = |n: roxmltree::Node, a: &str| -> Result<u64, ReadError> {
        let s = attr(n, a)?;
        let parsed = match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => s.parse(),
        };
        parsed.map_err(|_| metadata_error(format!("`{a}` = {s:?} is not a number")))
    };
    let mut out = Vec::new();
    for k in doc.descendants().filter(|n| n.has_tag_name("kernel")) {
        let mut args = Vec::new();
        let mut instances = Vec::new();
        let mut dpu_kernel_id = None;
        for c in k.children().filter(|n| n.is_element()) {
            match c.tag_name().name() {
                "arg" => args.push(MetadataArg {
                    name: attr(c, "name")?,
                    address_qualifier: number(c, "addressQualifier")? as u32,
                    id: number(c, "id")? as u32,
                    size: number(c, "size")?,
                    offset: number(c, "offset")?,
                    ty: attr(c, "type")?,
                }),
                "instance" => instances.push(attr(c, "name")?),
                "extended-data" => dpu_kernel_id = c.attribute("dpu_kernel_id").map(str::to_string),
                _ => {}
            }
        }
        out.push(MetadataKernel {
            name: attr(k, "name")?,
            kernel_type: k.attribute("type").unwrap_or_default().to_string(),
            dpu_kernel_id,
            args,
            instances,
        });
    }
    Ok(out)
}

fn partition(b: &Bytes) -> Result<Partition, ReadError> {
    b.get(0, PARTITION_BYTES, "aie_partition header")?;
    let (ncols, cols_at) = b.array(40, "start_columns")?;
    let start_columns = (0..ncols)
        .map(|i| b.u16(cols_at + 2 * i, "start column"))
        .collect::<Result<_, _>>()?;
    let (npdi, pdis_at) = b.array(120, "aie_pdi")?;
    let mut pdis = Vec::new();
    for i in 0..npdi {
        let at = pdis_at + PDI_BYTES * i;
        let what = format!("aie_pdi {i}");
        let uuid: [u8; 16] = b.get(at, 16, &what)?.try_into().unwrap_or_default();
        let (isize, iat) = b.array(at + 16, &what)?;
        let image = b.get(iat, isize, &format!("{what} image"))?.to_vec();
        let (ngroups, gat) = b.array(at + 24, &what)?;
        let mut cdo_groups = Vec::new();
        for g in 0..ngroups {
            let at = gat + CDO_GROUP_BYTES * g;
            let what = format!("{what} cdo_group {g}");
            let (nids, ids_at) = b.array(at + 16, &what)?;
            let (npre, pre_at) = b.array(at + 24, &what)?;
            cdo_groups.push(CdoGroup {
                name: b.c_str(b.u32(at, &what)? as usize, &what)?,
                cdo_type: b.u8(at + 4, &what)?,
                pdi_id: b.u64(at + 8, &what)?,
                dpu_kernel_ids: (0..nids)
                    .map(|j| b.u64(ids_at + 8 * j, &what))
                    .collect::<Result<_, _>>()?,
                pre_cdo_groups: (0..npre)
                    .map(|j| b.u32(pre_at + 4 * j, &what))
                    .collect::<Result<_, _>>()?,
            });
        }
        pdis.push(Pdi {
            uuid,
            image,
            cdo_groups,
        });
    }
    Ok(Partition {
        name: b.c_str(b.u32(4, "mpo_name")? as usize, "partition name")?,
        operations_per_cycle: b.u32(8, "operations_per_cycle")?,
        inference_fingerprint: b.u64(16, "inference_fingerprint")?,
        pre_post_fingerprint: b.u64(24, "pre_post_fingerprint")?,
        column_width: b.u16(32, "column_width")?,
        start_columns,
        kernel_commit_id: b.c_str(b.u32(128, "kernel_commit_id")? as usize, "kernel commit id")?,
        pdis,
    })
}
