//! On-disk formats of the multi-pass mode, versioned and checksummed.
//!
//! Every file is framed the same way:
//!
//! ```text
//! magic (8 bytes, one per kind) | version u32 | fingerprint u64 |
//! header length u32 | header (JSON) | body | xxh3-64 of all bytes before it | "CMHEND\0\0"
//! ```
//!
//! All integers are little-endian. The fingerprint is
//! [`Config::signature_fingerprint`](super::Config::signature_fingerprint) (or, for
//! decisions, [`decision_fingerprint`]): a file made with other settings is refused, as
//! is a file of another kind, another version, a truncated or damaged one (checksum).
//! Writers here produce bytes; the caller writes them atomically.
//!
//! Bodies:
//! - signatures (`.sig`, one per input file): per document, in input order,
//!   `chars u32 | quality f32 | flags u32 (1: has a signature) | hashes u32 x H`.
//! - band entries (`.band`, one per input file and band): `(band hash u64, record u32)`
//!   sorted.
//! - groups (`.groups`, one per band): buckets of two or more, each
//!   `count u32 | packed keys u64 x count`, keys ascending.
//! - decisions (`.dec`, one per input file): `record u32 | cluster u64 | size u32 |
//!   survivor u8`, sorted by record.

use super::cluster::Decision;
use super::{Config, DocKey, SigRecord};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Format version written and accepted.
pub const VERSION: u32 = 1;
const TRAILER: &[u8; 8] = b"CMHEND\0\0";

/// Magic of signature files.
pub const SIG_MAGIC: &[u8; 8] = b"CMHSIG\0\0";
/// Magic of band entry files.
pub const BAND_MAGIC: &[u8; 8] = b"CMHBND\0\0";
/// Magic of group files.
pub const GROUP_MAGIC: &[u8; 8] = b"CMHGRP\0\0";
/// Magic of decision files.
pub const DECISION_MAGIC: &[u8; 8] = b"CMHDEC\0\0";

/// A bad intermediate file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not what it should be.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn invalid(path: &Path, message: impl Into<String>) -> FileError {
    FileError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Frames a file: magic, version, fingerprint, JSON header, body, checksum.
pub fn encode<H: Serialize>(magic: &[u8; 8], fingerprint: u64, header: &H, body: &[u8]) -> Vec<u8> {
    encode_versioned(magic, VERSION, fingerprint, header, body)
}

/// Frames a file of another format family (such as the decontamination index) with its
/// own version number; read back with [`decode_unchecked`].
pub fn encode_versioned<H: Serialize>(
    magic: &[u8; 8],
    version: u32,
    fingerprint: u64,
    header: &H,
    body: &[u8],
) -> Vec<u8> {
    let header = serde_json::to_vec(header).expect("headers serialize");
    let mut out = Vec::with_capacity(40 + header.len() + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    let sum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(TRAILER);
    out
}

/// Checks a framed file's magic, version, end marker and checksum, and returns its
/// fingerprint (unchecked: the caller compares it and can explain a mismatch from the
/// header), header and body.
pub fn decode_unchecked<'a, H: DeserializeOwned>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    version: u32,
    path: &Path,
) -> Result<(u64, H, &'a [u8]), FileError> {
    let body_start = check_prefix(bytes, magic, version, None, path)?;
    let fingerprint = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    let (header, body) = check_body(bytes, body_start, path)?;
    Ok((fingerprint, header, body))
}

