//! A bounded load test on 127.0.0.1: 50 clients at once, mixed clip lengths and formats, some
//! corrupt, against `aiec serve --max-concurrent 2 --queue 14` with tiny.en. The first
//! wave must overflow (429 with Retry-After, OpenAI-shaped); clients then retry after the
//! advertised delay. In the end every valid request has `aiec run`'s text, every corrupt one
//! a 400, the server is alive, its peak RSS is under the bound, and the throughput in
//! audio-seconds per second is printed.

#[allow(dead_code)]
mod serve_support;

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serve_support::{dev_clip, jfk, run_texts, Multipart, Response, Server};

const MODEL: &str = "tiny.en";
const CLIENTS: usize = 50;
/// tiny.en in f32, the runtime, at most 16 uploads of < 1 MB with their decode buffers and
/// two decodings' activations: measured 599 MiB. The bound leaves room for allocator noise
/// but not for memory that grows with the 50 clients (each would add tens of MiB).
const PEAK_RSS_BOUND_MIB: f64 = 900.0;

#[derive(Clone)]
enum Input {
    Valid {
        path: PathBuf,
        text: String,
        seconds: f64,
    },
    Corrupt {
        name: &'static str,
        bytes: Vec<u8>,
    },
}

fn attempt(server_addr: std::net::SocketAddr, input: &Input) -> Response {
    let form = match input {
        Input::Valid { path, .. } => Multipart::new().file_path(path),
        Input::Corrupt { name, bytes } => Multipart::new().file(name, bytes),
    }
    .text("model", MODEL);
    serve_support::exchange(
        server_addr,
        &form.request("/v1/audio/transcriptions", server_addr),
    )
    .expect("every request gets an HTTP answer")
}

#[test]
fn fifty_concurrent_clients_with_corrupt_uploads_and_overflow() {
    let clips: Vec<(PathBuf, f64)> = vec![
        (dev_clip("asterisk/agent-loggedoff.wav"), 1.457),
        (dev_clip("asterisk/activated.wav"), 1.064),
        (
            dev_clip("pocketsphinx/sense_and_sensibility_01_austen_64kb-0880.flac"),
            2.99,
        ),
        (
            dev_clip("pocketsphinx/sense_and_sensibility_01_austen_64kb-0890.ogg"),
            5.3,
        ),
        (dev_clip("pocketsphinx/cards_001.m4a"), 1.095),
        (jfk(), 11.0),
    ];
    let paths: Vec<&std::path::Path> = clips.iter().map(|(p, _)| p.as_path()).collect();
    let texts = run_texts(MODEL, &paths, &[]);
    let jfk_bytes = std::fs::read(jfk()).unwrap();
    let corrupt = [
        Input::Corrupt {
            name: "noise.wav",
            bytes: (0..20_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        },
        Input::Corrupt {
            name: "header-only.wav",
            bytes: jfk_bytes[..44].to_vec(),
        },
        Input::Corrupt {
            name: "empty.mp3",
            bytes: Vec::new(),
        },
        Input::Corrupt {
            name: "text.ogg",
            bytes: b"this is not an ogg stream at all".repeat(50),
        },
    ];
    // Every fifth request is corrupt; the rest cycle through the clips.
    let inputs: Vec<Input> = (0..CLIENTS)
        .map(|i| {
            if i % 5 == 4 {
                corrupt[(i / 5) % corrupt.len()].clone()
            } else {
                let k = i % clips.len();
                Input::Valid {
                    path: clips[k].0.clone(),
                    text: texts[k].clone(),
                    seconds: clips[k].1,
                }
            }
        })
        .collect();

    let server = Server::start(&["--model", MODEL, "--max-concurrent", "2", "--queue", "14"]);
    let addr = server.addr;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let started = Instant::now();
    let handles: Vec<_> = inputs
        .iter()
        .cloned()
        .map(|input| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut response = attempt(addr, &input);
                let first_status = response.status;
                let deadline = Instant::now() + Duration::from_secs(150);
                while response.status == 429 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_secs(retry_after(&response)));
                    response = attempt(addr, &input);
                }
                (input, first_status, response)
            })
        })
        .collect();
    let mut first_statuses = Vec::new();
    let mut audio_seconds = 0.0;
    for h in handles {
        let (input, first_status, r) = h.join().unwrap();
        first_statuses.push(first_status);
        match input {
            Input::Valid {
                text,
                seconds,
                path,
            } => {
                assert_eq!(r.status, 200, "{}: {}", path.display(), r.text());
                assert_eq!(
                    r.json()["text"].as_str().unwrap(),
                    text,
                    "{}",
                    path.display()
                );
                audio_seconds += seconds;
            }
            Input::Corrupt { name, .. } => {
                assert_eq!(
                    r.assert_openai_error(400, Some("file")),
                    "invalid_audio",
                    "{name}"
                );
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let first_overflow = first_statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        first_overflow > 0,
        "50 clients against 16 places must overflow: {first_statuses:?}"
    );
    assert!(
        first_statuses.iter().all(|s| [200, 400, 429].contains(s)),
        "{first_statuses:?}"
    );
    // The request log: one `transcribed` line per valid request, with its numbers.
    let logs = server.logs();
    let overflowed = logs.matches("code=\"queue_full\"").count();
    let served: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" transcribed "))
        .collect();
    let valid = inputs
        .iter()
        .filter(|i| matches!(i, Input::Valid { .. }))
        .count();
    assert_eq!(served.len(), valid, "{logs}");
    for field in [
        "request_id=",
        "model=tiny.en",
        "audio_seconds=",
        "realtime_factor=",
        "status=200",
    ] {
        assert!(
            served.iter().all(|l| l.contains(field)),
            "{field} missing: {served:?}"
        );
    }
    let served = served.len();
    assert_eq!(server.get("/health").status, 200, "alive after the load");
    let peak = server.peak_rss_mib();
    println!(
        "load: {CLIENTS} clients, {first_overflow} refused at first (429; {overflowed} 429s with retries), {served} transcriptions \
         of {audio_seconds:.1} s audio in {wall:.1} s = {:.1} audio-s/s; peak RSS {peak:.0} MiB",
        audio_seconds / wall
    );
    assert!(peak < PEAK_RSS_BOUND_MIB, "peak RSS {peak:.0} MiB");
}

/// Retry-After of a 429, after checking that the answer is OpenAI-shaped.
fn retry_after(r: &Response) -> u64 {
    assert_eq!(r.assert_openai_error(429, None), "queue_full");
    let after: u64 = r
        .header("retry-after")
        .expect("Retry-After on 429")
        .parse()
        .unwrap();
    assert!(after >= 1);
    after
}
