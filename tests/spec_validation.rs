//! Every shipped spec validates and builds; every kind of impossible spec is rejected with one
//! error naming the field, the limit and the computed need.

use aiec::design::{BufferType, Design, ElemType, FifoLink, ObjectFifo, RuntimeSequence, TileId};
use aiec::device::DeviceModel;
use aiec::spec::{check_design_resources, Spec};

#[allow(dead_code)]
mod common;
use common::design::link;
use common::specs::{
    assert_errors, assert_shipped_errors, kernel_specs, matmul_toml, shipped_text, spec_files,
    try_parse as parse, Case,
};

/// A 256^3 int8 matmul on 2 x 4 cores. The leading blank line keeps the line numbers the
/// parse-error tests expect (`depth` on line 9).
fn matmul() -> String {
    format!(
        "\n{}",
        matmul_toml(["matmul", "t", "int8"], [256; 3], [32, 64, 32], [2, 4])
            + "depth = 2\nrequant = { shift = 8, scale = 1 }\n"
    )
}

/// The matmul spec with `old` replaced by `new`, which must be there.
fn matmul_replaced(old: &str, new: &str) -> String {
    let text = matmul();
    assert!(text.contains(old), "{old}");
    text.replace(old, new)
}

/// The parse error of a variant of the matmul spec with one piece of text replaced.
fn parse_error(old: &str, new: &str) -> String {
    parse(&matmul_replaced(old, new)).unwrap_err().to_string()
}

/// The validation error of a variant of the matmul spec with one piece of text replaced.
fn matmul_with(old: &str, new: &str) -> String {
    let spec = parse(&matmul_replaced(old, new)).unwrap();
    let dev = spec.device().unwrap();
    spec.validate(&dev).unwrap_err().to_string()
}

