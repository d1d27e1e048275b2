//! The DMA registers of an AIE-ML shim NOC tile, as the host programs them: 16 buffer
//! descriptors of 8 words from 0x1D000, then per channel a control register and a task queue
//! (S2MM 0/1 at 0x1D200/0x1D208, MM2S 0/1 at 0x1D210/0x1D218, queue = control + 4).
//! npu1 and npu2 share this layout.

/// Column and row fields of an absolute array address.
pub const COLUMN_SHIFT: u32 = 25;
pub const ROW_SHIFT: u32 = 20;
const TILE_OFFSET_MASK: u32 = (1 << ROW_SHIFT) - 1;

const BD_BASE: u32 = 0x1_D000;
const BD_STRIDE: u32 = 0x20;
pub const BD_WORDS: usize = 8;
pub const SHIM_BDS: u32 = 16;
const S2MM_CTRL: u32 = 0x1_D200;
const MM2S_CTRL: u32 = 0x1_D210;
const CHANNEL_STRIDE: u32 = 8;
const CHANNELS: u32 = 2;

/// The packet id `aie-assign-tile-controller-ids` gives every shim NOC tile's controller; the
/// task-complete token a synced transfer issues is routed to it.
pub const SHIM_CONTROLLER_ID: u32 = 15;
/// The controller-id field of a channel control register.
pub const CTRL_CONTROLLER_ID_MASK: u32 = 0x1f00;

/// Which way a shim channel moves data, numbered as `aiex.npu.sync` and the SYNC op do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Stream → host memory (a drain).
    S2mm = 0,
    /// Host memory → stream (a fill).
    Mm2s = 1,
}

impl Direction {
    pub fn from_code(code: u32) -> Option<Direction> {
        match code {
            0 => Some(Direction::S2mm),
            1 => Some(Direction::Mm2s),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::S2mm => "S2MM",
            Direction::Mm2s => "MM2S",
        }
    }
}

pub fn tile_address(column: u32, row: u32, offset: u32) -> u32 {
    column << COLUMN_SHIFT | row << ROW_SHIFT | offset
}

/// Column, row and in-tile offset of an absolute address.
pub fn split_address(address: u32) -> (u32, u32, u32) {
    (
        address >> COLUMN_SHIFT,
        (address >> ROW_SHIFT) & 0x1f,
        address & TILE_OFFSET_MASK,
    )
}

pub fn bd_address(column: u32, row: u32, bd: u32) -> u32 {
    tile_address(column, row, BD_BASE + bd * BD_STRIDE)
}

/// The base-address word of a BD (its word 1), the one a DDR patch fills in.
pub fn bd_base_address(column: u32, row: u32, bd: u32) -> u32 {
    bd_address(column, row, bd) + 4
}

pub fn ctrl_address(column: u32, row: u32, dir: Direction, channel: u32) -> u32 {
    let base = match dir {
        Direction::S2mm => S2MM_CTRL,
        Direction::Mm2s => MM2S_CTRL,
    };
    tile_address(column, row, base + channel * CHANNEL_STRIDE)
}

pub fn queue_address(column: u32, row: u32, dir: Direction, channel: u32) -> u32 {
    ctrl_address(column, row, dir, channel) + 4
}

/// What an in-tile offset of a shim tile is, if it is one of the DMA registers above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// Word `word` of buffer descriptor `bd`.
    Bd {
        bd: u32,
        word: u32,
    },
    Ctrl {
        dir: Direction,
        channel: u32,
    },
    Queue {
        dir: Direction,
        channel: u32,
    },
}

pub fn register(offset: u32) -> Option<Register> {
    if (BD_BASE..BD_BASE + SHIM_BDS * BD_STRIDE).contains(&offset) && offset.is_multiple_of(4) {
        let rel = offset - BD_BASE;
        return Some(Register::Bd {
            bd: rel / BD_STRIDE,
            word: (rel % BD_STRIDE) / 4,
        });
    }
    for (dir, base) in [(Direction::S2mm, S2MM_CTRL), (Direction::Mm2s, MM2S_CTRL)] {
        for channel in 0..CHANNELS {
            let ctrl = base + channel * CHANNEL_STRIDE;
            if offset == ctrl {
                return Some(Register::Ctrl { dir, channel });
            }
            if offset == ctrl + 4 {
                return Some(Register::Queue { dir, channel });
            }
        }
    }
    None
}

/// A shim BD's fields in hardware units: lengths and strides in 32-bit words, each stride
/// stored minus one, the iteration size stored minus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BdFields {
    pub buffer_length: u32,
    pub base_address: u32,
    pub enable_packet: bool,
    pub out_of_order_id: u32,
    pub packet_id: u32,
    pub packet_type: u32,
    pub d0_size: u32,
    pub d0_stride: u32,
    pub burst_length: u32,
    pub d1_size: u32,
    pub d1_stride: u32,
    /// AXI cache attribute; aie-dma-to-npu sets 2 so the NoC may upsize transfers.
    pub ax_cache: u32,
    pub d2_stride: u32,
    pub iteration_current: u32,
    pub iteration_size: u32,
    pub iteration_stride: u32,
    pub next_bd: u32,
    pub use_next_bd: bool,
    pub valid: bool,
    pub lock_rel_value: u32,
    pub lock_rel_id: u32,
    pub lock_acq_enable: bool,
    pub lock_acq_value: u32,
    pub lock_acq_id: u32,
}

