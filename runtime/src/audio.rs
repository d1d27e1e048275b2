//! Audio decoding to 16 kHz mono.
