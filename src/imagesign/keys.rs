//! ECDSA P-256 image signing keys, in the formats cosign reads and writes.
//!
//! - public key: PEM `PUBLIC KEY` (SubjectPublicKeyInfo), what `cosign verify
//!   --key`, containers/image's `sigstoreSigned.keyPath` and Kyverno take;
//! - private key: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` whose body is JSON:
//!   scrypt (`N` of 2^15..2^17, `r=8`, `p=1`, 32-byte salt) derives a 32-byte
//!   key for NaCl secretbox (XSalsa20-Poly1305, 24-byte nonce, tag first) that
//!   wraps the PKCS#8 DER key. The legacy label `ENCRYPTED COSIGN PRIVATE
//!   KEY` and plain PKCS#8 `PRIVATE KEY` files are read too. The password
//!   comes from `COSIGN_PASSWORD` (empty when unset, as cosign allows).
//!
//! `forge keygen` writes `keys/NAME-<hex>.cosign.key` (mode 0600, ignored by
//! git) and `keys/NAME-<hex>.cosign.pub`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use serde_json::{Value, json};

use super::ImageSignError;

/// The password variable cosign uses; forge uses it too.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";
/// A private key file to sign images with (instead of the newest `keys/*.cosign.key`).
pub const KEY_ENV: &str = "FORGE_IMAGE_SIGNING_KEY";
/// Private key file suffix.
pub const PRIVATE_SUFFIX: &str = ".cosign.key";
/// Public key file suffix.
pub const PUBLIC_SUFFIX: &str = ".cosign.pub";
/// The scrypt cost forge writes (`cosign generate-key-pair`'s 2^16).
pub const SCRYPT_LOG_N: u8 = 16;

const LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const LEGACY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// An ECDSA P-256 private key for image signatures.
///
/// A key opened with [`ImageKey::open`] next to its `.cosign.pub` is
/// decrypted only when something must be signed: scrypt at cosign's cost
/// takes a few hundred milliseconds and 64 MiB, which a re-publish that
/// finds every signature in place should not pay.
pub struct ImageKey {
    path: PathBuf,
    public: PKey<Public>,
    private: Mutex<Option<PKey<Private>>>,
    password: Vec<u8>,
}

impl std::fmt::Debug for ImageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageKey")
            .field("path", &self.path)
            .finish()
    }
}

