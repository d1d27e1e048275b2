//! Whisper models: CTranslate2 model.bin, config.json, tokenizer, installation.
