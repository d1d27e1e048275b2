//! The MP4 edit list of the audio track, which symphonia 0.5 reads but does not apply.
//!
//! AAC encoders put priming samples (typically 1024 or 2112) before the audio and pad the
//! last frame; the `elst` box says where the presentation starts (`media_time`) and how
//! long it lasts, and `mdhd` how long the media is. ffmpeg (so faster-whisper) applies
//! both; without them an m4a decodes ~0.1 s long and shifted, which moves every timestamp.
//! Box layouts from ISO/IEC 14496-12 (mvhd 8.2.2, mdhd 8.4.2, hdlr 8.4.3, elst 8.6.6).

/// Timing of the first audio track of an MP4/M4A file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioTiming {
    /// Ticks per second of the movie (edit durations are in these).
    movie_timescale: u32,
    /// Ticks per second of the track's media (media times are in these).
    media_timescale: u32,
    /// Media length in media ticks, priming and padding included.
    media_duration: u64,
    /// The first non-empty edit: (duration in movie ticks, start in media ticks).
    edit: Option<(u64, u64)>,
}

impl AudioTiming {
    /// Reads the timing from a whole MP4 file; `None` if it is not one or has no audio track.
    pub(crate) fn parse(file: &[u8]) -> Option<Self> {
        if file.get(4..8) != Some(b"ftyp") {
            return None;
        }
        Self::from_moov(boxes(file).find(|(kind, _)| kind == b"moov")?.1)
    }

    /// [`AudioTiming::parse`] reading only the file's top-level box headers and its `moov`
    /// (a long recording's `mdat` is never read into memory).
    pub(crate) fn read(file: &std::fs::File) -> Option<Self> {
        use std::os::unix::fs::FileExt;
        let len = file.metadata().ok()?.len();
        let mut header = [0u8; 16];
        file.read_exact_at(&mut header[..8], 0).ok()?;
        if &header[4..8] != b"ftyp" {
            return None;
        }
        let mut at = 0u64;
        while at + 8 <= len {
            file.read_exact_at(&mut header[..8], at).ok()?;
            let (head, size) = match u32::from_be_bytes(header[0..4].try_into().ok()?) as u64 {
                0 => (8, len - at),
                1 => {
                    file.read_exact_at(&mut header[8..16], at + 8).ok()?;
                    (16, u64::from_be_bytes(header[8..16].try_into().ok()?))
                }
                n => (8, n),
            };
            if size < head || at + size > len {
                return None;
            }
            if &header[4..8] == b"moov" {
                // Larger than any real index (a 30-minute AAC track's is a few hundred KB).
                if size > MAX_MOOV_BYTES {
                    return None;
                }
                let mut moov = vec![0u8; (size - head) as usize];
                file.read_exact_at(&mut moov, at + head).ok()?;
                return Self::from_moov(&moov);
            }
            at += size;
        }
        None
    }

    fn from_moov(moov: &[u8]) -> Option<Self> {
        let movie_timescale = boxes(moov)
            .find(|(kind, _)| kind == b"mvhd")
            .and_then(|(_, b)| timescale_and_duration(b))?
            .0;
        boxes(moov)
            .filter(|(kind, _)| kind == b"trak")
            .find_map(|(_, trak)| {
                let mdia = boxes(trak).find(|(kind, _)| kind == b"mdia")?.1;
                let handler = boxes(mdia).find(|(kind, _)| kind == b"hdlr")?.1;
                if handler.get(8..12) != Some(b"soun") {
                    return None;
                }
                let (media_timescale, media_duration) = boxes(mdia)
                    .find(|(kind, _)| kind == b"mdhd")
                    .and_then(|(_, b)| timescale_and_duration(b))?;
                let edit = boxes(trak)
                    .find(|(kind, _)| kind == b"edts")
                    .and_then(|(_, edts)| boxes(edts).find(|(kind, _)| kind == b"elst"))
                    .and_then(|(_, elst)| first_media_edit(elst));
                Some(AudioTiming {
                    movie_timescale,
                    media_timescale,
                    media_duration,
                    edit,
                })
            })
            .filter(|t| t.movie_timescale > 0 && t.media_timescale > 0)
    }

    /// The decoded samples (at `rate` Hz) the edit list presents: `start..end` of the
    /// decoder's output (`end` unbounded when neither the media nor the edit has a length).
    pub(crate) fn kept(&self, rate: u32) -> (usize, usize) {
        let to_samples = |ticks: u64, timescale: u32| -> usize {
            ((ticks as u128 * rate as u128 + timescale as u128 / 2) / timescale as u128) as usize
        };
        let mut end = usize::MAX;
        if self.media_duration > 0 {
            end = to_samples(self.media_duration, self.media_timescale);
        }
        let Some((duration, start)) = self.edit else {
            return (0, end);
        };
        let start = to_samples(start, self.media_timescale);
        if duration > 0 {
            end = end.min(start.saturating_add(to_samples(duration, self.movie_timescale)));
        }
        (start, end.max(start))
    }

