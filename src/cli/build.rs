//! `aiec build SPEC.toml`: spec -> Design -> MLIR (verified) -> artefact directory, then the
//! real AIE toolchain through the backend for whatever tools are installed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use sha2::{Digest, Sha256};

use crate::backend::{build_steps, BuildRequest, Report, Toolchain};
use crate::design::Design;
use crate::spec::Spec;

/// What `--emit` prints instead of building.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// The design in aie-opt's MLIR syntax.
    Mlir,
    /// Tiles, object FIFOs, worker programs and the memory each tile needs.
    Plan,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The kernel spec (TOML), e.g. kernel-specs/matmul.toml.
    pub spec: PathBuf,
    /// Artefact directory [default: build/<spec file stem>].
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Print this to stdout and stop (nothing is written).
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Write design.mlir and manifest.json and print the tool commands without running them.
    #[arg(long)]
    pub dry_run: bool,
    /// Require final.xclbin: fail (naming each missing tool) if it cannot be made.
    #[arg(long)]
    pub xclbin: bool,
    /// Package this PDI (made elsewhere, e.g. by a build with Peano) as final.xclbin instead
    /// of the one this build makes; needs no AIE tool.
    #[arg(long, value_name = "FILE")]
    pub pdi: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<()> {
    let spec_bytes = std::fs::read(&args.spec)
        .with_context(|| format!("cannot read spec {}", args.spec.display()))?;
    let spec_text = std::str::from_utf8(&spec_bytes)
        .with_context(|| format!("spec {} is not UTF-8 text", args.spec.display()))?;
    let spec = Spec::parse(spec_text, &args.spec)?;
    let design = spec.build()?;
    check_shim_transfers(&design, &spec, spec_text)?;

    match args.emit {
        Some(Emit::Mlir) => {
            print!("{}", crate::mlir::emit(&design)?);
            return Ok(());
        }
        Some(Emit::Plan) => {
            print!("{}", crate::mlir::describe::describe(&design)?);
            // The prediction is printed here rather than by `describe`, whose text is the
            // golden of tests/mlir_golden.rs and stays a description of the design only.
            print!("{}", crate::perf::report(&design));
            return Ok(());
        }
        None => {}
    }

    let mlir = crate::mlir::emit(&design)?;
    let out_dir = match &args.out {
        Some(d) => d.clone(),
        None => default_out_dir(&args.spec)?,
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create artefact directory {}", out_dir.display()))?;
    let design_path = out_dir.join("design.mlir");
    write(&design_path, mlir.as_bytes())?;

    // Our own instruction stream: needs no tool, so every build has one.
    let insts = crate::npu::insts_bin(&design).context("cannot write the instruction stream")?;
    let insts_path = out_dir.join(crate::backend::names::INSTS_BIN);
    write(&insts_path, &insts)?;

    let request = BuildRequest::for_design(&design, &design_path, &out_dir)?;
    let steps = build_steps(&request)?;
    if args.dry_run {
        print!("{}", steps.render());
        let tools = serde_json::json!({ "dry_run": true, "commands": steps.render() });
        write_manifest(&out_dir, &args.spec, &spec_bytes, &spec, &design, tools)?;
        if args.xclbin || args.pdi.is_some() {
            bail!(
                "--xclbin and --pdi cannot be combined with --dry-run: a dry run makes no xclbin"
            );
        }
        return Ok(());
    }
    // The manifest is written before the tools run, so a failing tool still leaves a
    // described artefact; it is rewritten with the report afterwards.
    let pending = serde_json::json!({ "dry_run": false, "status": "tools did not finish" });
    write_manifest(&out_dir, &args.spec, &spec_bytes, &spec, &design, pending)?;
    let report = steps.execute(&Toolchain::discover())?;
    eprint!("{}", report.summary());
    cross_check_insts(&insts_path, &insts)?;
    let mut tools = report.to_json();
    if let Some(pdi) = &args.pdi {
        package_given_pdi(&request, pdi)?;
        tools["given_pdi"] = serde_json::json!(pdi.display().to_string());
    }
    write_manifest(&out_dir, &args.spec, &spec_bytes, &spec, &design, tools)?;
    finish(&args, &report, &out_dir)
}

/// `--pdi FILE`: our packager around a PDI this build did not make (it replaces the
/// build's own `final.xclbin`, if any).
fn package_given_pdi(request: &BuildRequest, pdi: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(pdi).with_context(|| format!("cannot read PDI {}", pdi.display()))?;
    let xclbin = crate::backend::package_xclbin(request, &bytes)
        .with_context(|| format!("cannot package {}", pdi.display()))?;
    let path = request.out_dir.join(crate::backend::names::FINAL_XCLBIN);
    write(&path, &xclbin)?;
    eprintln!(
        "packaged {} around the given PDI {}",
        path.display(),
        pdi.display()
    );
    Ok(())
}

/// When aie-translate ran, it wrote its own `insts.bin` over ours: keep it next to ours as
/// `insts.aie-translate.bin` if the two differ (and say so), so `insts.bin` is always ours.
fn cross_check_insts(path: &Path, ours: &[u8]) -> anyhow::Result<()> {
    let now = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if now == ours {
        return Ok(());
    }
    let theirs = path.with_file_name("insts.aie-translate.bin");
    write(&theirs, &now)?;
    write(path, ours)?;
    let at = now
        .iter()
        .zip(ours)
        .position(|(a, b)| a != b)
        .unwrap_or(now.len().min(ours.len()));
    eprintln!(
        "warning: aie-translate's instruction stream differs from ours from byte {at:#x} (kept as {})",
        theirs.display()
    );
    Ok(())
}

fn finish(args: &Args, report: &Report, out_dir: &Path) -> anyhow::Result<()> {
    if args.pdi.is_some() {
        eprintln!(
            "wrote {}",
            out_dir.join(crate::backend::names::FINAL_XCLBIN).display()
        );
    } else if args.xclbin {
        // Without Peano there are no core ELFs, so no complete PDI: the build stops before
        // bootgen rather than packaging an image whose cores would start with no program.
        let xclbin = report.require_xclbin().context(
            "the PDI needs the core ELFs (Peano) and the CDOs (aie-translate); \
             `--pdi FILE` packages a PDI made elsewhere",
        )?;
        eprintln!("wrote {}", xclbin.display());
    } else {
        eprintln!("wrote {}", out_dir.join("design.mlir").display());
    }
    Ok(())
}

/// `build/<stem>` for `path/to/<stem>.toml`.
fn default_out_dir(spec: &Path) -> anyhow::Result<PathBuf> {
    let stem = spec
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .with_context(|| format!("cannot name an artefact directory after {}", spec.display()))?;
    Ok(Path::new("build").join(stem))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// `manifest.json`: where the artefact came from and what made each file. No timestamps, so
/// the same spec gives the same bytes.
fn write_manifest(
    out_dir: &Path,
    spec_path: &Path,
    spec_bytes: &[u8],
    spec: &Spec,
    design: &Design,
    tools: serde_json::Value,
) -> anyhow::Result<()> {
    let sha = Sha256::digest(spec_bytes);
    let sha_hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    let buffers: Vec<serde_json::Value> = design
        .sequence
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::json!({
                "index": i,
                "name": a.name,
                "type": a.ty.mlir(),
                "shape": a.ty.shape,
                "elem": a.ty.elem.mlir(),
                "bytes": a.ty.bytes(),
            })
        })
        .collect();
    let fifos: Vec<serde_json::Value> = design
        .fifos
        .iter()
        .map(|f| serde_json::json!({ "name": f.name, "type": f.ty.mlir(), "depth": f.depth }))
        .collect();
    let manifest = serde_json::json!({
        "aiec_version": env!("CARGO_PKG_VERSION"),
        "spec": {
            "path": spec_path.display().to_string(),
            "sha256": sha_hex,
            "name": spec.name(),
            "op": spec.op(),
        },
        "design": design.name,
        "device": design.device,
        "host_buffers": buffers,
        "object_fifos": fifos,
        "cores": design.workers.iter().map(|w| [w.tile.col, w.tile.row]).collect::<Vec<_>>(),
        "files": {
            "design.mlir": "aiec (mlir::emit, aie-opt syntax)",
        },
        "tools": tools,
    });
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    write(&out_dir.join("manifest.json"), text.as_bytes())
}