fn crypto(what: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> ImageSignError {
    move |e| ImageSignError::Crypto(what, e)
}

fn public_of(key: &PKey<Private>) -> Result<PKey<Public>, ImageSignError> {
    let pem = key
        .public_key_to_pem()
        .map_err(crypto("encoding the public key"))?;
    PKey::public_key_from_pem(&pem).map_err(crypto("reading the public key"))
}

impl ImageKey {
    fn with_private(key: PKey<Private>, path: &Path) -> Result<ImageKey, ImageSignError> {
        Ok(ImageKey {
            path: path.to_path_buf(),
            public: public_of(&key)?,
            private: Mutex::new(Some(key)),
            password: Vec::new(),
        })
    }

    /// A fresh random P-256 key (not yet saved anywhere).
    pub fn generate() -> Result<ImageKey, ImageSignError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(crypto("p-256"))?;
        let ec = EcKey::generate(&group).map_err(crypto("generating an ecdsa key"))?;
        let key = PKey::from_ec_key(ec).map_err(crypto("generating an ecdsa key"))?;
        ImageKey::with_private(key, Path::new(""))
    }

    /// Load a private key file now, decrypting it with `password` when it is
    /// in cosign's encrypted format.
    pub fn load(path: &Path, password: &[u8]) -> Result<ImageKey, ImageSignError> {
        ImageKey::with_private(read_private(path, password)?, path)
    }

    /// Open a private key file; when `NAME.cosign.pub` sits beside
    /// `NAME.cosign.key`, take the public key from it and decrypt the private
    /// key on first use (checking that the two belong together).
    pub fn open(path: &Path, password: &[u8]) -> Result<ImageKey, ImageSignError> {
        let public_path = path
            .to_str()
            .and_then(|p| p.strip_suffix(PRIVATE_SUFFIX))
            .map(|stem| PathBuf::from(format!("{stem}{PUBLIC_SUFFIX}")));
        match public_path.filter(|p| p.is_file()) {
            Some(pp) => Ok(ImageKey {
                path: path.to_path_buf(),
                public: load_public(&pp)?,
                private: Mutex::new(None),
                password: password.to_vec(),
            }),
            None => ImageKey::load(path, password),
        }
    }

    /// The file it was loaded from (empty for a generated key).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key as PEM `PUBLIC KEY`.
    pub fn public_pem(&self) -> Result<Vec<u8>, ImageSignError> {
        self.public
            .public_key_to_pem()
            .map_err(crypto("encoding the public key"))
    }

    /// The public key.
    pub fn public_key(&self) -> Result<PKey<Public>, ImageSignError> {
        Ok(self.public.clone())
    }

    fn private(&self) -> Result<PKey<Private>, ImageSignError> {
        let mut slot = self.private.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let key = read_private(&self.path, &self.password)?;
        let derived = public_of(&key)?;
        if !derived.public_eq(&self.public) {
            return Err(ImageSignError::KeyFile {
                path: self.path.clone(),
                what: format!("does not match its public key {PUBLIC_SUFFIX} file"),
            });
        }
        *slot = Some(key.clone());
        Ok(key)
    }

    /// ECDSA over SHA-256 of `data`, ASN.1 DER.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ImageSignError> {
        let key = self.private()?;
        let mut s = Signer::new(MessageDigest::sha256(), &key).map_err(crypto("signing"))?;
        s.update(data).map_err(crypto("signing"))?;
        s.sign_to_vec().map_err(crypto("signing"))
    }

    /// The private key in cosign's encrypted PEM format.
    pub fn to_encrypted_pem(&self, password: &[u8], log_n: u8) -> Result<String, ImageSignError> {
        let der = self
            .private()?
            .private_key_to_pkcs8()
            .map_err(crypto("encoding the private key"))?;
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        openssl::rand::rand_bytes(&mut salt).map_err(crypto("random salt"))?;
        openssl::rand::rand_bytes(&mut nonce).map_err(crypto("random nonce"))?;
        let body = encrypt(&der, password, log_n, &salt, &nonce)?;
        Ok(pem_encode(LABEL, &body))
    }
}

fn read_private(path: &Path, password: &[u8]) -> Result<PKey<Private>, ImageSignError> {
    let text = fs::read_to_string(path).map_err(|source| ImageSignError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_private(&text, password).map_err(|e| match e {
        ImageSignError::Malformed(what) => ImageSignError::KeyFile {
            path: path.to_path_buf(),
            what,
        },
        other => other,
    })
}

/// Verify an ECDSA SHA-256 DER `signature` over `data` with `key`.
pub fn verify(key: &PKey<Public>, data: &[u8], signature: &[u8]) -> bool {
    Verifier::new(MessageDigest::sha256(), key)
        .and_then(|mut v| {
            v.update(data)?;
            v.verify(signature)
        })
        .unwrap_or(false)
}

/// Read a PEM `PUBLIC KEY` file (an ECDSA P-256 key).
pub fn load_public(path: &Path) -> Result<PKey<Public>, ImageSignError> {
    let pem = fs::read(path).map_err(|source| ImageSignError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let key = PKey::public_key_from_pem(&pem).map_err(|_| ImageSignError::KeyFile {
        path: path.to_path_buf(),
        what: "not a PEM PUBLIC KEY".into(),
    })?;
    if key.id() != openssl::pkey::Id::EC {
        return Err(ImageSignError::KeyFile {
            path: path.to_path_buf(),
            what: "not an ECDSA key".into(),
        });
    }
    Ok(key)
}

/// The SHA-256 of a public key's DER, hex: a stable key id for DSSE `keyid`.
pub fn key_id(key: &PKey<Public>) -> String {
    let der = key.public_key_to_der().unwrap_or_default();
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der))
}

