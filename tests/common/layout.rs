//! Host-side data layouts the designs read.

use std::ops::Range;

/// Rows `rows` of K and V (`d` wide each) as the attention designs take them: row `j` is
/// `K_j` then `V_j`.
pub fn kv_rows(k: &[f32], v: &[f32], d: usize, rows: Range<usize>) -> Vec<f32> {
    rows.flat_map(|j| {
        k[j * d..(j + 1) * d]
            .iter()
            .chain(&v[j * d..(j + 1) * d])
            .copied()
            .collect::<Vec<_>>()
    })
    .collect()
}