fn check_prefix(
    bytes: &[u8],
    magic: &[u8; 8],
    expected_version: u32,
    fingerprint: Option<u64>,
    path: &Path,
) -> Result<usize, FileError> {
    if bytes.len() < 24 {
        return Err(invalid(path, "truncated (shorter than the file header)"));
    }
    if &bytes[..8] != magic {
        return Err(invalid(
            path,
            format!(
                "not a {} file (magic {:?})",
                String::from_utf8_lossy(&magic[..6]),
                String::from_utf8_lossy(&bytes[..8])
            ),
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if version != expected_version {
        return Err(invalid(
            path,
            format!("format version {version}, this build reads version {expected_version}"),
        ));
    }
    let fp = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    if let Some(fingerprint) = fingerprint
        && fp != fingerprint
    {
        return Err(invalid(
            path,
            format!(
                "made with other MinHash settings (fingerprint {fp:016x}, expected {fingerprint:016x}); \
                 rerun the earlier passes with the same --ngram/--bands/--rows/--seed or use a fresh work dir"
            ),
        ));
    }
    let hlen = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    if bytes.len() < 24 + hlen {
        return Err(invalid(path, "truncated (inside the header)"));
    }
    Ok(24 + hlen)
}

/// Checks a whole framed file and returns its header and body.
pub fn decode<'a, H: DeserializeOwned>(
    bytes: &'a [u8],
    magic: &[u8; 8],
    fingerprint: u64,
    path: &Path,
) -> Result<(H, &'a [u8]), FileError> {
    let body_start = check_prefix(bytes, magic, VERSION, Some(fingerprint), path)?;
    check_body(bytes, body_start, path)
}

fn check_body<'a, H: DeserializeOwned>(
    bytes: &'a [u8],
    body_start: usize,
    path: &Path,
) -> Result<(H, &'a [u8]), FileError> {
    if bytes.len() < body_start + 16 || &bytes[bytes.len() - 8..] != TRAILER {
        return Err(invalid(
            path,
            "truncated (no end marker): was the pass killed?",
        ));
    }
    let end = bytes.len() - 16;
    let sum = u64::from_le_bytes(bytes[end..end + 8].try_into().unwrap());
    if xxhash_rust::xxh3::xxh3_64(&bytes[..end]) != sum {
        return Err(invalid(path, "checksum mismatch: the file is damaged"));
    }
    let header = serde_json::from_slice(&bytes[24..body_start])
        .map_err(|e| invalid(path, format!("bad header: {e}")))?;
    Ok((header, &bytes[body_start..end]))
}

/// Reads and checks a framed file.
pub fn read<H: DeserializeOwned>(
    path: &Path,
    magic: &[u8; 8],
    fingerprint: u64,
) -> Result<(H, Vec<u8>), FileError> {
    let bytes = std::fs::read(path).map_err(|e| FileError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let (h, body) = decode::<H>(&bytes, magic, fingerprint, path)?;
    let body = body.to_vec();
    Ok((h, body))
}

/// Header of a signature file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigHeader {
    /// Input file number.
    pub file: u32,
    /// The input file.
    pub input: PathBuf,
    /// Its size in bytes when it was read.
    pub input_bytes: u64,
    /// Documents.
    pub docs: u32,
    /// Hashes per signature.
    pub num_hashes: u32,
}

/// Bytes per document in a signature file body.
pub fn sig_record_len(num_hashes: usize) -> usize {
    12 + 4 * num_hashes
}

/// Encodes the signatures of one input file.
pub fn encode_sigs(config: &Config, header: &SigHeader, records: &[SigRecord]) -> Vec<u8> {
    let h = config.num_hashes();
    let mut body = Vec::with_capacity(records.len() * sig_record_len(h));
    for r in records {
        body.extend_from_slice(&r.chars.to_le_bytes());
        body.extend_from_slice(&r.quality.to_le_bytes());
        body.extend_from_slice(&u32::from(r.has_signature()).to_le_bytes());
        if r.has_signature() {
            body.extend(r.hashes.iter().flat_map(|v| v.to_le_bytes()));
        } else {
            body.resize(body.len() + 4 * h, 0);
        }
    }
    encode(SIG_MAGIC, config.signature_fingerprint(), header, &body)
}

/// Decodes a signature file: its header and one record per document.
pub fn decode_sigs(
    config: &Config,
    bytes: &[u8],
    path: &Path,
) -> Result<(SigHeader, Vec<SigRecord>), FileError> {
    let h = config.num_hashes();
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    decode_records(
        bytes,
        SIG_MAGIC,
        config.signature_fingerprint(),
        path,
        sig_record_len(h),
        |header: &SigHeader| (header.num_hashes as usize == h).then_some(u64::from(header.docs)),
        |_, c| SigRecord {
            chars: u32_at(c, 0),
            quality: f32::from_bits(u32_at(c, 4)),
            hashes: if u32_at(c, 8) & 1 == 1 {
                (0..h).map(|i| u32_at(c, 12 + 4 * i)).collect()
            } else {
                Vec::new()
            },
        },
    )
}

/// Decodes a framed file whose body is a run of records of `len` bytes: as many as
/// `count` reads from the header (`None`: the header does not describe records this
/// reader can parse), each parsed by `parse`.
fn decode_records<H: DeserializeOwned, T>(
    bytes: &[u8],
    magic: &[u8; 8],
    fingerprint: u64,
    path: &Path,
    len: usize,
    count: impl Fn(&H) -> Option<u64>,
    parse: impl Fn(&H, &[u8]) -> T,
) -> Result<(H, Vec<T>), FileError> {
    let (header, body) = decode::<H>(bytes, magic, fingerprint, path)?;
    if count(&header) != Some(body.len() as u64 / len as u64) || body.len() % len != 0 {
        return Err(invalid(path, "body size does not match the header"));
    }
    let records = body.chunks_exact(len).map(|c| parse(&header, c)).collect();
    Ok((header, records))
}

/// Header of a band entry file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandHeader {
    /// Input file number.
    pub file: u32,
    /// Band number.
    pub band: u32,
    /// Entries.
    pub entries: u64,
}