fn parse_private(text: &str, password: &[u8]) -> Result<PKey<Private>, ImageSignError> {
    let (label, body) = pem_decode(text)?;
    let der = match label.as_str() {
        LABEL | LEGACY_LABEL => decrypt(&body, password)?,
        "PRIVATE KEY" => body,
        "EC PRIVATE KEY" => {
            let ec = EcKey::private_key_from_der(&body).map_err(crypto("reading the key"))?;
            return PKey::from_ec_key(ec).map_err(crypto("reading the key"));
        }
        other => {
            return Err(ImageSignError::Malformed(format!(
                "unexpected PEM label `{other}`"
            )));
        }
    };
    let key = PKey::private_key_from_pkcs8(&der).map_err(crypto("reading the pkcs#8 key"))?;
    let is_p256 = key
        .ec_key()
        .ok()
        .and_then(|k| k.group().curve_name())
        .is_some_and(|n| n == Nid::X9_62_PRIME256V1);
    if !is_p256 {
        return Err(ImageSignError::Malformed("not an ECDSA P-256 key".into()));
    }
    Ok(key)
}

fn derive(password: &[u8], salt: &[u8], log_n: u8) -> Result<[u8; 32], ImageSignError> {
    let params = scrypt::Params::new(log_n, 8, 1)
        .map_err(|_| ImageSignError::Malformed("invalid scrypt parameters".into()))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|_| ImageSignError::Malformed("invalid scrypt output length".into()))?;
    Ok(out)
}

