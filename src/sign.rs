//! Signing keys: generation, loading, signing and verification.
//!
//! apk trusts a signature when the file named in the `.SIGN.<ALG>.<name>`
//! entry exists in its keys folder, so a key's identity *is* its public key
//! file name (`forge-6920a3f1.rsa.pub`). forge keeps keys like abuild does:
//!
//! - `keys/NAME-<hex unix time>.rsa`: the private key, PEM PKCS#8, mode 0600,
//!   never committed (`.gitignore` excludes `keys/*.rsa`);
//! - `keys/NAME-<hex unix time>.rsa.pub`: the public key, PEM `PUBLIC KEY`
//!   (SubjectPublicKeyInfo), committed so every checkout can verify.
//!
//! The signing key is `FORGE_SIGNING_KEY` (a path to a private key file) when
//! set, otherwise the newest `keys/*.rsa` (greatest file name: the hex time
//! sorts in time order). [`ensure_default_key`] creates one when none exists.
//! Every `keys/*.rsa.pub` is trusted for verification ([`TrustedKeys`]).
//!
//! RSA work goes through OpenSSL (the `rsa` crate carries RUSTSEC-2023-0071).
//! PKCS#1 v1.5 signatures are deterministic: same key and bytes give the same
//! signature, which keeps signed packages reproducible.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;

use crate::settings::Settings;

/// The environment variable naming a private key file to sign with.
pub const SIGNING_KEY_ENV: &str = "FORGE_SIGNING_KEY";

/// The default key name prefix for `forge keygen`.
pub const DEFAULT_KEY_NAME: &str = "forge";

/// Bits of newly generated keys (abuild-keygen's default).
pub const KEY_BITS: u32 = 4096;

/// What went wrong with a key.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key file could not be read.
    #[error("reading key {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file could not be written.
    #[error("writing key {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A key file is not a PEM key of the expected kind.
    #[error("{} is not a valid {kind} PEM key", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// `private` or `public`.
        kind: &'static str,
        /// The cause.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// The key is not an RSA key (apk v2 signatures are RSA only).
    #[error("{} is not an RSA key", path.display())]
    NotRsa {
        /// The file.
        path: PathBuf,
    },
    /// The private key file name does not end in `.rsa`.
    #[error("private key {} must be named NAME.rsa", path.display())]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// A key name contains characters that do not belong in a file name.
    #[error("invalid key name `{0}`: use letters, digits, `.`, `_`, `-`, `@`, `+`")]
    InvalidName(String),
    /// `forge keygen` would overwrite an existing key.
    #[error("key {} already exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// No private key was found.
    #[error("no signing key in {} (run `forge keygen`) and {SIGNING_KEY_ENV} is unset", dir.display())]
    NoKey {
        /// The keys folder.
        dir: PathBuf,
    },
    /// An OpenSSL operation failed.
    #[error("{0} failed")]
    Crypto(&'static str, #[source] openssl::error::ErrorStack),
}

/// A digest algorithm of an apk signature (`.SIGN.<ALG>.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigAlg {
    /// `RSA256`: PKCS#1 v1.5 over SHA-256.
    Rsa256,
    /// `RSA`: PKCS#1 v1.5 over SHA-1 (what Alpine itself still uses).
    Rsa,
    /// `RSA512`: PKCS#1 v1.5 over SHA-512.
    Rsa512,
}

impl SigAlg {
    /// The tag in `.SIGN.<tag>.<keyname>`.
    pub fn tag(self) -> &'static str {
        match self {
            SigAlg::Rsa256 => "RSA256",
            SigAlg::Rsa => "RSA",
            SigAlg::Rsa512 => "RSA512",
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            SigAlg::Rsa256 => MessageDigest::sha256(),
            SigAlg::Rsa => MessageDigest::sha1(),
            SigAlg::Rsa512 => MessageDigest::sha512(),
        }
    }

    /// Split a signature entry name `.SIGN.RSA256.key.rsa.pub` into the
    /// algorithm and the key file name; `None` for other names and for
    /// algorithms forge does not check (DSA).
    pub fn parse_entry_name(entry: &str) -> Option<(SigAlg, &str)> {
        let rest = entry.strip_prefix(".SIGN.")?;
        for alg in [SigAlg::Rsa512, SigAlg::Rsa256, SigAlg::Rsa] {
            if let Some(key) = rest
                .strip_prefix(alg.tag())
                .and_then(|r| r.strip_prefix('.'))
            {
                return (!key.is_empty()).then_some((alg, key));
            }
        }
        None
    }

    /// The entry name for a key: `.SIGN.RSA256.<key_name>`.
    pub fn entry_name(self, key_name: &str) -> String {
        format!(".SIGN.{}.{key_name}", self.tag())
    }
}