/// Encodes the `(band hash, record)` entries of one band of one input file, sorting them.
pub fn encode_band(config: &Config, file: u32, band: u32, entries: &mut [(u64, u32)]) -> Vec<u8> {
    entries.sort_unstable();
    let mut body = Vec::with_capacity(entries.len() * 12);
    for (h, r) in entries.iter() {
        body.extend_from_slice(&h.to_le_bytes());
        body.extend_from_slice(&r.to_le_bytes());
    }
    let header = BandHeader {
        file,
        band,
        entries: entries.len() as u64,
    };
    encode(BAND_MAGIC, config.signature_fingerprint(), &header, &body)
}

/// Streams the entries of a band file in order, checking the checksum at the end.
pub struct BandReader {
    path: PathBuf,
    reader: std::io::BufReader<std::fs::File>,
    hasher: xxhash_rust::xxh3::Xxh3,
    left: u64,
    /// The file's header.
    pub header: BandHeader,
}

impl BandReader {
    /// Opens a band file and checks its header.
    pub fn open(path: &Path, config: &Config) -> Result<BandReader, FileError> {
        let io = |e| FileError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
        let mut prefix = [0u8; 24];
        reader
            .read_exact(&mut prefix)
            .map_err(|_| invalid(path, "truncated (shorter than the file header)"))?;
        let hlen = u32::from_le_bytes(prefix[20..24].try_into().unwrap()) as usize;
        if hlen > 1 << 20 {
            return Err(invalid(path, "bad header length"));
        }
        let mut head = prefix.to_vec();
        head.resize(24 + hlen, 0);
        reader
            .read_exact(&mut head[24..])
            .map_err(|_| invalid(path, "truncated (inside the header)"))?;
        check_prefix(
            &head,
            BAND_MAGIC,
            VERSION,
            Some(config.signature_fingerprint()),
            path,
        )?;
        let header: BandHeader = serde_json::from_slice(&head[24..])
            .map_err(|e| invalid(path, format!("bad header: {e}")))?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&head);
        Ok(BandReader {
            path: path.to_path_buf(),
            reader,
            hasher,
            left: header.entries,
            header,
        })
    }

    /// The next `(band hash, record)`, or `None` after the last one (when the checksum
    /// has been checked).
    pub fn next_entry(&mut self) -> Result<Option<(u64, u32)>, FileError> {
        if self.left == 0 {
            let mut tail = [0u8; 16];
            self.reader
                .read_exact(&mut tail)
                .map_err(|_| invalid(&self.path, "truncated (no end marker)"))?;
            if &tail[8..] != TRAILER
                || u64::from_le_bytes(tail[..8].try_into().unwrap()) != self.hasher.digest()
            {
                return Err(invalid(
                    &self.path,
                    "checksum mismatch: the file is damaged",
                ));
            }
            let mut extra = [0u8; 1];
            if self.reader.read(&mut extra).map_err(|e| FileError::Io {
                path: self.path.clone(),
                source: e,
            })? != 0
            {
                return Err(invalid(&self.path, "bytes after the end marker"));
            }
            return Ok(None);
        }
        let mut e = [0u8; 12];
        self.reader
            .read_exact(&mut e)
            .map_err(|_| invalid(&self.path, "truncated (fewer entries than the header says)"))?;
        self.hasher.update(&e);
        self.left -= 1;
        Ok(Some((
            u64::from_le_bytes(e[..8].try_into().unwrap()),
            u32::from_le_bytes(e[8..].try_into().unwrap()),
        )))
    }
}