    /// Cuts decoded samples (at `rate` Hz) to what the edit list presents.
    #[cfg(test)]
    fn apply(&self, samples: &mut Vec<f32>, rate: u32) {
        let (start, end) = self.kept(rate);
        samples.truncate(end);
        samples.drain(..start.min(samples.len()));
    }
}

/// Largest `moov` box [`AudioTiming::read`] loads.
const MAX_MOOV_BYTES: u64 = 64 << 20;

/// Iterates the boxes laid end to end in `data` as (type, payload); stops at a malformed one.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?) as u64;
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            0 => (8, rest.len() as u64),
            1 => (16, u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?)),
            n => (8, n),
        };
        if size < header || size > rest.len() as u64 {
            return None;
        }
        let payload = &rest[header as usize..size as usize];
        rest = &rest[size as usize..];
        Some((kind, payload))
    })
}

/// (timescale, duration) of an `mvhd` or `mdhd` payload (same layout up to there).
fn timescale_and_duration(payload: &[u8]) -> Option<(u32, u64)> {
    match *payload.first()? {
        0 => Some((be_u32(payload, 12)?, be_u32(payload, 16)? as u64)),
        1 => Some((be_u32(payload, 20)?, be_u64(payload, 24)?)),
        _ => None,
    }
}

/// The first edit that maps media (`media_time` of -1 marks an empty edit, a pause).
fn first_media_edit(elst: &[u8]) -> Option<(u64, u64)> {
    let version = *elst.first()?;
    let count = be_u32(elst, 4)? as usize;
    let entry_len = if version == 1 { 20 } else { 12 };
    (0..count).find_map(|i| {
        let at = 8 + i * entry_len;
        let (duration, media_time) = if version == 1 {
            (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64)
        } else {
            (
                be_u32(elst, at)? as u64,
                be_u32(elst, at + 4)? as i32 as i64,
            )
        };
        (media_time >= 0).then_some((duration, media_time as u64))
    })
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// The layout of pocketsphinx's cards_001.m4a: 1024 priming samples, 1.096 s shown.
    fn sample_file(elst_entries: &[(u32, i32)]) -> Vec<u8> {
        let mut mvhd = vec![0u8; 20];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        let mut mdhd = vec![0u8; 20];
        mdhd[12..16].copy_from_slice(&16_000u32.to_be_bytes());
        mdhd[16..20].copy_from_slice(&18_550u32.to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"soun");
        let mut elst = vec![0u8; 4];
        elst.extend_from_slice(&(elst_entries.len() as u32).to_be_bytes());
        for (duration, media_time) in elst_entries {
            elst.extend_from_slice(&duration.to_be_bytes());
            elst.extend_from_slice(&media_time.to_be_bytes());
            elst.extend_from_slice(&[0, 1, 0, 0]);
        }
        let mdia = [mp4_box(b"mdhd", &mdhd), mp4_box(b"hdlr", &hdlr)].concat();
        let trak = [
            mp4_box(b"edts", &mp4_box(b"elst", &elst)),
            mp4_box(b"mdia", &mdia),
        ]
        .concat();
        let moov = [mp4_box(b"mvhd", &mvhd), mp4_box(b"trak", &trak)].concat();
        [mp4_box(b"ftyp", b"M4A \0\0\0\0"), mp4_box(b"moov", &moov)].concat()
    }

    #[test]
    fn priming_and_padding_are_cut() {
        let timing = AudioTiming::parse(&sample_file(&[(1096, 1024)])).unwrap();
        let mut samples: Vec<f32> = (0..19 * 1024).map(|i| i as f32).collect();
        timing.apply(&mut samples, 16_000);
        // 18550 media samples, minus 1024 priming: 17526 (shorter than the 17536 edit).
        assert_eq!(samples.len(), 17_526);
        assert_eq!(samples[0], 1024.0);
    }

    #[test]
    fn empty_edits_are_skipped_and_rates_converted() {
        let timing = AudioTiming::parse(&sample_file(&[(500, -1), (1000, 2048)])).unwrap();
        let mut samples: Vec<f32> = (0..40_000).map(|i| i as f32).collect();
        timing.apply(&mut samples, 32_000); // decoded at twice the media timescale
        assert_eq!(samples[0], 4096.0);
        assert_eq!(samples.len(), 32_000);
    }

    #[test]
    fn reading_the_file_finds_the_same_timing() {
        let mut bytes = sample_file(&[(1096, 1024)]);
        // An mdat before the moov, as many encoders write them, is skipped over.
        let mdat = mp4_box(b"mdat", &[7u8; 5000]);
        bytes.splice(16..16, mdat); // after the 16-byte ftyp
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.m4a");
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(AudioTiming::read(&file), AudioTiming::parse(&bytes));
        assert!(AudioTiming::read(&file).is_some());
    }

    #[test]
    fn non_mp4_and_truncated_input_give_none() {
        assert_eq!(AudioTiming::parse(b"RIFF....WAVEfmt "), None);
        let file = sample_file(&[(1096, 1024)]);
        for cut in [0, 10, 40, file.len() - 1] {
            assert_eq!(AudioTiming::parse(&file[..cut]), None, "cut {cut}");
        }
    }
}