/// A host transfer no shim buffer descriptor can encode, reported with the spec fields behind
/// it (the integer fields of `shape` equal to the host buffer's largest dimension, which sets
/// the strides and sizes that overflow) rather than as the MLIR op the verifier would name.
fn check_shim_transfers(design: &Design, spec: &Spec, spec_text: &str) -> anyhow::Result<()> {
    let Some(bad) = crate::mlir::verify::first_bad_shim_pattern(design) else {
        return Ok(());
    };
    let host = &design.sequence.args[bad.arg];
    let largest = host.ty.shape.iter().copied().max().unwrap_or(0);
    let table: toml::Table = toml::from_str(spec_text).unwrap_or_default();
    let fields: Vec<String> = table
        .get("shape")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
        .filter(|(_, v)| {
            v.as_integer()
                .is_some_and(|i| i64::try_from(largest) == Ok(i))
        })
        .map(|(k, v)| format!("shape.{k} = {v}"))
        .collect();
    let change = if fields.is_empty() {
        "make the shape smaller".to_string()
    } else {
        format!("reduce {}", fields.join(" or "))
    };
    bail!(
        "spec `{}`: the host buffer `{}` ({:?} x {}) cannot be moved by a shim DMA: {}; {change} ({} in the MLIR)",
        spec.name(),
        host.name,
        host.ty.shape,
        host.ty.elem.mlir(),
        bad.problem,
        bad.op()
    )
}