/// Header of a group file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupHeader {
    /// Band number.
    pub band: u32,
    /// Input files merged.
    pub files: u32,
    /// Buckets of two or more.
    pub groups: u64,
}

/// Appends one bucket to a group file body.
pub fn push_group(body: &mut Vec<u8>, members: &[u64]) {
    body.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for m in members {
        body.extend_from_slice(&m.to_le_bytes());
    }
}

/// Splits a group file body into buckets.
pub fn groups(body: &[u8], path: &Path) -> Result<Vec<Vec<u64>>, FileError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if i + 4 > body.len() {
            return Err(invalid(path, "damaged group list"));
        }
        let n = u32::from_le_bytes(body[i..i + 4].try_into().unwrap()) as usize;
        i += 4;
        if body.len() - i < n * 8 {
            return Err(invalid(path, "damaged group list"));
        }
        out.push(
            body[i..i + n * 8]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        );
        i += n * 8;
    }
    Ok(out)
}

/// The fingerprint of decision files: the signature settings plus verification and the
/// survivor rule.
pub fn decision_fingerprint(config: &Config) -> u64 {
    let text = format!(
        "{:016x} verify={:?} threshold={} keep={:?}",
        config.signature_fingerprint(),
        config.verify,
        config.threshold,
        config.keep
    );
    crate::fingerprint(&text)
}

/// Header of a decision file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionHeader {
    /// Input file number.
    pub file: u32,
    /// The input file.
    pub input: PathBuf,
    /// Entries.
    pub entries: u64,
}

/// Encodes the decisions about one input file (entries of that file, sorted).
pub fn encode_decisions(config: &Config, header: &DecisionHeader, entries: &[Decision]) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.len() * 17);
    for d in entries {
        body.extend_from_slice(&d.key.record.to_le_bytes());
        body.extend_from_slice(&d.cluster.pack().to_le_bytes());
        body.extend_from_slice(&d.size.to_le_bytes());
        body.push(u8::from(d.survivor));
    }
    encode(DECISION_MAGIC, decision_fingerprint(config), header, &body)
}

/// Decodes a decision file.
pub fn decode_decisions(
    config: &Config,
    bytes: &[u8],
    path: &Path,
) -> Result<(DecisionHeader, Vec<Decision>), FileError> {
    decode_records(
        bytes,
        DECISION_MAGIC,
        decision_fingerprint(config),
        path,
        17,
        |header: &DecisionHeader| Some(header.entries),
        |header, c| Decision {
            key: DocKey {
                file: header.file,
                record: u32::from_le_bytes(c[..4].try_into().unwrap()),
            },
            cluster: DocKey::unpack(u64::from_le_bytes(c[4..12].try_into().unwrap())),
            size: u32::from_le_bytes(c[12..16].try_into().unwrap()),
            survivor: c[16] == 1,
        },
    )
}

