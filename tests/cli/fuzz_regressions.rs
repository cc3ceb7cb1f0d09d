//! Replays the fuzz regression inputs: every file under `tests/fuzz/<target>/`
//! goes through `forge::fuzzing::<target>`, the same function the `cargo fuzz`
//! target calls (see docs/fuzzing.md). A panic there is a parser defect that
//! was fixed once and must stay fixed. CI runs these inputs, not the fuzzer.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_inputs_and_none_panics() {
    let mut panicked = Vec::new();
    for (name, run) in forge::fuzzing::TARGETS {
        let files = inputs(name);
        assert!(!files.is_empty(), "tests/fuzz/{name}/ holds no input");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                panicked.push(f.display().to_string());
            }
        }
    }
    assert!(panicked.is_empty(), "fuzz inputs that panic: {panicked:#?}");
}