/// A private key ready to sign, with the public key file name that names it.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    path: PathBuf,
    pkey: PKey<Private>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load a private key file `NAME.rsa` (PKCS#8 or traditional PEM); its
    /// public name is `NAME.rsa.pub`.
    pub fn load(path: &Path) -> Result<SigningKey, SignError> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".rsa") && n.len() > 4)
            .ok_or_else(|| SignError::BadName {
                path: path.to_path_buf(),
            })?;
        let pem = fs::read(path).map_err(|source| SignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let pkey = PKey::private_key_from_pem(&pem).map_err(|source| SignError::Parse {
            path: path.to_path_buf(),
            kind: "private",
            source,
        })?;
        if pkey.rsa().is_err() {
            return Err(SignError::NotRsa {
                path: path.to_path_buf(),
            });
        }
        Ok(SigningKey {
            name: format!("{file_name}.pub"),
            path: path.to_path_buf(),
            pkey,
        })
    }

    /// The public key file name (`forge-6920a3f1.rsa.pub`), as written in
    /// `.SIGN.*` entries.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The private key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key as PEM `PUBLIC KEY`.
    pub fn public_pem(&self) -> Result<Vec<u8>, SignError> {
        self.pkey
            .public_key_to_pem()
            .map_err(|e| SignError::Crypto("encoding the public key", e))
    }

    /// The public half, for verifying what this key signed.
    pub fn public_key(&self) -> Result<PKey<Public>, SignError> {
        PKey::public_key_from_pem(&self.public_pem()?)
            .map_err(|e| SignError::Crypto("decoding the public key", e))
    }

    /// Sign `data` with PKCS#1 v1.5 over the algorithm's digest.
    pub fn sign(&self, alg: SigAlg, data: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut signer = openssl::sign::Signer::new(alg.digest(), &self.pkey)
            .map_err(|e| SignError::Crypto("starting a signature", e))?;
        signer
            .update(data)
            .map_err(|e| SignError::Crypto("signing", e))?;
        signer
            .sign_to_vec()
            .map_err(|e| SignError::Crypto("signing", e))
    }
}

/// The public keys trusted for verification, by file name, and whether
/// signatures over SHA-1 (`.SIGN.RSA.`) count (by default they do not; see
/// [`TrustedKeys::set_accept_sha1`]).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, PKey<Public>>,
    accept_sha1: bool,
}

