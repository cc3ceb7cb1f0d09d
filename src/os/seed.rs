//! Every identifier of an OS image, derived from one seed so two builds of
//! the same definition give the same bytes: GPT disk and partition GUIDs,
//! the erofs UUID, the dm-verity salt and UUID, FAT volume ids.
//!
//! The seed is SHA-256 of a fixed prefix and the image name; each
//! identifier is SHA-256(seed ‖ role), cut to size. A GUID gets the
//! version-4 and RFC 4122 variant bits, so it reads as an ordinary random
//! UUID to every tool.

use sha2::{Digest as _, Sha256};

/// The seed of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed([u8; 32]);

/// A UUID in its canonical (big-endian) byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Seed {
    /// The seed of the image named `name`.
    pub fn for_image(name: &str) -> Seed {
        let mut h = Sha256::new();
        h.update(b"forge os image seed v1\0");
        h.update(name.as_bytes());
        Seed(h.finalize().into())
    }

    /// 32 bytes for `role`.
    pub fn derive(&self, role: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(role.as_bytes());
        h.finalize().into()
    }

    /// A version-4 style GUID for `role`.
    pub fn guid(&self, role: &str) -> Guid {
        let d = self.derive(role);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }

    /// 64 hex digits for `role` (a dm-verity salt).
    pub fn hex32(&self, role: &str) -> String {
        hex::encode(self.derive(role))
    }

    /// 8 hex digits for `role` (a FAT volume id).
    pub fn hex4(&self, role: &str) -> String {
        hex::encode(&self.derive(role)[..4])
    }
}

impl Guid {
    /// Parse `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (for the fixed type GUIDs).
    pub const fn from_fields(a: u32, b: u16, c: u16, d: u16, e: u64) -> Guid {
        let mut g = [0u8; 16];
        let a = a.to_be_bytes();
        let b = b.to_be_bytes();
        let c = c.to_be_bytes();
        let d = d.to_be_bytes();
        let e = e.to_be_bytes();
        g[0] = a[0];
        g[1] = a[1];
        g[2] = a[2];
        g[3] = a[3];
        g[4] = b[0];
        g[5] = b[1];
        g[6] = c[0];
        g[7] = c[1];
        g[8] = d[0];
        g[9] = d[1];
        let mut i = 0;
        while i < 6 {
            g[10 + i] = e[2 + i];
            i += 1;
        }
        Guid(g)
    }

    /// GPT's on-disk order: the first three fields little-endian.
    pub fn to_gpt_bytes(self) -> [u8; 16] {
        let b = self.0;
        [
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ]
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = hex::encode(self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stable_v4_and_distinct_per_role() {
        let s = Seed::for_image("node");
        let a = s.guid("usr-a");
        assert_eq!(a, Seed::for_image("node").guid("usr-a"));
        assert_ne!(a, s.guid("usr-b"));
        assert_ne!(a, Seed::for_image("other").guid("usr-a"));
        let text = a.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4", "{text}");
        assert!("89ab".contains(&text[19..20]), "{text}");
    }

    #[test]
    fn esp_type_guid_in_gpt_byte_order() {
        let esp = Guid::from_fields(0xC12A7328, 0xF81F, 0x11D2, 0xBA4B, 0x00A0C93EC93B);
        assert_eq!(esp.to_string(), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(
            hex::encode(esp.to_gpt_bytes()),
            "28732ac11ff8d211ba4b00a0c93ec93b"
        );
    }
}