impl BdFields {
    pub fn encode(&self) -> [u32; BD_WORDS] {
        let b = |x: bool| u32::from(x);
        [
            self.buffer_length,
            self.base_address,
            b(self.enable_packet) << 30
                | (self.out_of_order_id & 0x3f) << 24
                | (self.packet_id & 0x1f) << 19
                | (self.packet_type & 0x7) << 16,
            (self.d0_size & 0x3ff) << 20 | (self.d0_stride & 0xf_ffff),
            (self.burst_length & 0x3) << 30
                | (self.d1_size & 0x3ff) << 20
                | (self.d1_stride & 0xf_ffff),
            (self.ax_cache & 0xf) << 24 | (self.d2_stride & 0xf_ffff),
            (self.iteration_current & 0x3f) << 26
                | (self.iteration_size & 0x3f) << 20
                | (self.iteration_stride & 0xf_ffff),
            (self.next_bd & 0xf) << 27
                | b(self.use_next_bd) << 26
                | b(self.valid) << 25
                | (self.lock_rel_value & 0x7f) << 18
                | (self.lock_rel_id & 0xf) << 13
                | b(self.lock_acq_enable) << 12
                | (self.lock_acq_value & 0x7f) << 5
                | (self.lock_acq_id & 0xf),
        ]
    }

    pub fn decode(w: &[u32; BD_WORDS]) -> BdFields {
        let bit = |word: u32, at: u32| word >> at & 1 == 1;
        BdFields {
            buffer_length: w[0],
            base_address: w[1],
            enable_packet: bit(w[2], 30),
            out_of_order_id: w[2] >> 24 & 0x3f,
            packet_id: w[2] >> 19 & 0x1f,
            packet_type: w[2] >> 16 & 0x7,
            d0_size: w[3] >> 20 & 0x3ff,
            d0_stride: w[3] & 0xf_ffff,
            burst_length: w[4] >> 30 & 0x3,
            d1_size: w[4] >> 20 & 0x3ff,
            d1_stride: w[4] & 0xf_ffff,
            ax_cache: w[5] >> 24 & 0xf,
            d2_stride: w[5] & 0xf_ffff,
            iteration_current: w[6] >> 26 & 0x3f,
            iteration_size: w[6] >> 20 & 0x3f,
            iteration_stride: w[6] & 0xf_ffff,
            next_bd: w[7] >> 27 & 0xf,
            use_next_bd: bit(w[7], 26),
            valid: bit(w[7], 25),
            lock_rel_value: w[7] >> 18 & 0x7f,
            lock_rel_id: w[7] >> 13 & 0xf,
            lock_acq_enable: bit(w[7], 12),
            lock_acq_value: w[7] >> 5 & 0x7f,
            lock_acq_id: w[7] & 0xf,
        }
    }
}

/// A task-queue push: start BD `bd`, run it `repeat + 1` times, and (with `issue_token`)
/// send a task-complete token when done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePush {
    pub bd: u32,
    pub repeat: u32,
    pub issue_token: bool,
}

impl QueuePush {
    pub fn encode(&self) -> u32 {
        (self.bd & 0xf) | (self.repeat & 0xff) << 16 | u32::from(self.issue_token) << 31
    }

    pub fn decode(word: u32) -> QueuePush {
        QueuePush {
            bd: word & 0xf,
            repeat: word >> 16 & 0xff,
            issue_token: word >> 31 == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bd_fields_round_trip_through_their_words() {
        let f = BdFields {
            buffer_length: 8320,
            d0_size: 520,
            burst_length: 2,
            d1_size: 4,
            d1_stride: 519,
            ax_cache: 2,
            d2_stride: 2079,
            iteration_size: 3,
            iteration_stride: 7,
            valid: true,
            ..Default::default()
        };
        let w = f.encode();
        assert_eq!(w[3], 0x2080_0000);
        assert_eq!(w[4], 0x8040_0207);
        assert_eq!(w[5], 0x0200_081f);
        assert_eq!(w[7], 0x0200_0000);
        assert_eq!(BdFields::decode(&w), f);
    }

    #[test]
    fn registers_are_named_by_offset() {
        assert_eq!(split_address(bd_address(2, 0, 3)), (2, 0, 0x1d060));
        assert_eq!(register(0x1d064), Some(Register::Bd { bd: 3, word: 1 }));
        assert_eq!(
            register(0x1d21c),
            Some(Register::Queue {
                dir: Direction::Mm2s,
                channel: 1
            })
        );
        assert_eq!(register(0x1d300), None);
        let p = QueuePush {
            bd: 5,
            repeat: 3,
            issue_token: true,
        };
        assert_eq!(QueuePush::decode(p.encode()), p);
    }
}
