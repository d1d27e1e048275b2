//! Output writers: txt, srt, vtt, json, tsv, following openai-whisper's writers
//! (`whisper/utils.py`) so files are interchangeable with theirs.
//!
//! Conventions shared by all formats: times are rounded to whole milliseconds with Python's
//! `round` (ties to even), negative or NaN times are written as 0; segment text is trimmed
//! and line breaks inside it become spaces, so one segment never spans several
//! lines/cues. srt/vtt also turn `-->` inside text into `->` (as whisper does), tsv turns
//! tabs into spaces.

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::str::FromStr;

use serde::Serialize;

use crate::transcript::{Segment, Transcript, Word};

/// One output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Txt,
    Srt,
    Vtt,
    Json,
    Tsv,
}

impl Format {
    /// Every format, in the order `all` expands to.
    pub const ALL: [Format; 5] = [
        Format::Txt,
        Format::Srt,
        Format::Vtt,
        Format::Json,
        Format::Tsv,
    ];

    /// File extension (without dot), also the name `FromStr` accepts.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Json => "json",
            Format::Tsv => "tsv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// A format name that is none of txt, srt, vtt, json, tsv (or `all` in a list).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown output format {0:?} (expected txt, srt, vtt, json, tsv or all)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.extension() == wanted)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Parses a CLI format list: `all`, one name, or a comma list such as `srt,vtt`.
/// Duplicates are dropped, order is kept; an empty list is an error.
pub fn parse_formats(list: &str) -> Result<Vec<Format>, UnknownFormat> {
    let mut formats: Vec<Format> = Vec::new();
    for name in list.split(',') {
        let expanded: Vec<Format> = if name.trim().eq_ignore_ascii_case("all") {
            Format::ALL.to_vec()
        } else {
            vec![name.parse()?]
        };
        for f in expanded {
            if !formats.contains(&f) {
                formats.push(f);
            }
        }
    }
    Ok(formats)
}

/// Writes `t` in `format` to `w`.
pub fn write(format: Format, t: &Transcript, w: &mut dyn Write) -> io::Result<()> {
    w.write_all(render(format, t).as_bytes())
}

/// `t` rendered in `format`.
pub fn render(format: Format, t: &Transcript) -> String {
    match format {
        Format::Txt => render_txt(t),
        Format::Srt => render_srt(t),
        Format::Vtt => render_vtt(t),
        Format::Json => render_json(t),
        Format::Tsv => render_tsv(t),
    }
}

fn render_txt(t: &Transcript) -> String {
    let mut out = String::new();
    for s in &t.segments {
        out.push_str(&one_line(&s.text));
        out.push('\n');
    }
    out
}

fn render_srt(t: &Transcript) -> String {
    render_cues(t, "", true, (true, ','))
}

/// WebVTT as whisper writes it: hours shown only when non-zero (`01:02.500`), which the
/// WebVTT grammar allows.
fn render_vtt(t: &Transcript) -> String {
    render_cues(t, "WEBVTT\n\n", false, (false, '.'))
}

/// Subtitle cues after `header`: each `start --> end`, its text and a blank line, with
/// the cue number before it if `numbered`. `(always_hours, marker)` are [`timestamp`]'s.
fn render_cues(
    t: &Transcript,
    header: &str,
    numbered: bool,
    (always_hours, marker): (bool, char),
) -> String {
    let mut out = String::from(header);
    for (i, s) in t.segments.iter().enumerate() {
        if numbered {
            let _ = writeln!(out, "{}", i + 1);
        }
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            timestamp(s.start, always_hours, marker),
            timestamp(s.end, always_hours, marker),
            cue_text(s)
        );
    }
    out
}

fn render_tsv(t: &Transcript) -> String {
    let mut out = String::from("start\tend\ttext\n");
    for s in &t.segments {
        let _ = writeln!(
            out,
            "{}\t{}\t{}",
            millis(s.start),
            millis(s.end),
            one_line(&s.text).replace('\t', " ")
        );
    }
    out
}

/// faster-whisper's result as JSON: transcript-level fields, the full text, and every
/// segment with its decoding statistics (`words` is null without word timestamps).
/// Structs rather than `json!` so keys keep this order (serde_json's map would sort them).
fn render_json(t: &Transcript) -> String {
    #[derive(Serialize)]
    struct JsonTranscript<'a> {
        language: &'a str,
        language_probability: f64,
        duration: f64,
        text: String,
        segments: Vec<JsonSegment<'a>>,
    }
    #[derive(Serialize)]
    struct JsonSegment<'a> {
        id: usize,
        seek: usize,
        start: f64,
        end: f64,
        text: &'a str,
        tokens: &'a [u32],
        temperature: f64,
        avg_logprob: f64,
        compression_ratio: f64,
        no_speech_prob: f64,
        words: Option<&'a [Word]>,
    }
    let value = JsonTranscript {
        language: &t.language,
        language_probability: t.language_probability,
        duration: t.duration,
        text: t.text(),
        segments: t
            .segments
            .iter()
            .map(|s| JsonSegment {
                id: s.id,
                seek: s.seek,
                start: s.start,
                end: s.end,
                text: &s.text,
                tokens: &s.tokens,
                temperature: s.temperature,
                avg_logprob: s.avg_logprob,
                compression_ratio: s.compression_ratio,
                no_speech_prob: s.no_speech_prob,
                words: s.words.as_deref(),
            })
            .collect(),
    };
    // Serialising plain structs of numbers and strings cannot fail (non-finite floats
    // become null).
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}

/// Segment text for an srt/vtt cue: one line, and no `-->` that would end the timing line.
fn cue_text(s: &Segment) -> String {
    one_line(&s.text).replace("-->", "->")
}

/// Trimmed, with every run of line breaks replaced by one space.
fn one_line(text: &str) -> String {
    let trimmed = text.trim();
    let mut out = String::with_capacity(trimmed.len());
    let mut in_break = false;
    for c in trimmed.chars() {
        if c == '\n' || c == '\r' {
            if !in_break {
                out.push(' ');
            }
            in_break = true;
        } else {
            out.push(c);
            in_break = false;
        }
    }
    out
}

/// Seconds to whole milliseconds: Python `round(seconds * 1000)` (ties to even); negative
/// and NaN become 0.
fn millis(seconds: f64) -> u64 {
    let ms = (seconds * 1000.0).round_ties_even();
    if ms.is_nan() || ms <= 0.0 {
        0
    } else {
        ms as u64
    }
}

/// `HH:MM:SS<marker>mmm`; without `always_hours` the `HH:` is left out when it is 0.
fn timestamp(seconds: f64, always_hours: bool, marker: char) -> String {
    let ms = millis(seconds);
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (secs, ms) = (rest / 1000, rest % 1000);
    if always_hours || hours > 0 {
        format!("{hours:02}:{minutes:02}:{secs:02}{marker}{ms:03}")
    } else {
        format!("{minutes:02}:{secs:02}{marker}{ms:03}")
    }
}
