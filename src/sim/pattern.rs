//! 4-D access patterns of `aiex.npu.dma_memcpy_nd`: offset, sizes and strides, highest
//! dimension first, in elements of the host buffer.

use crate::design::TensorAccessPattern;

/// One innermost row of a pattern: `count` elements from `start`, `stride` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub start: usize,
    pub count: usize,
    pub stride: usize,
}

/// The innermost rows of `p` in transfer order. A DMA moves a row with one copy when its
/// stride is 1, instead of element by element; the order is that of [`indices`].
pub(crate) fn rows(p: &TensorAccessPattern) -> impl Iterator<Item = Row> + '_ {
    let [s0, s1, s2, s3] = p.sizes;
    let [t0, t1, t2, t3] = p.strides;
    (0..s0 * s1 * s2).filter(move |_| s3 > 0).map(move |r| {
        let (i0, i1, i2) = (r / (s1 * s2), r / s2 % s1, r % s2);
        Row {
            start: p.offset + i0 * t0 + i1 * t1 + i2 * t2,
            count: s3,
            stride: t3,
        }
    })
}

/// Element indices in transfer order (the innermost dimension varies fastest).
#[cfg(test)]
pub(crate) fn indices(p: &TensorAccessPattern) -> Vec<usize> {
    let [s0, s1, s2, s3] = p.sizes;
    let [t0, t1, t2, t3] = p.strides;
    let mut out = Vec::with_capacity(p.len());
    for i0 in 0..s0 {
        for i1 in 0..s1 {
            for i2 in 0..s2 {
                let base = p.offset + i0 * t0 + i1 * t1 + i2 * t2;
                out.extend((0..s3).map(|i3| base + i3 * t3));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::validate::last_index;

    #[test]
    fn tiles_a_row_major_matrix_highest_dimension_first() {
        // A 4x4 matrix read as 2x2 tiles of 2x2: sizes [2 tile rows, 2 tile cols, 2 rows, 2 cols].
        let p = TensorAccessPattern {
            offset: 0,
            sizes: [2, 2, 2, 2],
            strides: [8, 2, 4, 1],
        };
        assert_eq!(
            indices(&p),
            vec![0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
        );
        // The validator's bound is the largest index the transfer touches.
        assert_eq!(last_index(&p), 15);
        assert_eq!(indices(&p).into_iter().max(), Some(last_index(&p)));
        let expanded: Vec<usize> = rows(&p)
            .flat_map(|r| (0..r.count).map(move |i| r.start + i * r.stride))
            .collect();
        assert_eq!(expanded, indices(&p));
        let linear = TensorAccessPattern::linear(3, 5);
        assert_eq!(
            rows(&linear).collect::<Vec<_>>(),
            vec![Row {
                start: 3,
                count: 5,
                stride: 1
            }]
        );
        assert_eq!(indices(&linear), vec![3, 4, 5, 6, 7]);
        assert_eq!(last_index(&linear), 7);
    }
}
