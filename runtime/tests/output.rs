//! Output writers against hand-written golden files (openai-whisper's writer conventions).

use aiec_runtime::output::{parse_formats, render, write, Format, UnknownFormat};
use aiec_runtime::transcript::{Segment, Transcript, Word};

fn segment(id: usize, seek: usize, start: f64, end: f64, text: &str) -> Segment {
    Segment {
        id,
        seek,
        start,
        end,
        text: text.to_string(),
        tokens: vec![50364 + id as u32, 400, 370],
        temperature: 0.0,
        avg_logprob: -0.25,
        compression_ratio: 1.5,
        no_speech_prob: 0.0125,
        words: None,
    }
}

/// Three segments that exercise the edge cases: ties at half a millisecond (1.0625 s and
/// 1.1875 s are exact in binary; Python's round gives 1062 and 1188), a carry into the
/// minutes (59.9996 s), hours > 0, and text holding `-->`, a tab, line breaks and padding.
fn transcript() -> Transcript {
    let mut second = segment(1, 0, 1.1875, 59.9996, " ask not -->\twhat\nyour country ");
    second.words = Some(vec![Word {
        start: 1.1875,
        end: 1.5,
        word: " ask".to_string(),
        probability: 0.875,
    }]);
    second.temperature = 0.2;
    Transcript {
        language: "en".to_string(),
        language_probability: 0.96875,
        duration: 3726.5,
        segments: vec![
            segment(0, 0, 0.0, 1.0625, " And so, my fellow Americans,"),
            second,
            segment(2, 372_000, 3725.123, 3726.0, "  can do for you.\r\n"),
        ],
    }
}

#[test]
fn txt_is_one_trimmed_line_per_segment() {
    assert_eq!(
        render(Format::Txt, &transcript()),
        "And so, my fellow Americans,\n\
         ask not -->\twhat your country\n\
         can do for you.\n"
    );
}

#[test]
fn srt_golden() {
    assert_eq!(
        render(Format::Srt, &transcript()),
        "1\n00:00:00,000 --> 00:00:01,062\nAnd so, my fellow Americans,\n\n\
         2\n00:00:01,188 --> 00:01:00,000\nask not ->\twhat your country\n\n\
         3\n01:02:05,123 --> 01:02:06,000\ncan do for you.\n\n"
    );
}

#[test]
fn vtt_golden_hours_only_when_needed() {
    assert_eq!(
        render(Format::Vtt, &transcript()),
        "WEBVTT\n\n\
         00:00.000 --> 00:01.062\nAnd so, my fellow Americans,\n\n\
         00:01.188 --> 01:00.000\nask not ->\twhat your country\n\n\
         01:02:05.123 --> 01:02:06.000\ncan do for you.\n\n"
    );
}

#[test]
fn tsv_golden_integer_milliseconds() {
    assert_eq!(
        render(Format::Tsv, &transcript()),
        "start\tend\ttext\n\
         0\t1062\tAnd so, my fellow Americans,\n\
         1188\t60000\task not --> what your country\n\
         3725123\t3726000\tcan do for you.\n"
    );
}

