//! The simulator driven by an instruction stream (`aiec sim --from-insts`, and `--device sim`):
//! the checked-in golden `insts.bin` of every spec (byte-identical to aie-translate's, see
//! tests/npu_insts.rs) is decoded and executed against the argument buffers, and the outputs
//! must pass the op's float64 reference. Broken streams get errors located at their op.

use std::path::Path;
use std::sync::Arc;

use aiec::npu::{Op, Stream};
use aiec::sim::verify::check_spec;
use aiec::sim::{SequenceSource, SimError, SimOptions};
use aiec::spec::Spec;

#[allow(dead_code)]
mod common;
use common::specs::{kernel_specs, shipped_text, spec_files_in};

fn golden_stream(name: &str) -> Stream {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("golden/insts/{name}.bin"));
    Stream::decode(&std::fs::read(&path).unwrap()).unwrap()
}

fn options(stream: Stream) -> SimOptions {
    SimOptions {
        sequence: SequenceSource::Stream(Arc::new(stream)),
        ..SimOptions::default()
    }
}

#[test]
fn every_spec_passes_its_reference_from_its_golden_instruction_stream() {
    let root = kernel_specs();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in spec_files_in(&root) {
        let rel = path.strip_prefix(&root).unwrap().with_extension("");
        let name = rel.to_string_lossy().replace('/', "__");
        let spec = Spec::load(&path).unwrap();
        match check_spec(&spec, 3, &options(golden_stream(&name))) {
            Ok(c) if c.comparison.passed() => checked += 1,
            Ok(c) => failures.push(format!("{name}: {} violations", c.comparison.violations)),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 40, "only {checked} specs");
}

/// Prepares `add.toml` on its golden stream after `spoil` has edited it; the error.
fn spoiled(spoil: impl FnOnce(&mut Vec<Op>)) -> SimError {
    let spec = Spec::parse(&shipped_text("add.toml"), Path::new("add.toml")).unwrap();
    let mut stream = golden_stream("add");
    spoil(&mut stream.ops);
    let design = spec.build().unwrap();
    // The stream is decoded and checked when the design is prepared, before any data moves.
    match aiec::sim::Prepared::new(&design, &options(stream)) {
        Ok(_) => panic!("a spoiled stream was accepted"),
        Err(e) => e,
    }
}

fn position(ops: &[Op], f: impl Fn(&Op) -> bool) -> usize {
    ops.iter()
        .position(f)
        .expect("the golden stream has that op")
}

#[test]
fn a_bd_reaching_past_its_buffer_is_located() {
    let err = spoiled(|ops| {
        let i = position(ops, |o| matches!(o, Op::DdrPatch { .. }));
        if let Op::DdrPatch { offset, .. } = &mut ops[i] {
            *offset += 1 << 28;
        }
    });
    let SimError::Insts { op, message, .. } = &err else {
        panic!("{err}")
    };
    assert!(message.contains("touches element"), "{err}");
    assert!(
        err.to_string().contains(&format!("op #{op} (WRITE32)")),
        "{err}"
    );
}

#[test]
fn a_sync_that_can_never_complete_is_located() {
    // Drop every queue push: the first SYNC then waits on a channel with no task.
    let err = spoiled(|ops| {
        ops.retain(|o| !matches!(o, Op::Write32 { .. }));
    });
    let SimError::Insts { name, message, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*name, "SYNC");
    assert!(message.contains("would never complete"), "{err}");
}

#[test]
fn a_push_of_an_unpatched_or_unwritten_bd_is_located() {
    let err = spoiled(|ops| ops.retain(|o| !matches!(o, Op::DdrPatch { .. })));
    assert!(err.to_string().contains("no DDR_PATCH"), "{err}");
    let err = spoiled(|ops| ops.retain(|o| !matches!(o, Op::BlockWrite { .. })));
    assert!(err.to_string().contains("never written"), "{err}");
}

#[test]
fn a_write_outside_the_shim_dma_registers_is_located() {
    let err = spoiled(|ops| {
        ops.insert(
            0,
            Op::Write32 {
                address: 0x1_d300,
                value: 1,
            },
        )
    });
    assert!(
        err.to_string()
            .starts_with("instruction stream op #0 (WRITE32): "),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("not a shim buffer descriptor word"),
        "{err}"
    );
}

/// The runtime's logits design before it was split into column parts: the shim steps from one
/// k block of B (`[512 + 2, 51968]` bf16) to the next by 64 rows, 1662976 words, beyond the
/// BD's 20-bit stride. The lowering must refuse it rather than mask the stride into another
/// pattern (a transcription driven by that stream came out as garbage).
#[test]
fn a_stride_beyond_the_bd_field_gets_no_instruction_stream() {
    let text = "op = \"linear\"\nname = \"logits\"\ndevice = \"npu1\"\ndtype = \"bf16\"\n\
                shape = { m = 4, k = 512, n = 51968 }\ntile = { m = 4, k = 64, n = 32 }\n\
                array = { columns = 4, cores_per_column = 1 }\ndepth = 2\n\
                epilogue = \"acc\"\nout_dtype = \"f32\"\n";
    let design = Spec::parse(text, Path::new("logits.toml"))
        .unwrap()
        .build()
        .unwrap();
    let info = aiec::design::validate::validate_on_named_device(&design).unwrap();
    let err = aiec::npu::instructions(&design, &info)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stride 1662976 words does not fit the BD's 20-bit field"),
        "{err}"
    );
}
