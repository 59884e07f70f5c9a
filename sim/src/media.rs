//! Recording files: a short, valid WAV (8 kHz, 16-bit PCM, mono or stereo) or MP3 (silent MPEG-1 Layer III
//! frames), generated in code. The content is a 440 Hz tone so a transcription stub or a player sees real
//! audio; the length is fixed (1 s) so the files stay small whatever the call's duration.
//!
//! [`recording`] (re-exported as [`crate::recording_bytes`]) is exactly what a download of a saved
//! recording returns, so a test can check a stored copy byte for byte; [`duration_secs`] is how long the
//! transcription stub says an upload lasts. Everything here is a pure function of its arguments.

/// Samples per second of generated audio (the PSTN rate).
const RATE: u32 = 8_000;

/// A 1-second WAV file. `channels` is 1 (`single`) or 2 (`dual`: the tone on channel A, silence on B).
pub fn wav(channels: u16) -> Vec<u8> {
    let channels = channels.clamp(1, 2);
    let frames = RATE;
    let block_align = 2 * u32::from(channels);
    let data_len = frames * block_align;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * block_align).to_le_bytes()); // byte rate
    out.extend_from_slice(&(block_align as u16).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..frames {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / f64::from(RATE);
        let sample = (phase.sin() * 8_000.0) as i16;
        out.extend_from_slice(&sample.to_le_bytes());
        if channels == 2 {
            out.extend_from_slice(&0i16.to_le_bytes());
        }
    }
    out
}

/// About one second of silent MPEG-1 Layer III (128 kbit/s, 44.1 kHz, mono): 38 frames of 417 bytes whose
/// side information is all zero, which every decoder plays as silence.
pub fn mp3() -> Vec<u8> {
    const FRAME_LEN: usize = 417; // 144 * 128000 / 44100, no padding
    const HEADER: [u8; 4] = [0xFF, 0xFB, 0x90, 0xC4]; // sync, MPEG-1, L3, no CRC, 128k, 44.1k, mono
    let mut out = Vec::with_capacity(FRAME_LEN * 38);
    for _ in 0..38 {
        out.extend_from_slice(&HEADER);
        out.resize(out.len() + FRAME_LEN - HEADER.len(), 0);
    }
    out
}

/// The exact bytes a download of a saved recording returns: [`mp3`] for `format` `mp3`, else [`wav`] (the
/// only other `record_format` Telnyx accepts) with 2 channels for `channels` `dual`, 1 otherwise.
pub fn recording(format: &str, channels: &str) -> Vec<u8> {
    match format {
        "mp3" => mp3(),
        _ => wav(if channels == "dual" { 2 } else { 1 }),
    }
}

/// Seconds of audio in `bytes`: from the header for a PCM WAV file (`data` length / byte rate), else the
/// length at 128 kbit/s (the rate of [`mp3`]). Never fails: odd input just gets the 128 kbit/s estimate.
pub fn duration_secs(bytes: &[u8]) -> f64 {
    let u32_at = |i: usize| bytes.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        if let (Some(rate), Some(data)) = (u32_at(28).filter(|r| *r > 0), u32_at(40)) {
            return f64::from(data) / f64::from(rate);
        }
    }
    bytes.len() as f64 * 8.0 / 128_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_is_consistent() {
        for ch in [1u16, 2] {
            let w = wav(ch);
            assert_eq!(&w[0..4], b"RIFF");
            assert_eq!(&w[8..16], b"WAVEfmt ");
            let riff = u32::from_le_bytes([w[4], w[5], w[6], w[7]]) as usize;
            assert_eq!(riff + 8, w.len());
            assert_eq!(u16::from_le_bytes([w[22], w[23]]), ch);
            let data = u32::from_le_bytes([w[40], w[41], w[42], w[43]]) as usize;
            assert_eq!(data + 44, w.len());
            assert_eq!(data, 8_000 * 2 * usize::from(ch));
        }
    }

    #[test]
    fn recording_bytes_and_durations() {
        assert_eq!(recording("wav", "dual"), wav(2));
        assert_eq!(recording("wav", "single"), wav(1));
        assert_eq!(recording("mp3", "dual"), mp3());
        assert!((duration_secs(&wav(2)) - 1.0).abs() < 1e-9);
        assert!((duration_secs(&wav(1)) - 1.0).abs() < 1e-9);
        assert!((duration_secs(&mp3()) - 0.990_375).abs() < 1e-9);
        assert_eq!(duration_secs(b""), 0.0);
    }

    #[test]
    fn mp3_frames_are_synced() {
        let m = mp3();
        assert_eq!(m.len() % 417, 0);
        assert!(m.chunks(417).all(|f| f[0] == 0xFF && f[1] & 0xE0 == 0xE0));
    }
}