#[test]
fn json_carries_every_field() {
    let t = transcript();
    let text = render(Format::Json, &t);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["language"], "en");
    assert_eq!(v["language_probability"], 0.96875);
    assert_eq!(v["duration"], 3726.5);
    assert_eq!(
        v["text"],
        "And so, my fellow Americans, ask not -->\twhat\nyour country   can do for you."
    );
    let segments = v["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 3);
    let s = &segments[1];
    assert_eq!(s["id"], 1);
    assert_eq!(s["seek"], 0);
    assert_eq!(s["start"], 1.1875);
    assert_eq!(s["end"], 59.9996);
    assert_eq!(s["text"], " ask not -->\twhat\nyour country ");
    assert_eq!(s["tokens"], serde_json::json!([50365, 400, 370]));
    assert_eq!(s["temperature"], 0.2);
    assert_eq!(s["avg_logprob"], -0.25);
    assert_eq!(s["compression_ratio"], 1.5);
    assert_eq!(s["no_speech_prob"], 0.0125);
    assert_eq!(
        s["words"],
        serde_json::json!([{"start": 1.1875, "end": 1.5, "word": " ask", "probability": 0.875}])
    );
    assert!(segments[0]["words"].is_null());
    assert_eq!(segments[2]["seek"], 372_000);
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys.len(), 11, "{keys:?}");
    assert!(text.ends_with("}\n"));
    // Keys in faster-whisper's order, not sorted.
    let order = [
        "\"language\"",
        "\"language_probability\"",
        "\"duration\"",
        "\"text\"",
        "\"segments\"",
        "\"id\"",
        "\"seek\"",
        "\"start\"",
        "\"end\"",
        "\"tokens\"",
        "\"temperature\"",
        "\"avg_logprob\"",
        "\"compression_ratio\"",
        "\"no_speech_prob\"",
        "\"words\"",
    ];
    let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn negative_and_nan_times_are_clamped_to_zero() {
    let t = Transcript {
        language: "en".into(),
        language_probability: 1.0,
        duration: 1.0,
        segments: vec![segment(0, 0, -0.02, f64::NAN, "x")],
    };
    assert_eq!(
        render(Format::Srt, &t),
        "1\n00:00:00,000 --> 00:00:00,000\nx\n\n"
    );
    assert_eq!(render(Format::Tsv, &t), "start\tend\ttext\n0\t0\tx\n");
}

#[test]
fn empty_transcript_renders_headers_only() {
    let t = Transcript {
        language: "en".into(),
        language_probability: 0.5,
        duration: 0.0,
        segments: vec![],
    };
    assert_eq!(render(Format::Txt, &t), "");
    assert_eq!(render(Format::Srt, &t), "");
    assert_eq!(render(Format::Vtt, &t), "WEBVTT\n\n");
    assert_eq!(render(Format::Tsv, &t), "start\tend\ttext\n");
    let v: serde_json::Value = serde_json::from_str(&render(Format::Json, &t)).unwrap();
    assert_eq!(v["text"], "");
    assert_eq!(v["segments"], serde_json::json!([]));
}

#[test]
fn write_streams_what_render_returns() {
    let t = transcript();
    for format in Format::ALL {
        let mut out: Vec<u8> = Vec::new();
        write(format, &t, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), render(format, &t));
    }
}

#[test]
fn format_names_parse() {
    assert_eq!("txt".parse::<Format>().unwrap(), Format::Txt);
    assert_eq!(" SRT ".parse::<Format>().unwrap(), Format::Srt);
    assert_eq!("vtt".parse::<Format>().unwrap(), Format::Vtt);
    assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
    assert_eq!("tsv".parse::<Format>().unwrap(), Format::Tsv);
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        assert_eq!(f.extension(), f.to_string());
    }
    let err = "docx".parse::<Format>().unwrap_err();
    assert_eq!(err, UnknownFormat("docx".into()));
    assert_eq!(
        err.to_string(),
        "unknown output format \"docx\" (expected txt, srt, vtt, json, tsv or all)"
    );
}

#[test]
fn format_lists_parse() {
    assert_eq!(parse_formats("all").unwrap(), Format::ALL.to_vec());
    assert_eq!(
        parse_formats("srt,vtt,srt").unwrap(),
        vec![Format::Srt, Format::Vtt]
    );
    assert_eq!(
        parse_formats("json, ALL").unwrap(),
        vec![
            Format::Json,
            Format::Txt,
            Format::Srt,
            Format::Vtt,
            Format::Tsv
        ]
    );
    assert!(parse_formats("").is_err());
    assert!(parse_formats("srt,").is_err());
    assert_eq!(
        parse_formats("srt,mp4").unwrap_err(),
        UnknownFormat("mp4".into())
    );
}
