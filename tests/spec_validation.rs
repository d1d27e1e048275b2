//! Every shipped spec validates and builds; every kind of impossible spec is rejected with one
//! error naming the field, the limit and the computed need.

use std::path::{Path, PathBuf};

use aiec::design::{BufferType, Design, ElemType, FifoLink, ObjectFifo, RuntimeSequence, TileId};
use aiec::device::DeviceModel;
use aiec::spec::{check_design_resources, Spec, SpecError};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel-specs")
}

fn all_spec_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [specs_dir(), specs_dir().join("whisper-base")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

const MATMUL: &str = r#"
op = "matmul"
name = "t"
device = "npu1"
dtype = "int8"
shape = { m = 256, k = 256, n = 256 }
tile = { m = 32, k = 64, n = 32 }
array = { columns = 2, cores_per_column = 4 }
depth = 2
requant = { shift = 8, scale = 1 }
"#;

fn parse(text: &str) -> Result<Spec, SpecError> {
    Spec::parse(text, Path::new("test.toml"))
}

/// Validates a variant of the matmul spec with one line replaced.
fn matmul_with(old: &str, new: &str) -> String {
    assert!(MATMUL.contains(old), "{old}");
    let text = MATMUL.replace(old, new);
    let spec = parse(&text).unwrap();
    let dev = spec.device().unwrap();
    spec.validate(&dev).unwrap_err().to_string()
}

#[test]
fn every_shipped_spec_validates_and_builds() {
    let files = all_spec_files();
    assert!(files.len() >= 15, "{files:?}");
    let mut ops = std::collections::BTreeSet::new();
    for f in &files {
        let spec = Spec::load(f).unwrap_or_else(|e| panic!("{e}"));
        let design = spec
            .build()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!design.workers.is_empty(), "{}", f.display());
        ops.insert(spec.op());
    }
    for op in ["matmul", "gelu", "softmax", "layernorm", "attention", "mel"] {
        assert!(ops.contains(op), "no built spec for {op}");
    }
    // At least one spec targets Strix.
    let npu2 = files
        .iter()
        .filter(|f| Spec::load(f).unwrap().device_name().starts_with("npu2"))
        .count();
    assert!(npu2 >= 1);
}

#[test]
fn the_512_matmul_uses_sixteen_cores_through_memtiles() {
    let spec = Spec::load(specs_dir().join("matmul.toml")).unwrap();
    let d = spec.build().unwrap();
    assert_eq!(d.workers.len(), 16);
    // Per column: A split (1 -> 4), B forward (1 -> 1), C join (4 -> 1).
    assert_eq!(d.links.len(), 12);
    let split = d.links.iter().find(|l| l.srcs == ["a_in0"]).unwrap();
    assert_eq!(
        split.dst_offsets,
        vec![0, 32 * 64, 2 * 32 * 64, 3 * 32 * 64]
    );
    let b = d.fifos.iter().find(|f| f.name == "b0").unwrap();
    assert_eq!(b.consumers.len(), 4, "B is broadcast to the column's cores");
}

