//! The tar writer: headers, PAX records, padding and the end-of-archive.

use super::*;

fn put_str(field: &mut [u8], s: &str) -> Result<(), TarError> {
    let b = s.as_bytes();
    if b.len() > field.len() {
        return Err(TarError::NameTooLong(s.to_string()));
    }
    field[..b.len()].copy_from_slice(b);
    Ok(())
}

/// `width-1` octal digits and a NUL.
fn put_octal(field: &mut [u8], value: u64) -> Result<(), TarError> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(TarError::TooLarge(value));
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// Serialize one 512-byte header block.
pub fn header_block(h: &Header, magic: Magic) -> Result<[u8; BLOCK], TarError> {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], &h.name)?;
    put_octal(&mut b[100..108], u64::from(h.mode & 0o7777))?;
    put_octal(&mut b[108..116], 0)?;
    put_octal(&mut b[116..124], 0)?;
    put_octal(&mut b[124..136], h.size)?;
    put_octal(&mut b[136..148], h.mtime)?;
    b[156] = h.kind.flag();
    put_str(&mut b[157..257], &h.link)?;
    match magic {
        Magic::Ustar => b[257..265].copy_from_slice(b"ustar\x0000"),
        Magic::Gnu => b[257..265].copy_from_slice(b"ustar  \x00"),
    }
    put_str(&mut b[265..297], "root")?;
    put_str(&mut b[297..329], "root")?;
    if magic == Magic::Ustar {
        put_octal(&mut b[329..337], 0)?;
        put_octal(&mut b[337..345], 0)?;
    }
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    let text = format!("{sum:06o}");
    b[148..154].copy_from_slice(text.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    Ok(b)
}

/// Zero bytes needed after `size` content bytes to reach a block boundary.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// One PAX record: `<len> <key>=<value>\n`, where `len` counts itself.
pub fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

/// The name of the PAX header entry for `path`: `dir/PaxHeaders/base`
/// (abuild's `%d/PaxHeaders/%f`), shortened to fit the name field.
pub fn pax_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let (dir, base) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let mut name = format!("{dir}PaxHeaders/{base}");
    if name.len() > 100 {
        name = format!("PaxHeaders/{base}");
        let mut cut = 100;
        while !name.is_char_boundary(cut.min(name.len())) {
            cut -= 1;
        }
        name.truncate(cut.min(name.len()));
    }
    name
}

/// Append a complete entry (optional PAX header, header, content, padding) to
/// `out`. `pax` holds extra records; `path`/`linkpath` records are added when
/// a name does not fit its field.
pub fn append_entry(
    out: &mut Vec<u8>,
    header: &Header,
    pax: &[(&str, &str)],
    content: &[u8],
    magic: Magic,
) -> Result<(), TarError> {
    append_header(out, header, pax, magic)?;
    out.extend_from_slice(content);
    out.resize(out.len() + padding(content.len() as u64), 0);
    Ok(())
}

/// Append the header blocks of an entry (PAX header first when needed); the
/// caller writes `header.size` content bytes and the padding.
pub fn append_header(
    out: &mut Vec<u8>,
    header: &Header,
    pax: &[(&str, &str)],
    magic: Magic,
) -> Result<(), TarError> {
    let mut records = String::new();
    let mut h = header.clone();
    if h.name.len() > 100 {
        records.push_str(&pax_record("path", &h.name));
        let mut cut = 100;
        while !h.name.is_char_boundary(cut) {
            cut -= 1;
        }
        h.name.truncate(cut);
    }
    if h.link.len() > 100 {
        records.push_str(&pax_record("linkpath", &h.link));
        let mut cut = 100;
        while !h.link.is_char_boundary(cut) {
            cut -= 1;
        }
        h.link.truncate(cut);
    }
    for (k, v) in pax {
        records.push_str(&pax_record(k, v));
    }
    if !records.is_empty() {
        let ph = Header {
            name: pax_name(&header.name),
            mode: 0o644,
            size: records.len() as u64,
            mtime: header.mtime,
            kind: Kind::Pax,
            link: String::new(),
        };
        out.extend_from_slice(&header_block(&ph, magic)?);
        out.extend_from_slice(records.as_bytes());
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend_from_slice(&header_block(&h, magic)?);
    Ok(())
}

/// Two zero blocks: the end-of-archive marker.
pub fn end_of_archive(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
}
