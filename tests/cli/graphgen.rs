//! Generated recipe graphs for the graph tests and the no-op benchmark.
#![allow(dead_code)]

use std::path::Path;

/// Dependencies of unit `i`: up to three earlier units, chosen by a fixed
/// linear congruential sequence (so the graph is the same every time).
pub fn deps_of(i: usize) -> Vec<usize> {
    // Every 50th unit is a leaf: it needs nothing.
    if i.is_multiple_of(50) {
        return Vec::new();
    }
    let mut x = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::new();
    for _ in 0..((i % 3) + 1) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let d = (x >> 33) as usize % i;
        // Mostly near neighbours, so the graph is deep as well as wide.
        let d = if i.is_multiple_of(5) {
            d
        } else {
            i - 1 - d % i.min(20)
        };
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out.sort();
    out
}

/// The unit name of index `i`.
pub fn name(i: usize) -> String {
    format!("u{i:04}")
}

/// Write `n` small recipes into `root/recipes`. Each builds one file from a
/// local source and depends (makedepends) on the units [`deps_of`] gives.
pub fn write_graph(root: &Path, n: usize) {
    for i in 0..n {
        let name = name(i);
        let deps: Vec<String> = deps_of(i).into_iter().map(self::name).collect();
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        crate::support::RecipeBuilder::new(root, &name)
            .description(&format!("generated unit {i}"))
            .arch(&["noarch"])
            .makedepends(&deps)
            .options(&["!check", "!strip"])
            .source("data.txt", &format!("unit {i}\n"))
            .script(&format!(
                "mkdir -p \"$pkgdir/usr/share/{name}\"\ncp data.txt \"$pkgdir/usr/share/{name}/data.txt\""
            ))
            .write();
    }
}

/// Indices of every unit that (transitively) depends on `leaf`, and `leaf`.
pub fn reverse_closure(n: usize, leaf: usize) -> Vec<usize> {
    let mut hit = vec![false; n];
    hit[leaf] = true;
    for i in 0..n {
        if deps_of(i).iter().any(|&d| hit[d]) {
            hit[i] = true;
        }
    }
    (0..n).filter(|&i| hit[i]).collect()
}
