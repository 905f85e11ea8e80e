//! The embedded synthesiser: espeak-ng's command line (Debian `espeak-ng`),
//! which has `hi`, `mr` and `en` voices and runs offline in ~10-15 ms a
//! sentence. It reads Devanagari with Indian sounds and Latin with English
//! ones, so Hindi, Hinglish and Marathi reach it in Devanagari: the
//! [`Synthesizer`] implementation passes their text through
//! [`translit::for_speech`] first ("teen sau pachchees rupaye" would come out
//! as English "teen sow patches roo-pay"; "तीन सौ पच्चीस रुपये" is Hindi).
//! Digits are left to the voice, which reads them as a number in Hindi or
//! Marathi ("325" as "तीन सौ पच्चीस").

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, SampleRate, SpeechError, Synthesizer};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::audio::{parse_wav, resample};
use crate::translit;

/// Longest text handed to one espeak-ng run (a reply is a few sentences).
pub const MAX_TEXT_CHARS: usize = 2_000;

/// espeak-ng through its command line.
#[derive(Debug, Clone)]
pub struct Espeak {
    /// The program (`espeak-ng` on the PATH unless configured).
    pub program: PathBuf,
    /// Words per minute; espeak's default 175 is hurried on a phone line.
    pub words_per_minute: u32,
    /// The longest one synthesis may take.
    pub timeout: Duration,
}

impl Default for Espeak {
    fn default() -> Self {
        Espeak { program: PathBuf::from("espeak-ng"), words_per_minute: 150, timeout: Duration::from_secs(5) }
    }
}

impl Espeak {
    /// The voice espeak-ng uses for `lang`: Hinglish is spoken with the
    /// Hindi voice (its text must be transliterated to Devanagari first).
    pub fn voice(lang: Lang) -> &'static str {
        match lang {
            Lang::Hi | Lang::HiEn => "hi",
            Lang::Mr => "mr",
            Lang::En => "en",
        }
    }

    /// Whether the program runs here, with its version line.
    pub async fn probe(&self) -> Result<String, SpeechError> {
        let output = tokio::time::timeout(self.timeout, Command::new(&self.program).arg("--version").output())
            .await
            .map_err(|_| SpeechError::Timeout { after_ms: self.timeout.as_millis() as u64 })?
            .map_err(|e| SpeechError::Unavailable(format!("{}: {e}", self.program.display())))?;
        if !output.status.success() {
            return Err(SpeechError::Unavailable(format!("{} --version failed", self.program.display())));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Speaks `text` with `voice` and returns the audio at espeak-ng's own
    /// rate (22,050 Hz) as mono samples.
    pub async fn render(&self, text: &str, voice: &str) -> Result<(u32, Vec<i16>), SpeechError> {
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(SpeechError::Unsupported(format!("text longer than {MAX_TEXT_CHARS} characters")));
        }
        let run = async {
            let mut child = Command::new(&self.program)
                .args(["-v", voice, "-s", &self.words_per_minute.to_string(), "--stdout"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| SpeechError::Unavailable(format!("{}: {e}", self.program.display())))?;
            let mut stdin = child.stdin.take().ok_or_else(|| SpeechError::Unavailable("no stdin".into()))?;
            stdin.write_all(text.as_bytes()).await.map_err(|e| SpeechError::Unavailable(e.to_string()))?;
            drop(stdin);
            child.wait_with_output().await.map_err(|e| SpeechError::Unavailable(e.to_string()))
        };
        let output = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| SpeechError::Timeout { after_ms: self.timeout.as_millis() as u64 })??;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(SpeechError::Unavailable(format!("espeak-ng failed: {}", stderr.trim())));
        }
        let wav = parse_wav(&output.stdout).map_err(|e| SpeechError::BadResponse(e.to_string()))?;
        Ok((wav.sample_rate, wav.samples))
    }
}

#[async_trait]
impl Synthesizer for Espeak {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    async fn synthesize(&self, text: &str, language: Lang, sample_rate: SampleRate) -> Result<Pcm16, SpeechError> {
        let spoken = translit::for_speech(text, language);
        let (rate, samples) = self.render(&spoken, Espeak::voice(language)).await?;
        Ok(Pcm16 { sample_rate, samples: resample(&samples, rate, sample_rate.hz()) })
    }

    async fn check(&self) -> Result<(), SpeechError> {
        self.probe().await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What espeak-ng makes of `text` as phonemes (`-x -q`), to check what
    /// a voice says without listening; `None` when espeak-ng is not here.
    async fn phonemes(text: &str, voice: &str) -> Option<String> {
        let output = Command::new("espeak-ng").args(["-v", voice, "-x", "-q", text]).output().await.ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    #[tokio::test]
    async fn hinglish_is_spoken_with_the_hindi_voice_in_devanagari() {
        let espeak = Espeak::default();
        if espeak.probe().await.is_err() {
            eprintln!("espeak-ng is not installed: skipped");
            return;
        }
        let hinglish =
            espeak.synthesize("Total teen sau pachchees rupaye.", Lang::HiEn, SampleRate::Hz8000).await.unwrap();
        let devanagari = espeak.synthesize("टोटल तीन सौ पच्चीस रुपये.", Lang::Hi, SampleRate::Hz8000).await.unwrap();
        assert_eq!(hinglish, devanagari);
        assert!(hinglish.duration_ms() > 500, "{} ms", hinglish.duration_ms());
        // English stays English.
        let english = espeak.synthesize("three hundred rupees", Lang::En, SampleRate::Hz8000).await.unwrap();
        assert_ne!(english.samples, hinglish.samples);
    }

    #[tokio::test]
    async fn amounts_are_spoken_in_indian_number_words() {
        let Some(said) = phonemes(
            &translit::for_speech(
                &mangwale_voice::spell::rupees(mangwale_voice::catalog::Paise(32_500), Lang::HiEn),
                Lang::HiEn,
            ),
            "hi",
        )
        .await
        else {
            eprintln!("espeak-ng is not installed: skipped");
            return;
        };
        // "t'i:n s'O: p@c:'i:s r'Upj,e:": teen sau pachchees rupaye, in Hindi
        // phonemes, without the "(en)" switch espeak makes for Latin text.
        assert!(!said.contains("(en)"), "{said}");
        assert!(said.contains("t'i:n") && said.contains("s'O:") && said.contains("c:'i:s"), "{said}");
        // Digits in a Hindi sentence are read as a Hindi number too.
        let digits = phonemes("325 रुपये", "hi").await.unwrap_or_default();
        assert!(digits.contains("t'i:n") && !digits.contains("(en)"), "{digits}");
        // Marathi amounts, spelled by the dialog in Devanagari.
        let marathi =
            phonemes(&mangwale_voice::spell::rupees(mangwale_voice::catalog::Paise(32_500), Lang::Mr), "mr").await;
        assert!(marathi.is_some_and(|m| !m.contains("(en)") && m.contains("t'i:n")));
    }

    #[tokio::test]
    async fn a_missing_program_is_unavailable_not_a_panic() {
        let espeak = Espeak { program: PathBuf::from("/nonexistent/espeak-ng"), ..Espeak::default() };
        let err = espeak.synthesize("नमस्ते", Lang::Hi, SampleRate::Hz8000).await.unwrap_err();
        assert!(matches!(err, SpeechError::Unavailable(_)), "{err:?}");
        assert!(espeak.probe().await.is_err());
    }
}
