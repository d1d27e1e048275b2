//! Output writers: txt, srt, vtt, json, tsv.