impl TrustedKeys {
    /// No trusted keys.
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Every `*.rsa.pub` file in `dir` (a missing folder trusts nothing).
    pub fn load_dir(dir: &Path) -> Result<TrustedKeys, SignError> {
        let mut trusted = TrustedKeys::new();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(trusted),
            Err(source) => {
                return Err(SignError::Read {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| SignError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".rsa.pub") && path.is_file() {
                trusted.add_file(&path)?;
            }
        }
        Ok(trusted)
    }

    /// Trust one public key file under its file name.
    pub fn add_file(&mut self, path: &Path) -> Result<(), SignError> {
        let pem = fs::read(path).map_err(|source| SignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let key = PKey::public_key_from_pem(&pem).map_err(|source| SignError::Parse {
            path: path.to_path_buf(),
            kind: "public",
            source,
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| SignError::BadName {
                path: path.to_path_buf(),
            })?;
        self.keys.insert(name.to_string(), key);
        Ok(())
    }

    /// Trust `key` under `name`.
    pub fn insert(&mut self, name: impl Into<String>, key: PKey<Public>) {
        self.keys.insert(name.into(), key);
    }

    /// Let SHA-1 signatures (`.SIGN.RSA.`) verify. Off by default: a package
    /// or index signed only with SHA-1 is then refused with
    /// `VerifyError::Sha1Refused`; one also signed with SHA-256 verifies by
    /// that signature either way.
    pub fn set_accept_sha1(&mut self, accept: bool) {
        self.accept_sha1 = accept;
    }

    /// Whether SHA-1 signatures count.
    pub fn accepts_sha1(&self) -> bool {
        self.accept_sha1
    }

    /// Whether a key of this file name is trusted.
    pub fn contains(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }

    /// The trusted key names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Check `signature` over `data` with the trusted key `name`:
    /// `None` when the key is not trusted, `Some(valid)` otherwise.
    pub fn verify(&self, name: &str, alg: SigAlg, data: &[u8], signature: &[u8]) -> Option<bool> {
        let key = self.keys.get(name)?;
        let ok = openssl::sign::Verifier::new(alg.digest(), key)
            .and_then(|mut v| {
                v.update(data)?;
                v.verify(signature)
            })
            .unwrap_or(false);
        Some(ok)
    }
}

/// The two files of a newly generated key.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// `keys/NAME-<hex>.rsa`.
    pub private: PathBuf,
    /// `keys/NAME-<hex>.rsa.pub`.
    pub public: PathBuf,
}

/// Generate an RSA key pair `dir/NAME-<hex unix time>.rsa{,.pub}`.
pub fn generate(dir: &Path, name: &str, bits: u32) -> Result<GeneratedKey, SignError> {
    check_key_name(name)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stem = format!("{name}-{now:x}");
    let private = dir.join(format!("{stem}.rsa"));
    let public = dir.join(format!("{stem}.rsa.pub"));
    for p in [&private, &public] {
        if p.exists() {
            return Err(SignError::Exists { path: p.clone() });
        }
    }
    let rsa = Rsa::generate(bits).map_err(|e| SignError::Crypto("generating an RSA key", e))?;
    let pkey = PKey::from_rsa(rsa).map_err(|e| SignError::Crypto("generating an RSA key", e))?;
    let private_pem = pkey
        .private_key_to_pem_pkcs8()
        .map_err(|e| SignError::Crypto("encoding the private key", e))?;
    let public_pem = pkey
        .public_key_to_pem()
        .map_err(|e| SignError::Crypto("encoding the public key", e))?;
    fs::create_dir_all(dir).map_err(|source| SignError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_atomic(&private, &private_pem, 0o600)?;
    write_atomic(&public, &public_pem, 0o644)?;
    Ok(GeneratedKey { private, public })
}

/// Check that a key name prefix is usable in a file name (letters, digits,
/// `.`, `_`, `-`, `@`, `+`; not empty, no leading `.`).
pub fn check_key_name(name: &str) -> Result<(), SignError> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c));
    if valid {
        Ok(())
    } else {
        Err(SignError::InvalidName(name.to_string()))
    }
}

/// The project's trust: the keys in `dir` (the project's `keys/` unless a
/// command was given another folder), with the project's SHA-1 policy
/// (`accept-sha1-signatures` in `forge.toml`).
pub fn load_trust(settings: &Settings, dir: &Path) -> Result<TrustedKeys, SignError> {
    let mut trusted = TrustedKeys::load_dir(dir)?;
    trusted.set_accept_sha1(settings.accept_sha1_signatures);
    Ok(trusted)
}

/// The key to sign with: `FORGE_SIGNING_KEY` if set, else the newest
/// `keys/*.rsa`; `None` when there is none.
pub fn find_signing_key(keys_dir: &Path) -> Result<Option<SigningKey>, SignError> {
    if let Some(path) = std::env::var_os(SIGNING_KEY_ENV).filter(|p| !p.is_empty()) {
        return SigningKey::load(Path::new(&path)).map(Some);
    }
    let entries = match fs::read_dir(keys_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SignError::Read {
                path: keys_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut newest: Option<PathBuf> = None;
    for entry in entries {
        let path = entry
            .map_err(|source| SignError::Read {
                path: keys_dir.to_path_buf(),
                source,
            })?
            .path();
        let is_key = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".rsa") && !n.starts_with('.'));
        if is_key && path.is_file() && newest.as_ref().is_none_or(|n| path > *n) {
            newest = Some(path);
        }
    }
    newest.map(|p| SigningKey::load(&p)).transpose()
}

