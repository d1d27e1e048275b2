//! The two in-process rewrites of aiecc's flow that are not a tool invocation.
//!
//! * LLVM IR from the host MLIR (LLVM 22) uses syntax Peano's older LLVM rejects:
//!   `getelementptr inbounds nuw` and `, align N` on some instructions. aiecc strips both
//!   before Peano's `opt`; so do we.
//! * CDO generation loads each core's program from the `elf_file` attribute of its
//!   `aie.core`; aiecc sets it after linking. We add `elf_file = "<name>"` to every core of
//!   `input_physical.mlir` by a careful text edit (the file is aie-opt's custom syntax,
//!   `%core = aie.core(%tile) { ... } {attrs}`), since the host MLIR has no AIE dialect.

use std::collections::BTreeMap;

/// Rewrites LLVM IR text for Peano: drops `nuw` after `getelementptr inbounds`, and every
/// `, align <integer>` annotation.
pub fn peano_compat(llvm_ir: &str) -> String {
    let text = llvm_ir.replace("getelementptr inbounds nuw", "getelementptr inbounds");
    drop_alignment(&text)
}

/// Removes every `,<ws>align<ws+><digits>` (the regex `,\s*align\s+\d+`).
fn drop_alignment(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b',' {
            if let Some(end) = match_align(bytes, i + 1) {
                out.push_str(&text[copied..i]);
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// If `bytes[start..]` is `\s*align\s+\d+`, the index just past the digits.
fn match_align(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if !bytes[i..].starts_with(b"align") {
        return None;
    }
    i += "align".len();
    let ws_start = i;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if i == ws_start {
        return None;
    }
    let digits_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    (i > digits_start).then_some(i)
}

/// Why `attach_elf_files` could not edit the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrEditError(pub String);

/// Adds `elf_file = "<name>"` to the attribute dictionary of every `aie.core` whose tile is
/// in `elf_for_tile` (`(col, row)` → file name). Cores that already name an ELF keep it.
/// Errors if a listed core is not in the module, or the text is not shaped as expected.
pub fn attach_elf_files(
    mlir: &str,
    elf_for_tile: &BTreeMap<(u32, u32), String>,
) -> Result<String, IrEditError> {
    let tiles = tile_definitions(mlir);
    let mut edits: Vec<(usize, String)> = Vec::new();
    let mut attached = std::collections::BTreeSet::new();

    let mut search_from = 0;
    while let Some(rel) = mlir[search_from..].find("aie.core(") {
        let open_paren = search_from + rel + "aie.core".len();
        search_from = open_paren + 1;
        if !is_op_start(mlir, search_from - "aie.core(".len()) {
            continue;
        }
        let close_paren = mlir[open_paren..]
            .find(')')
            .map(|p| open_paren + p)
            .ok_or_else(|| IrEditError("unterminated `aie.core(` operand list".into()))?;
        let operand = mlir[open_paren + 1..close_paren].trim();
        let tile = *tiles.get(operand).ok_or_else(|| {
            IrEditError(format!(
                "`aie.core({operand})` uses a tile that no `aie.tile(col, row)` defines"
            ))
        })?;
        let region_open = skip_ws(mlir, close_paren + 1);
        if mlir.as_bytes().get(region_open) != Some(&b'{') {
            return Err(IrEditError(format!(
                "`aie.core({operand})` is not followed by its region"
            )));
        }
        let region_close = matching_brace(mlir, region_open).ok_or_else(|| {
            IrEditError(format!(
                "unbalanced braces in the region of `aie.core({operand})`"
            ))
        })?;
        search_from = region_close + 1;
        // The attribute dictionary, if any, follows the region on the same line.
        let after = skip_spaces(mlir, region_close + 1);
        let dict = if mlir.as_bytes().get(after) == Some(&b'{') {
            let dict_close = matching_brace(mlir, after).ok_or_else(|| {
                IrEditError(format!(
                    "unbalanced attribute dictionary of `aie.core({operand})`"
                ))
            })?;
            Some(&mlir[after + 1..dict_close])
        } else {
            None
        };
        let has_elf = dict.is_some_and(|d| has_key(d, "elf_file"));
        let Some(elf) = elf_for_tile.get(&tile) else {
            // CDO generation would stop at this core much later and less clearly.
            if !has_elf {
                return Err(IrEditError(format!(
                    "the core on tile ({}, {}) has no ELF: it is not among the build's cores",
                    tile.0, tile.1
                )));
            }
            continue;
        };
        attached.insert(tile);
        match dict {
            Some(_) if has_elf => {}
            Some(d) => {
                let sep = if d.trim().is_empty() { "" } else { ", " };
                edits.push((after + 1, format!("elf_file = {}{sep}", quote(elf))));
            }
            None => edits.push((region_close + 1, format!(" {{elf_file = {}}}", quote(elf)))),
        }
    }

    if let Some(missing) = elf_for_tile.keys().find(|t| !attached.contains(t)) {
        return Err(IrEditError(format!(
            "no `aie.core` on tile ({}, {}) in the module",
            missing.0, missing.1
        )));
    }

    let mut out = mlir.to_string();
    for (pos, text) in edits.into_iter().rev() {
        out.insert_str(pos, &text);
    }
    Ok(out)
}

/// `%name = aie.tile(C, R)` definitions: SSA name → `(col, row)`.
fn tile_definitions(mlir: &str) -> BTreeMap<String, (u32, u32)> {
    let mut map = BTreeMap::new();
    for line in mlir.lines() {
        let Some((lhs, rhs)) = line.split_once('=') else {
            continue;
        };
        let name = lhs.trim();
        let rhs = rhs.trim_start();
        let Some(args) = rhs.strip_prefix("aie.tile(") else {
            continue;
        };
        if !name.starts_with('%') {
            continue;
        }
        let Some((inner, _)) = args.split_once(')') else {
            continue;
        };
        let mut nums = inner.split(',').map(|s| s.trim().parse::<u32>());
        if let (Some(Ok(col)), Some(Ok(row)), None) = (nums.next(), nums.next(), nums.next()) {
            map.insert(name.to_string(), (col, row));
        }
    }
    map
}

/// Whether `aie.core` at `pos` starts an op (not part of a longer name or a string).
fn is_op_start(text: &str, pos: usize) -> bool {
    match text[..pos].chars().next_back() {
        None => true,
        Some(c) => c.is_whitespace() || c == '=',
    }
}

fn skip_ws(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Skips spaces and tabs only: the attribute dictionary sits on the region's last line.
fn skip_spaces(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Index of the `}` matching the `{` at `open`, skipping string literals and `//` comments.
fn matching_brace(text: &str, open: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether the top level of an attribute dictionary body has `key = ...`.
fn has_key(dict: &str, key: &str) -> bool {
    dict.split(',')
        .filter_map(|entry| entry.split_once('='))
        .any(|(k, _)| k.trim() == key)
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peano_compat_strips_nuw_and_alignment() {
        let ir = "%1 = getelementptr inbounds nuw float, ptr %0, i64 3\n\
                  %2 = load float, ptr %1, align 4\n\
                  store float %2, ptr %1 ,  align   16, !tbaa !1\n\
                  call void @f(i32 1, i32 2)\n\
                  %aligned = add i32 %x, 1\n";
        let out = peano_compat(ir);
        assert_eq!(
            out,
            "%1 = getelementptr inbounds float, ptr %0, i64 3\n\
             %2 = load float, ptr %1\n\
             store float %2, ptr %1 , !tbaa !1\n\
             call void @f(i32 1, i32 2)\n\
             %aligned = add i32 %x, 1\n"
        );
    }

    const PHYSICAL: &str = r#"module {
  aie.device(npu1) {
    %shim_noc_tile_0_0 = aie.tile(0, 0)
    %tile_0_2 = aie.tile(0, 2) {controller_id = #aie.packet_info<pkt_type = 0, pkt_id = 27>}
    %tile_1_3 = aie.tile(1, 3)
    %core_0_2 = aie.core(%tile_0_2) {
      %c0 = arith.constant 0 : index
      cf.br ^bb1
    ^bb1:
      memref.store %c0, %buf[] {note = "a } brace in a string"} : memref<index>
      aie.end
    } {stack_size = 1024 : i32}
    %core_1_3 = aie.core(%tile_1_3) {
      aie.end
    }
  }
}
"#;

    #[test]
    fn attaches_elf_files_to_both_core_forms() {
        let elfs = BTreeMap::from([
            ((0, 2), "main_core_0_2.elf".to_string()),
            ((1, 3), "main_core_1_3.elf".to_string()),
        ]);
        let out = attach_elf_files(PHYSICAL, &elfs).unwrap();
        assert!(
            out.contains("} {elf_file = \"main_core_0_2.elf\", stack_size = 1024 : i32}"),
            "{out}"
        );
        assert!(
            out.contains("    } {elf_file = \"main_core_1_3.elf\"}\n"),
            "{out}"
        );
        // Nothing else changed.
        let undone = out
            .replace("elf_file = \"main_core_0_2.elf\", ", "")
            .replace(" {elf_file = \"main_core_1_3.elf\"}", "");
        assert_eq!(undone, PHYSICAL);
        // Running it again keeps the existing attributes and adds nothing.
        assert_eq!(attach_elf_files(&out, &elfs).unwrap(), out);
    }

    #[test]
    fn core_left_out_of_the_request_is_an_error() {
        let elfs = BTreeMap::from([((0, 2), "main_core_0_2.elf".to_string())]);
        let err = attach_elf_files(PHYSICAL, &elfs).unwrap_err();
        assert_eq!(
            err.0,
            "the core on tile (1, 3) has no ELF: it is not among the build's cores"
        );
        // A core that already names its ELF needs no entry.
        let prebuilt = PHYSICAL.replace(
            "      aie.end\n    }\n  }",
            "      aie.end\n    } {elf_file = \"prebuilt.elf\"}\n  }",
        );
        assert_ne!(prebuilt, PHYSICAL);
        let out = attach_elf_files(&prebuilt, &elfs).unwrap();
        assert!(out.contains("{elf_file = \"prebuilt.elf\"}"));
        assert!(out.contains("{elf_file = \"main_core_0_2.elf\", stack_size"));
    }

    #[test]
    fn missing_core_is_an_error() {
        let elfs = BTreeMap::from([
            ((0, 2), "main_core_0_2.elf".to_string()),
            ((1, 3), "main_core_1_3.elf".to_string()),
            ((2, 2), "main_core_2_2.elf".to_string()),
        ]);
        let err = attach_elf_files(PHYSICAL, &elfs).unwrap_err();
        assert_eq!(err.0, "no `aie.core` on tile (2, 2) in the module");
    }

    #[test]
    fn core_on_undefined_tile_is_an_error() {
        let text = "%core = aie.core(%nowhere) {\n aie.end\n}\n";
        let err = attach_elf_files(text, &BTreeMap::new()).unwrap_err();
        assert!(err.0.contains("%nowhere"), "{}", err.0);
    }
}