#[test]
fn every_shipped_spec_validates_and_builds() {
    let files = spec_files();
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
    let spec = Spec::load(kernel_specs().join("matmul.toml")).unwrap();
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
fn parse_errors_name_the_file_the_key_and_the_line() {
    assert_errors(
        "matmul",
        &[
            (
                "depth = 2",
                "depth = 2\ncolour = \"red\"",
                &["test.toml", "colour", "line 10"],
            ),
            ("depth = 2", "depth = \"two\"", &["line 9", "invalid type"]),
            // An unknown op and a missing field.
            ("\"matmul\"", "\"conv3d\"", &["conv3d"]),
            ("dtype = \"int8\"\n", "", &["dtype"]),
        ],
        parse_error,
    );
}

#[test]
fn missing_file_names_the_path() {
    let err = Spec::load("/nonexistent/x.toml").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/x.toml"), "{err}");
}

#[test]
fn unknown_device_lists_known_ones() {
    let spec = parse(&matmul_replaced("\"npu1\"", "\"npu9\"")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(err.contains("npu9") && err.contains("npu1_1col"), "{err}");
}

#[test]
fn matmul_limits_are_checked_per_field() {
    let shape = "shape = { m = 256, k = 256, n = 256 }";
    // A 64x256 + B 256x64 int8, depth 2 each = 64 KiB before C, acc and stack.
    let need = 2 * 64 * 256 + 2 * 256 * 64 + 2 * 64 * 64 + 64 * 64 * 4 + 1024;
    let need = format!("need {need}");
    assert_errors(
        "matmul",
        &[
            // Core memory overflow names the need, the limit and the buffers.
            (
                "tile = { m = 32, k = 64, n = 32 }",
                "tile = { m = 64, k = 256, n = 64 }",
                &["core data memory", "limit 65536", &need, "tile.m"],
            ),
            // The stack counts against core memory.
            (
                "depth = 2",
                "depth = 2\nstack_bytes = 60000",
                &["stack 60000 B", "stack_bytes"],
            ),
            // 12 FIFO ends on each memtile x depth 5 = 60 BDs > 48.
            (
                "depth = 2",
                "depth = 5",
                &["memtile buffer descriptors", "need 60, limit 48"],
            ),
            // Shapes must divide by the tiling.
            (
                shape,
                "shape = { m = 250, k = 256, n = 256 }",
                &["`shape.m`", "tile.m x cores_per_column = 128"],
            ),
            (
                shape,
                "shape = { m = 256, k = 200, n = 256 }",
                &["`shape.k`", "remainder 8"],
            ),
            (
                shape,
                "shape = { m = 256, k = 256, n = 96 }",
                &["`shape.n`", "tile.n x columns = 64"],
            ),
            // Columns and cores beyond the device.
            ("columns = 2", "columns = 5", &["`array.columns`", "has 4"]),
            (
                "cores_per_column = 4",
                "cores_per_column = 5",
                &["`array.cores_per_column`"],
            ),
            // Bad dtype combinations.
            (
                "dtype = \"int8\"",
                "dtype = \"f32\"",
                &["`dtype`", "int8, bf16"],
            ),
            ("requant = { shift = 8, scale = 1 }", "", &["`requant`"]),
            (
                "dtype = \"int8\"",
                "dtype = \"bf16\"",
                &["`requant`", "bf16"],
            ),
            ("shift = 8", "shift = 0", &["`requant.shift`"]),
        ],
        matmul_with,
    );
}

#[test]
fn columns_beyond_a_one_column_device_are_rejected() {
    let spec = parse(&matmul_replaced("\"npu1\"", "\"npu1_1col\"")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`array.columns`") && err.contains("npu1_1col has 1"),
        "{err}"
    );
}

/// Variants of shipped specs that no device can run, per spec file.
const SHIPPED_VARIANTS: &[(&str, &[Case])] = &[
    (
        "gelu.toml",
        &[
            ("\"bf16\"", "\"int8\"", &["gelu does not support int8"]),
            (
                "step = 0.03125",
                "step = 0.3",
                &["`table.step`", "whole steps"],
            ),
            (
                "step = 0.03125",
                "step = 0.0001",
                &["80001 entries", "limit 16384"],
            ),
        ],
    ),
    // Rows must split over the cores.
    (
        "layernorm.toml",
        &[
            ("columns = 3", "columns = 4", &["`shape.rows`", "= 80"]),
            ("epsilon = 1e-5", "epsilon = 0.0", &["`epsilon`"]),
        ],
    ),
    (
        "attention.toml",
        &[
            // Four cores per column run out of memtile channels.
            (
                "columns = 4, cores_per_column = 2",
                "columns = 2, cores_per_column = 4",
                &["memtile MM2S DMA channels on tile (0,1): need 9, limit 6"],
            ),
            // The blocks must fit a shim BD's repeat count.
            (
                "kv_tile = 30",
                "kv_tile = 20",
                &["`kv_tile`", "75 blocks exceed the 64"],
            ),
        ],
    ),
    (
        "mel.toml",
        &[
            // Whisper's front-end constants.
            ("hop = 160", "hop = 200", &["`hop`", "160"]),
            ("n_mels = 80", "n_mels = 64", &["`n_mels`", "80 or 128"]),
            // 10 frames of 400 f32 samples, depth 2 = 32000 B in, plus out, scratch, stack and
            // the ~9 KiB of mel tables: the tables are what push it over.
            (
                "frame_tile = 5",
                "frame_tile = 25",
                &["core data memory", "constant tables"],
            ),
        ],
    ),
    (
        "linear_int8.toml",
        &[
            (
                "tile = { m = 16,",
                "tile = { m = 24,",
                &["`shape.m`", "tile.m x cores_per_column = 48"],
            ),
            (
                "k = 32, n = 16 }",
                "k = 18, n = 16 }",
                &["`shape.k`", "tile.k = 18"],
            ),
            (
                "tile = { m = 16, k = 32, n = 16 }\narray = { columns = 2, cores_per_column = 2 }",
                "tile = { m = 64, k = 128, n = 64 }\narray = { columns = 1, cores_per_column = 1 }",
                &["tile.m/tile.k/tile.n"],
            ),
            (
                "+ bias[col])\"",
                "+ bias[col]) + residual\"",
                &["`epilogue`", "2 input DMA channels"],
            ),
            ("sa[row]", "sa[col]", &["`epilogue`", "sa[row]"]),
            (
                "out_dtype = \"bf16\"",
                "out_dtype = \"int8\"",
                &["`out_dtype`"],
            ),
        ],
    ),
    (
        "linear_bf16.toml",
        &[("acc + bias[col]", "acc * sw[col]", &["`epilogue`", "sw"])],
    ),
    (
        "whisper-base/enc_conv1.toml",
        &[
            ("k = 80,", "k = 64,", &["`tile.k`", "3 x c_in = 240"]),
            ("frames = 3000", "frames = 3001", &["`frames`", "= 3001"]),
            (
                "dtype = \"bf16\"\nc_in",
                "dtype = \"int8\"\nc_in",
                &["`dtype`", "three frames"],
            ),
            ("stride = 1", "stride = 3", &["`stride`"]),
        ],
    ),
    (
        "whisper-base/enc_conv2.toml",
        &[(
            "tile = { m = 25, k = 64, n = 32 }",
            "tile = { m = 75, k = 256, n = 32 }",
            &["tile.m/tile.k/tile.n"],
        )],
    ),
    (
        "quantize.toml",
        &[
            (
                "cols = 128",
                "cols = 126",
                &["`shape.cols`", "32-bit words"],
            ),
            ("rows = 64", "rows = 60", &["`shape.rows`"]),
            (
                "dtype = \"bf16\"",
                "dtype = \"int8\"",
                &["quantize does not support int8"],
            ),
        ],
    ),
    (
        "add.toml",
        &[
            // X and R split to every core and Y joined: 9 memtile MM2S streams for 4 cores.
            (
                "cores_per_column = 2",
                "cores_per_column = 4",
                &["`array.cores_per_column`", "9 memtile MM2S", "at most 2"],
            ),
            (
                "tile_rows = 2",
                "tile_rows = 3",
                &["`shape.rows`", "tile_rows = 3"],
            ),
            // Six 8 x 520 f32 buffers (99840 B) overflow the 64 KiB core.
            (
                "tile_rows = 2",
                "tile_rows = 8",
                &["core data memory", "tile_rows"],
            ),
            (
                "dtype = \"f32\"\nshape = { rows = 64, cols = 520 }",
                "dtype = \"bf16\"\nshape = { rows = 64, cols = 521 }",
                &["`shape.cols`", "32-bit words"],
            ),
            (
                "dtype = \"f32\"",
                "dtype = \"int8\"",
                &["add does not support int8"],
            ),
        ],
    ),
    // The fused layernorm variant writes the same layout.
    (
        "layernorm_quantize.toml",
        &[(
            "cols = 512",
            "cols = 510",
            &["`shape.cols`", "32-bit words"],
        )],
    ),
];

/// Each variant of [`SHIPPED_VARIANTS`] is refused naming the field.
#[test]
fn impossible_variants_of_shipped_specs_are_refused() {
    for (file, cases) in SHIPPED_VARIANTS {
        assert_shipped_errors(file, cases);
    }
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
    let spec = parse(&matmul()).unwrap();
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
    let links = vec![link(&["in"], &["out"], vec![], vec![])];
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
fn causal_attention_needs_square_lengths() {
    let text = shipped_text("whisper-base/dec_step_cross_attention.toml");
    let spec = parse(&format!("{text}causal = true\n")).unwrap();
    let err = spec.build().unwrap_err().to_string();
    assert!(
        err.contains("`causal`") && err.contains("5 and 1500"),
        "{err}"
    );
}

#[test]
fn every_shipped_spec_lowers_to_verified_mlir() {
    let mut failures = Vec::new();
    for f in spec_files() {
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
