//! The kernel command line of a `/usr` slot: the definition's additions,
//! then forge's own arguments. One function, so the image build and an
//! update payload for the other slot say the same thing.

use super::usr::UsrImage;

/// The command line for `usr` in the partition `partuuid`, after `additions`.
pub fn for_slot(additions: &[String], partuuid: &str, usr: &UsrImage) -> String {
    let mut args = additions.to_vec();
    args.push(format!("mount.usr=PARTUUID={partuuid}"));
    args.push("mount.usrflags=ro".to_string());
    args.push(format!("usrhash={}", usr.root_hash));
    args.join(" ")
}