/// The signing key of this project, creating `keys/forge-<hex>.rsa` (and its
/// `.rsa.pub`) when there is none; the creation is reported as a note.
pub fn ensure_default_key(settings: &Settings) -> Result<SigningKey, SignError> {
    let dir = settings.keys_dir();
    if let Some(key) = find_signing_key(&dir)? {
        ensure_public_file(&dir, &key)?;
        return Ok(key);
    }
    let generated = generate(&dir, DEFAULT_KEY_NAME, KEY_BITS)?;
    settings.shell.note(format!(
        "created signing key {} (keep it private; commit {})",
        generated.private.display(),
        generated.public.display()
    ));
    SigningKey::load(&generated.private)
}

/// Write `keys/<name>` (the public key) when a private key in `keys/` lacks it,
/// so packages it signs verify in this project.
fn ensure_public_file(dir: &Path, key: &SigningKey) -> Result<(), SignError> {
    if key.path().parent() != Some(dir) {
        return Ok(());
    }
    let public = dir.join(key.name());
    if public.exists() {
        return Ok(());
    }
    write_atomic(&public, &key.public_pem()?, 0o644)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    crate::util::write_atomic(path, bytes, Some(mode)).map_err(|source| SignError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::OnceLock;

    /// A 2048-bit key shared by the tests of this crate (generation is slow).
    pub(crate) fn test_key() -> &'static (tempfile::TempDir, SigningKey) {
        static KEY: OnceLock<(tempfile::TempDir, SigningKey)> = OnceLock::new();
        KEY.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let g = generate(dir.path(), "test", 2048).unwrap();
            let key = SigningKey::load(&g.private).unwrap();
            (dir, key)
        })
    }

    /// Trust exactly the shared test key.
    pub(crate) fn test_trust() -> TrustedKeys {
        let (_, key) = test_key();
        let mut t = TrustedKeys::new();
        t.insert(key.name(), key.public_key().unwrap());
        t
    }

    #[test]
    fn generated_files_have_names_and_modes() {
        let (dir, key) = test_key();
        let name = key.name();
        assert!(
            name.starts_with("test-") && name.ends_with(".rsa.pub"),
            "{name}"
        );
        let hex = &name["test-".len()..name.len() - ".rsa.pub".len()];
        assert!(u64::from_str_radix(hex, 16).is_ok(), "{hex}");
        let private = dir.path().join(&name[..name.len() - 4]);
        let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let public = fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let trusted = TrustedKeys::load_dir(dir.path()).unwrap();
        assert_eq!(trusted.names().collect::<Vec<_>>(), vec![name]);
    }

    #[test]
    fn signatures_are_deterministic_and_verify() {
        let (_, key) = test_key();
        let trusted = test_trust();
        for alg in [SigAlg::Rsa256, SigAlg::Rsa, SigAlg::Rsa512] {
            let a = key.sign(alg, b"control bytes").unwrap();
            let b = key.sign(alg, b"control bytes").unwrap();
            assert_eq!(a, b);
            assert_eq!(a.len(), 256);
            assert_eq!(
                trusted.verify(key.name(), alg, b"control bytes", &a),
                Some(true)
            );
            assert_eq!(
                trusted.verify(key.name(), alg, b"control byteZ", &a),
                Some(false)
            );
            assert_eq!(
                trusted.verify("other.rsa.pub", alg, b"control bytes", &a),
                None
            );
        }
    }

    #[test]
    fn entry_names_round_trip() {
        let cases = [
            (
                ".SIGN.RSA256.a.rsa.pub",
                Some((SigAlg::Rsa256, "a.rsa.pub")),
            ),
            (".SIGN.RSA.a.rsa.pub", Some((SigAlg::Rsa, "a.rsa.pub"))),
            (".SIGN.RSA512.k", Some((SigAlg::Rsa512, "k"))),
            (".SIGN.DSA.k", None),
            (".SIGN.RSA.", None),
            (".PKGINFO", None),
        ];
        for (name, want) in cases {
            assert_eq!(SigAlg::parse_entry_name(name), want, "{name}");
        }
        assert_eq!(
            SigAlg::Rsa256.entry_name("k.rsa.pub"),
            ".SIGN.RSA256.k.rsa.pub"
        );
    }

    #[test]
    fn rejects_bad_key_names() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", ".x", "a/b", "a b"] {
            assert!(matches!(
                generate(dir.path(), bad, 1024),
                Err(SignError::InvalidName(_))
            ));
        }
        assert!(matches!(
            SigningKey::load(&dir.path().join("x.pem")),
            Err(SignError::BadName { .. })
        ));
    }
}