/// File names inside a work directory.
pub mod names {
    use std::path::{Path, PathBuf};

    /// Signatures of input file `file`.
    pub fn sig(work: &Path, file: u32) -> PathBuf {
        work.join("signatures").join(format!("f{file:06}.sig"))
    }
    /// Band `band` entries of input file `file`.
    pub fn band(work: &Path, band: u32, file: u32) -> PathBuf {
        work.join("bands")
            .join(format!("b{band:03}"))
            .join(format!("f{file:06}.band"))
    }
    /// Buckets of band `band`.
    pub fn groups(work: &Path, band: u32) -> PathBuf {
        work.join("groups").join(format!("b{band:03}.groups"))
    }
    /// Decisions about input file `file`.
    pub fn decisions(work: &Path, file: u32) -> PathBuf {
        work.join("clusters").join(format!("f{file:06}.dec"))
    }
    /// The summary written last by the cluster pass.
    pub fn cluster_summary(work: &Path) -> PathBuf {
        work.join("clusters").join("summary.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_rejects_damage() {
        let c = Config::default();
        let header = SigHeader {
            file: 3,
            input: "in.jsonl".into(),
            input_bytes: 10,
            docs: 2,
            num_hashes: c.num_hashes() as u32,
        };
        let recs = vec![
            SigRecord {
                hashes: (0..112).collect(),
                chars: 9,
                quality: 0.5,
            },
            SigRecord {
                hashes: Vec::new(),
                chars: 2,
                quality: f32::NAN,
            },
        ];
        let bytes = encode_sigs(&c, &header, &recs);
        let p = Path::new("x.sig");
        let (h, r) = decode_sigs(&c, &bytes, p).unwrap();
        assert_eq!(h, header);
        assert_eq!(r[0], recs[0]);
        assert!(!r[1].has_signature() && r[1].quality.is_nan());

        let mut damaged = bytes.clone();
        damaged[40] ^= 1;
        assert!(
            decode_sigs(&c, &damaged, p)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        let truncated = &bytes[..bytes.len() - 5];
        assert!(
            decode_sigs(&c, truncated, p)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        let other = Config {
            seed: 9,
            ..Config::default()
        };
        assert!(
            decode_sigs(&other, &bytes, p)
                .unwrap_err()
                .to_string()
                .contains("other MinHash settings")
        );
        let dec = decode_decisions(&c, &bytes, p).unwrap_err().to_string();
        assert!(dec.contains("not a CMHDEC file"), "{dec}");
    }

    #[test]
    fn band_reader_streams_and_checks() {
        let c = Config::default();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.band");
        let mut entries = vec![(5u64, 1u32), (2, 0), (5, 0)];
        std::fs::write(&p, encode_band(&c, 0, 3, &mut entries)).unwrap();
        let mut r = BandReader::open(&p, &c).unwrap();
        let mut got = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            got.push(e);
        }
        assert_eq!(got, [(2, 0), (5, 0), (5, 1)]);
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 20] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        let mut r = BandReader::open(&p, &c).unwrap();
        let err = loop {
            match r.next_entry() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("damage not seen"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn decisions_round_trip() {
        let c = Config::default();
        let entries = vec![Decision {
            key: DocKey { file: 2, record: 7 },
            cluster: DocKey { file: 0, record: 1 },
            size: 3,
            survivor: false,
        }];
        let header = DecisionHeader {
            file: 2,
            input: "a".into(),
            entries: 1,
        };
        let bytes = encode_decisions(&c, &header, &entries);
        let (h, e) = decode_decisions(&c, &bytes, Path::new("d")).unwrap();
        assert_eq!((h, e), (header, entries));
        let mut body = Vec::new();
        push_group(&mut body, &[1, 2]);
        push_group(&mut body, &[3, 4, 5]);
        assert_eq!(
            groups(&body, Path::new("g")).unwrap(),
            vec![vec![1, 2], vec![3, 4, 5]]
        );
    }
}