#[test]
fn unknown_key_is_a_parse_error_with_line() {
    let text = MATMUL.replace("depth = 2", "depth = 2\ncolour = \"red\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("test.toml"), "{err}");
    assert!(err.contains("colour"), "{err}");
    assert!(err.contains("line 10"), "{err}");
}

#[test]
fn wrong_type_is_a_parse_error_with_line() {
    let err = parse(&MATMUL.replace("depth = 2", "depth = \"two\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 9"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn unknown_op_and_missing_field_are_parse_errors() {
    let err = parse(&MATMUL.replace("\"matmul\"", "\"conv3d\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv3d"), "{err}");
    let err = parse(&MATMUL.replace("dtype = \"int8\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("dtype"), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let err = Spec::load("/nonexistent/x.toml").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/x.toml"), "{err}");
}

#[test]
fn unknown_device_lists_known_ones() {
    let spec = parse(&MATMUL.replace("\"npu1\"", "\"npu9\"")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(err.contains("npu9") && err.contains("npu1_1col"), "{err}");
}

#[test]
fn core_memory_overflow_names_need_limit_and_buffers() {
    let err = matmul_with(
        "tile = { m = 32, k = 64, n = 32 }",
        "tile = { m = 64, k = 256, n = 64 }",
    );
    // A 64x256 + B 256x64 int8, depth 2 each = 64 KiB before C, acc and stack.
    assert!(err.contains("core data memory"), "{err}");
    assert!(err.contains("limit 65536"), "{err}");
    let need = 2 * 64 * 256 + 2 * 256 * 64 + 2 * 64 * 64 + 64 * 64 * 4 + 1024;
    assert!(err.contains(&format!("need {need}")), "{err}");
    assert!(err.contains("tile.m"), "{err}");
}

#[test]
fn stack_counts_against_core_memory() {
    let err = matmul_with("depth = 2", "depth = 2\nstack_bytes = 60000");
    assert!(err.contains("stack 60000 B"), "{err}");
    assert!(err.contains("stack_bytes"), "{err}");
}

#[test]
fn memtile_buffer_descriptors_exceeded() {
    // 12 FIFO ends on each memtile x depth 5 = 60 BDs > 48.
    let err = matmul_with("depth = 2", "depth = 5");
    assert!(err.contains("memtile buffer descriptors"), "{err}");
    assert!(err.contains("need 60, limit 48"), "{err}");
}

#[test]
fn shapes_must_divide_by_the_tiling() {
    let err = matmul_with(
        "shape = { m = 256, k = 256, n = 256 }",
        "shape = { m = 250, k = 256, n = 256 }",
    );
    assert!(err.contains("`shape.m`"), "{err}");
    assert!(err.contains("tile.m x cores_per_column = 128"), "{err}");
    let err = matmul_with(
        "shape = { m = 256, k = 256, n = 256 }",
        "shape = { m = 256, k = 200, n = 256 }",
    );
    assert!(
        err.contains("`shape.k`") && err.contains("remainder 8"),
        "{err}"
    );
    let err = matmul_with(
        "shape = { m = 256, k = 256, n = 256 }",
        "shape = { m = 256, k = 256, n = 96 }",
    );
    assert!(
        err.contains("`shape.n`") && err.contains("tile.n x columns = 64"),
        "{err}"
    );
}

#[test]
fn columns_beyond_the_device_are_rejected() {
    let err = matmul_with("columns = 2", "columns = 5");
    assert!(
        err.contains("`array.columns`") && err.contains("has 4"),
        "{err}"
    );
    let text = MATMUL.replace("\"npu1\"", "\"npu1_1col\"");
    let spec = parse(&text).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`array.columns`") && err.contains("npu1_1col has 1"),
        "{err}"
    );
    let err = matmul_with("cores_per_column = 4", "cores_per_column = 5");
    assert!(err.contains("`array.cores_per_column`"), "{err}");
}

#[test]
fn bad_dtype_combinations_are_rejected() {
    let err = matmul_with("dtype = \"int8\"", "dtype = \"f32\"");
    assert!(
        err.contains("`dtype`") && err.contains("int8, bf16"),
        "{err}"
    );
    let err = matmul_with("requant = { shift = 8, scale = 1 }", "");
    assert!(err.contains("`requant`"), "{err}");
    let err = matmul_with("dtype = \"int8\"", "dtype = \"bf16\"");
    assert!(err.contains("`requant`") && err.contains("bf16"), "{err}");
    let err = matmul_with("shift = 8", "shift = 0");
    assert!(err.contains("`requant.shift`"), "{err}");
    let gelu = std::fs::read_to_string(specs_dir().join("gelu.toml")).unwrap();
    let spec = parse(&gelu.replace("\"bf16\"", "\"int8\"")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(err.contains("gelu does not support int8"), "{err}");
}

#[test]
fn gelu_table_fields_are_checked() {
    let gelu = std::fs::read_to_string(specs_dir().join("gelu.toml")).unwrap();
    let spec = parse(&gelu.replace("step = 0.03125", "step = 0.3")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`table.step`") && err.contains("whole steps"),
        "{err}"
    );
    let spec = parse(&gelu.replace("step = 0.03125", "step = 0.0001")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("80001 entries") && err.contains("limit 16384"),
        "{err}"
    );
}

#[test]
fn rowwise_rows_must_split_over_cores() {
    let ln = std::fs::read_to_string(specs_dir().join("layernorm.toml")).unwrap();
    let spec = parse(&ln.replace("columns = 3", "columns = 4")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`shape.rows`") && err.contains("= 80"),
        "{err}"
    );
    let spec = parse(&ln.replace("epsilon = 1e-5", "epsilon = 0.0")).unwrap();
    assert!(spec.build().unwrap_err().to_string().contains("`epsilon`"));
}

/// A design built by hand to hit the per-tile limits no shipped op reaches.
fn design(fifos: Vec<ObjectFifo>, links: Vec<FifoLink>) -> Design {
    let mut tiles: Vec<TileId> = fifos
        .iter()
        .flat_map(|f| std::iter::once(f.producer).chain(f.consumers.iter().copied()))
        .collect();
    tiles.sort();
    tiles.dedup();
    Design {
        name: "hand".into(),
        device: "npu1".into(),
        tiles,
        fifos,
        links,
        workers: vec![],
        sequence: RuntimeSequence::default(),
    }
}

fn fifo(name: &str, from: TileId, to: TileId, depth: u32, bytes: usize) -> ObjectFifo {
    ObjectFifo {
        name: name.into(),
        producer: from,
        consumers: vec![to],
        depth,
        ty: BufferType::new([bytes], ElemType::I8),
    }
}

fn check(d: &Design) -> String {
    let spec = parse(MATMUL).unwrap();
    let dev = DeviceModel::get("npu1").unwrap();
    check_design_resources(&spec, d, &dev)
        .unwrap_err()
        .to_string()
}

#[test]
fn core_locks_exceeded() {
    let core = TileId::new(0, 2);
    // Nine FIFOs local to one core: 2 locks each = 18 > 16 (no DMA involved).
    let fifos = (0..9)
        .map(|i| fifo(&format!("f{i}"), core, core, 1, 16))
        .collect();
    let err = check(&design(fifos, vec![]));
    assert!(
        err.contains("core locks on tile (0,2): need 18, limit 16"),
        "{err}"
    );
}

#[test]
fn core_dma_channels_exceeded() {
    let core = TileId::new(0, 2);
    let fifos = (0..3)
        .map(|i| fifo(&format!("f{i}"), TileId::new(0, 1), core, 1, 16))
        .collect();
    let err = check(&design(fifos, vec![]));
    assert!(
        err.contains("core S2MM DMA channels on tile (0,2): need 3, limit 2"),
        "{err}"
    );
}

#[test]
fn memtile_memory_exceeded() {
    let (sh, mt, core) = (TileId::new(0, 0), TileId::new(0, 1), TileId::new(0, 2));
    let big = 300 * 1024;
    let fifos = vec![fifo("in", sh, mt, 2, big), fifo("out", mt, core, 1, 1024)];
    let links = vec![FifoLink {
        srcs: vec!["in".into()],
        dsts: vec!["out".into()],
        src_offsets: vec![],
        dst_offsets: vec![],
    }];
    let err = check(&design(fifos, links));
    assert!(err.contains("memtile data memory"), "{err}");
    assert!(
        err.contains(&format!("need {}, limit 524288", 2 * big)),
        "{err}"
    );
}

#[test]
fn memtile_dma_channels_exceeded() {
    let (sh, mt) = (TileId::new(0, 0), TileId::new(0, 1));
    let fifos = (0..7)
        .map(|i| fifo(&format!("o{i}"), mt, TileId::new(0, 2 + (i % 4)), 1, 64))
        .chain(std::iter::once(fifo("i", sh, mt, 1, 64)))
        .collect();
    let err = check(&design(fifos, vec![]));
    assert!(
        err.contains("memtile MM2S DMA channels on tile (0,1): need 7, limit 6"),
        "{err}"
    );
}

#[test]
fn attention_with_four_cores_per_column_runs_out_of_memtile_channels() {
    let text = std::fs::read_to_string(specs_dir().join("attention.toml")).unwrap();
    let spec = parse(&text.replace(
        "columns = 4, cores_per_column = 2",
        "columns = 2, cores_per_column = 4",
    ))
    .unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("memtile MM2S DMA channels on tile (0,1): need 9, limit 6"),
        "{err}"
    );
}

#[test]
fn causal_attention_needs_square_lengths() {
    let text =
        std::fs::read_to_string(specs_dir().join("whisper-base/dec_step_cross_attention.toml"))
            .unwrap();
    let spec = parse(&format!("{text}causal = true\n")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`causal`") && err.contains("5 and 1500"),
        "{err}"
    );
}

#[test]
fn mel_must_use_whispers_front_end_constants() {
    let text = std::fs::read_to_string(specs_dir().join("mel.toml")).unwrap();
    let spec = parse(&text.replace("hop = 160", "hop = 200")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(err.contains("`hop`") && err.contains("160"), "{err}");
    let spec = parse(&text.replace("n_mels = 80", "n_mels = 64")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`n_mels`") && err.contains("80 or 128"),
        "{err}"
    );
}

#[test]
fn constant_tables_count_against_core_memory() {
    // 10 frames of 400 f32 samples, depth 2 = 32000 B in, plus out, scratch, stack and the
    // ~9 KiB of mel tables: the tables are what push it over.
    let text = std::fs::read_to_string(specs_dir().join("mel.toml")).unwrap();
    let spec = parse(&text.replace("frame_tile = 5", "frame_tile = 25")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("core data memory") && err.contains("constant tables"),
        "{err}"
    );
}

#[test]
fn every_shipped_spec_lowers_to_verified_mlir() {
    let mut failures = Vec::new();
    for f in all_spec_files() {
        let spec = Spec::load(&f).unwrap();
        let design = spec.build().unwrap();
        if let Err(e) = aiec::mlir::verify(&design) {
            failures.push(format!("{}: {e}", f.display()));
            continue;
        }
        let text = aiec::mlir::emit(&design).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(text.contains("aie.runtime_sequence"), "{}", f.display());
        assert!(
            text.contains(&format!("aie.device({})", spec.device_name())),
            "{}",
            f.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn attention_blocks_must_fit_a_shim_bd_repeat_count() {
    let text = std::fs::read_to_string(specs_dir().join("attention.toml")).unwrap();
    let spec = parse(&text.replace("kv_tile = 30", "kv_tile = 20")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`kv_tile`") && err.contains("75 blocks exceed the 64"),
        "{err}"
    );
}

/// Validates a shipped spec with one piece of text replaced.
fn shipped_with(file: &str, old: &str, new: &str) -> String {
    let text = std::fs::read_to_string(specs_dir().join(file)).unwrap();
    assert!(text.contains(old), "{file}: {old}");
    let spec = parse(&text.replace(old, new)).unwrap();
    spec.build().unwrap_err().to_string()
}

#[test]
fn linear_tilings_types_and_epilogues_are_checked() {
    let f = "linear_int8.toml";
    let err = shipped_with(f, "tile = { m = 16,", "tile = { m = 24,");
    assert!(
        err.contains("`shape.m`") && err.contains("tile.m x cores_per_column = 48"),
        "{err}"
    );
    let err = shipped_with(f, "k = 32, n = 16 }", "k = 18, n = 16 }");
    assert!(
        err.contains("`shape.k`") && err.contains("tile.k = 18"),
        "{err}"
    );
    let err = shipped_with(
        f,
        "tile = { m = 16, k = 32, n = 16 }\narray = { columns = 2, cores_per_column = 2 }",
        "tile = { m = 64, k = 128, n = 64 }\narray = { columns = 1, cores_per_column = 1 }",
    );
    assert!(err.contains("tile.m/tile.k/tile.n"), "{err}");
    let err = shipped_with(f, "+ bias[col])\"", "+ bias[col]) + residual\"");
    assert!(
        err.contains("`epilogue`") && err.contains("2 input DMA channels"),
        "{err}"
    );
    let err = shipped_with(f, "sa[row]", "sa[col]");
    assert!(
        err.contains("`epilogue`") && err.contains("sa[row]"),
        "{err}"
    );
    let err = shipped_with(f, "out_dtype = \"bf16\"", "out_dtype = \"int8\"");
    assert!(err.contains("`out_dtype`"), "{err}");
    let err = shipped_with("linear_bf16.toml", "acc + bias[col]", "acc * sw[col]");
    assert!(err.contains("`epilogue`") && err.contains("sw"), "{err}");
}

#[test]
fn conv_fields_are_checked_in_its_own_terms() {
    let f = "whisper-base/enc_conv1.toml";
    let err = shipped_with(f, "k = 80,", "k = 64,");
    assert!(
        err.contains("`tile.k`") && err.contains("3 x c_in = 240"),
        "{err}"
    );
    let err = shipped_with(f, "frames = 3000", "frames = 3001");
    assert!(err.contains("`frames`") && err.contains("= 3001"), "{err}");
    let err = shipped_with(f, "dtype = \"bf16\"\nc_in", "dtype = \"int8\"\nc_in");
    assert!(
        err.contains("`dtype`") && err.contains("three frames"),
        "{err}"
    );
    let err = shipped_with(f, "stride = 1", "stride = 3");
    assert!(err.contains("`stride`"), "{err}");
    let err = shipped_with(
        "whisper-base/enc_conv2.toml",
        "tile = { m = 25, k = 64, n = 32 }",
        "tile = { m = 75, k = 256, n = 32 }",
    );
    assert!(err.contains("tile.m/tile.k/tile.n"), "{err}");
}

#[test]
fn quantize_rows_must_split_and_move_as_words() {
    let err = shipped_with("quantize.toml", "cols = 128", "cols = 126");
    assert!(
        err.contains("`shape.cols`") && err.contains("32-bit words"),
        "{err}"
    );
    let err = shipped_with("quantize.toml", "rows = 64", "rows = 60");
    assert!(err.contains("`shape.rows`"), "{err}");
    let err = shipped_with("quantize.toml", "dtype = \"bf16\"", "dtype = \"int8\"");
    assert!(err.contains("quantize does not support int8"), "{err}");
    // The fused layernorm variant writes the same layout.
    let err = shipped_with("layernorm_quantize.toml", "cols = 512", "cols = 510");
    assert!(
        err.contains("`shape.cols`") && err.contains("32-bit words"),
        "{err}"
    );
}
