//! The shim buffer-descriptor encoding limits aie-opt checks on `aiex.npu.dma_memcpy_nd`.

use crate::design::TensorAccessPattern;

/// Address generation granularity of AIE-ML DMAs, bits.
const DMA_GRANULARITY_BITS: usize = 32;

/// The shim NOC buffer-descriptor limits aie-opt checks on `dma_memcpy_nd` (AIE-ML: 10-bit
/// wraps, 20-bit steps, 6-bit iteration count, all in 32-bit words; the offset 4-byte
/// aligned). A plain `[1, 1, 1, n][0, 0, 0, 1]` transfer is exempt from the wrap limit.
pub(super) fn check_shim_bd(p: &TensorAccessPattern, elem_bits: usize) -> Result<(), String> {
    const WRAP_MAX: usize = (1 << 10) - 1;
    const STEP_MAX: usize = 1 << 20;
    const ITER_MAX: usize = 1 << 6;
    let g = DMA_GRANULARITY_BITS;
    // Innermost first, as the hardware counts dimensions.
    let d = [p.sizes[3], p.sizes[2], p.sizes[1], p.sizes[0]];
    let s = [p.strides[3], p.strides[2], p.strides[1], p.strides[0]];
    if !(p.offset * elem_bits).is_multiple_of(g) {
        return Err(format!("offset {} is not 4-byte aligned", p.offset));
    }
    if !(d[0] * elem_bits).is_multiple_of(g) {
        return Err(format!(
            "innermost size {} ({} bytes) is not a multiple of 4 bytes",
            d[0],
            d[0] * elem_bits / 8
        ));
    }
    for i in 1..3 {
        if d[i] > 1 && s[i] < 1 {
            return Err(format!(
                "dimension {i} (innermost = 0) repeats with stride 0"
            ));
        }
    }
    for (i, &st) in s.iter().enumerate().skip(1) {
        if !(st * elem_bits).is_multiple_of(g) {
            return Err(format!(
                "stride of dimension {i} (innermost = 0) is {} bytes, not a multiple of 4",
                st * elem_bits / 8
            ));
        }
    }
    let linear = d[1] == 1 && d[2] == 1 && s[1] == 0 && s[2] == 0;
    let words0 = d[0] * elem_bits / g;
    if !linear && words0 > WRAP_MAX {
        return Err(format!(
            "innermost size {} is {words0} words; a shim BD wraps at most {WRAP_MAX}",
            d[0]
        ));
    }
    if d[1] > WRAP_MAX {
        return Err(format!(
            "size of dimension 1 (innermost = 0) is {}; a shim BD wraps at most {WRAP_MAX}",
            d[1]
        ));
    }
    if d[3] > ITER_MAX + 1 {
        return Err(format!(
            "outermost size {} exceeds the {} iterations of a shim BD",
            d[3],
            ITER_MAX + 1
        ));
    }
    for i in 1..4 {
        let words = (s[i] * elem_bits / g).saturating_sub(1);
        if d[i] > 1 && words > STEP_MAX {
            return Err(format!(
                "stride of dimension {i} (innermost = 0) is {} words; a shim BD steps at most {STEP_MAX}",
                words + 1
            ));
        }
    }
    Ok(())
}
