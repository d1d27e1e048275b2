//! Whisper-exact log-mel spectrogram.