/// Encrypt `plain` into the JSON body of an encrypted cosign key.
pub fn encrypt(
    plain: &[u8],
    password: &[u8],
    log_n: u8,
    salt: &[u8; 32],
    nonce: &[u8; 24],
) -> Result<Vec<u8>, ImageSignError> {
    let key = derive(password, salt, log_n)?;
    let sealed = XSalsa20Poly1305::new(&key.into())
        .encrypt(nonce.into(), plain)
        .map_err(|_| ImageSignError::Malformed("secretbox encryption failed".into()))?;
    let doc = json!({
        "kdf": {"name": "scrypt", "params": {"N": 1u64 << log_n, "r": 8, "p": 1}, "salt": B64.encode(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": B64.encode(nonce)},
        "ciphertext": B64.encode(sealed),
    });
    Ok(serde_json::to_vec(&doc).unwrap_or_default())
}

/// Decrypt the JSON body of an encrypted cosign key.
pub fn decrypt(body: &[u8], password: &[u8]) -> Result<Vec<u8>, ImageSignError> {
    let bad = |what: &str| ImageSignError::Malformed(what.to_string());
    let doc: Value = serde_json::from_slice(body).map_err(|_| bad("key body is not JSON"))?;
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let kdf = field(&doc, "kdf");
    if kdf.get("name").and_then(Value::as_str) != Some("scrypt") {
        return Err(bad("unsupported kdf (expected scrypt)"));
    }
    let p = field(&kdf, "params");
    let n = p.get("N").and_then(Value::as_u64).unwrap_or(0);
    let log_n = match n {
        32768 => 15,
        65536 => 16,
        131072 => 17,
        _ => return Err(bad("unsupported scrypt N (expected 2^15, 2^16 or 2^17)")),
    };
    if p.get("r").and_then(Value::as_u64) != Some(8)
        || p.get("p").and_then(Value::as_u64) != Some(1)
    {
        return Err(bad("unsupported scrypt r/p (expected 8/1)"));
    }
    let b64 = |v: &Value, what: &str| {
        v.as_str()
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| bad(what))
    };
    let salt = b64(&field(&kdf, "salt"), "bad salt")?;
    let cipher = field(&doc, "cipher");
    if cipher.get("name").and_then(Value::as_str) != Some("nacl/secretbox") {
        return Err(bad("unsupported cipher (expected nacl/secretbox)"));
    }
    let nonce = b64(&field(&cipher, "nonce"), "bad nonce")?;
    if nonce.len() != 24 {
        return Err(bad("nonce must be 24 bytes"));
    }
    let sealed = b64(&field(&doc, "ciphertext"), "bad ciphertext")?;
    let key = derive(password, &salt, log_n)?;
    XSalsa20Poly1305::new(&key.into())
        .decrypt(nonce.as_slice().into(), sealed.as_slice())
        .map_err(|_| ImageSignError::WrongPassword)
}

fn pem_encode(label: &str, body: &[u8]) -> String {
    let b = B64.encode(body);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn pem_decode(text: &str) -> Result<(String, Vec<u8>), ImageSignError> {
    let bad = |w: &str| ImageSignError::Malformed(w.to_string());
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "));
    let first = lines.next().ok_or_else(|| bad("no PEM block"))?;
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| bad("bad PEM header"))?
        .to_string();
    let mut b = String::new();
    for line in lines {
        if line.starts_with("-----END ") {
            let body = B64
                .decode(b.as_bytes())
                .map_err(|_| bad("bad PEM base64"))?;
            return Ok((label, body));
        }
        if !line.contains(':') {
            b.push_str(line);
        }
    }
    Err(bad("unterminated PEM block"))
}

/// The two files of a generated image key.
#[derive(Debug, Clone)]
pub struct GeneratedImageKey {
    /// `keys/NAME-<hex>.cosign.key` (encrypted, mode 0600).
    pub private: PathBuf,
    /// `keys/NAME-<hex>.cosign.pub`.
    pub public: PathBuf,
}

/// Generate `dir/NAME-<hex unix time>.cosign.{key,pub}`, the private key
/// encrypted with `password`.
pub fn generate(
    dir: &Path,
    name: &str,
    password: &[u8],
) -> Result<GeneratedImageKey, ImageSignError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stem = format!("{name}-{now:x}");
    let private = dir.join(format!("{stem}{PRIVATE_SUFFIX}"));
    let public = dir.join(format!("{stem}{PUBLIC_SUFFIX}"));
    for p in [&private, &public] {
        if p.exists() {
            return Err(ImageSignError::Exists { path: p.clone() });
        }
    }
    let key = ImageKey::generate()?;
    let pem = key.to_encrypted_pem(password, SCRYPT_LOG_N)?;
    fs::create_dir_all(dir).map_err(|source| ImageSignError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write_atomic(&private, pem.as_bytes(), 0o600)?;
    write_atomic(&public, &key.public_pem()?, 0o644)?;
    Ok(GeneratedImageKey { private, public })
}

/// The image signing key: `FORGE_IMAGE_SIGNING_KEY` when set, else the newest
/// `keys/*.cosign.key`; decrypted with `COSIGN_PASSWORD`.
pub fn find_key(keys_dir: &Path) -> Result<ImageKey, ImageSignError> {
    let password = std::env::var(PASSWORD_ENV).unwrap_or_default();
    if let Some(p) = std::env::var_os(KEY_ENV).filter(|p| !p.is_empty()) {
        return ImageKey::open(Path::new(&p), password.as_bytes());
    }
    let newest = fs::read_dir(keys_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(PRIVATE_SUFFIX) && !n.starts_with('.'))
        })
        .max();
    match newest {
        Some(p) => ImageKey::open(&p, password.as_bytes()),
        None => Err(ImageSignError::NoKey {
            dir: keys_dir.to_path_buf(),
        }),
    }
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ImageSignError> {
    crate::util::write_atomic(path, bytes, Some(mode)).map_err(|source| ImageSignError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_key_round_trip_and_wrong_password() {
        let key = ImageKey::generate().unwrap();
        // 2^15 keeps the test fast; the format is the same.
        let pem = key.to_encrypted_pem(b"pw", 15).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let back = parse_private(&pem, b"pw").unwrap();
        assert_eq!(back.public_key_to_pem().unwrap(), key.public_pem().unwrap());
        assert!(matches!(
            parse_private(&pem, b"px"),
            Err(ImageSignError::WrongPassword)
        ));
        let legacy = pem.replace("SIGSTORE", "COSIGN");
        assert!(parse_private(&legacy, b"pw").is_ok());
    }

    #[test]
    fn known_answer_from_an_independent_implementation() {
        // tests/fixtures/cosign/kat.key was made once with PyNaCl's SecretBox
        // and Python's hashlib.scrypt (OpenSSL), password "forge-kat".
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cosign");
        let pem = fs::read_to_string(root.join("kat.key")).unwrap();
        let key = parse_private(&pem, b"forge-kat").unwrap();
        let public = fs::read(root.join("kat.pub")).unwrap();
        assert_eq!(key.public_key_to_pem().unwrap(), public);
        // and a signature made by openssl's CLI with the same key verifies.
        let pubkey = PKey::public_key_from_pem(&public).unwrap();
        let sig = fs::read(root.join("kat.sig")).unwrap();
        assert!(verify(&pubkey, b"forge known answer\n", &sig));
        assert!(!verify(&pubkey, b"forge known answer!\n", &sig));
    }

    #[test]
    fn decrypt_rejects_unsupported_parameters() {
        let salt = [7u8; 32];
        let nonce = [9u8; 24];
        let body = encrypt(b"secret", b"", 15, &salt, &nonce).unwrap();
        assert_eq!(decrypt(&body, b"").unwrap(), b"secret");
        let text = String::from_utf8(body).unwrap();
        for (from, to, want) in [
            ("32768", "1024", "scrypt N"),
            ("\"r\":8", "\"r\":4", "r/p"),
            ("nacl/secretbox", "aes-gcm", "cipher"),
            ("\"scrypt\"", "\"argon2\"", "kdf"),
        ] {
            let bad = text.replace(from, to);
            let err = decrypt(bad.as_bytes(), b"").unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn generate_writes_encrypted_private_and_pem_public() {
        let tmp = tempfile::tempdir().unwrap();
        let g = generate(tmp.path(), "forge", b"").unwrap();
        assert!(g.private.to_str().unwrap().ends_with(".cosign.key"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&g.private).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let pubkey = load_public(&g.public).unwrap();
        let key = ImageKey::load(&g.private, b"").unwrap();
        let sig = key.sign(b"x").unwrap();
        assert!(verify(&pubkey, b"x", &sig));
        assert!(
            fs::read_to_string(&g.private)
                .unwrap()
                .contains("ENCRYPTED SIGSTORE PRIVATE KEY")
        );
    }

    #[test]
    fn open_defers_decryption_and_checks_the_pair() {
        let tmp = tempfile::tempdir().unwrap();
        let g = generate(tmp.path(), "lazy", b"pw").unwrap();
        // A wrong password is only noticed when signing.
        let key = ImageKey::open(&g.private, b"wrong").unwrap();
        assert_eq!(key.public_pem().unwrap(), fs::read(&g.public).unwrap());
        assert!(matches!(key.sign(b"x"), Err(ImageSignError::WrongPassword)));
        let key = ImageKey::open(&g.private, b"pw").unwrap();
        let sig = key.sign(b"x").unwrap();
        assert!(verify(&key.public_key().unwrap(), b"x", &sig));
        // A public file of another key is refused at signing time.
        let other = generate(tmp.path(), "other", b"pw").unwrap();
        fs::copy(&other.public, &g.public).unwrap();
        let key = ImageKey::open(&g.private, b"pw").unwrap();
        let err = key.sign(b"x").unwrap_err().to_string();
        assert!(err.contains("does not match its public key"), "{err}");
    }
}
