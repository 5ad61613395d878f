//! The crate's layout as a checked contract: every `crate::…` path between the files of `src/`
//! runs from a higher layer to a lower one (or within one layer without a cycle), and no
//! source file grows past 600 lines.
//!
//! Layers, bottom to top: 0 foundation (errors, backend, schedule, transport, plot) → 1 math
//! core (blanket, score, observe, guidance, sampler, metrics, filter, data, checkpoint,
//! registry) → 2 systems → 3 experiments → 4 cli. A new top-level module must be given a
//! layer in [`layer_of`], which fails the test until it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of a module path (`["score", "mlp"]`), by its first name.
fn layer_of(module: &[String]) -> usize {
    match module.first().map(String::as_str) {
        None
        | Some(
            "error" | "backend" | "resources" | "progress" | "schedule" | "transport" | "plot",
        ) => 0,
        Some(
            "dynamics" | "blanket" | "score" | "observe" | "guidance" | "sampler" | "metrics"
            | "filter" | "methods" | "data" | "checkpoint" | "registry",
        ) => 1,
        Some("systems") => 2,
        Some("experiments") => 3,
        Some("cli") => 4,
        Some(other) => panic!("src/{other}: a new top-level module needs a layer in layer_of"),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file: `src/score/mlp.rs` → `[score, mlp]`, `src/score/mod.rs`
/// → `[score]`, `src/lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)]` tail.
fn code(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |cut| &text[..cut]);
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The module paths a file names: `crate::a::b::c` (and each item of `crate::a::{b, c}`),
/// and `super::x` resolved against the file's own module.
fn imported_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let start_ok = i == 0 || !is_ident(bytes[i - 1]);
        let head = if start_ok && rest.starts_with("crate::") {
            Some((Vec::new(), 7))
        } else if start_ok && rest.starts_with("super::") {
            Some((module[..module.len().saturating_sub(1)].to_vec(), 7))
        } else {
            None
        };
        let Some((mut path, skip)) = head else {
            i += 1;
            continue;
        };
        i += skip;
        loop {
            let name: String = bytes[i..].iter().take_while(|&&c| is_ident(c)).collect();
            if !name.is_empty() {
                i += name.chars().count();
                path.push(name);
                if bytes[i..].starts_with(&[':', ':']) {
                    i += 2;
                    continue;
                }
                paths.push(path);
            } else if bytes.get(i) == Some(&'{') {
                // a group: each item is a path under the prefix
                let end = bytes[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .map_or(bytes.len(), |e| i + e);
                let group: String = bytes[i + 1..end].iter().collect();
                for item in group.split(',') {
                    let first = item.trim().split("::").next().unwrap_or("").trim();
                    let first = first.split(" as ").next().unwrap_or("").trim();
                    if !first.is_empty() && first != "self" && first.chars().all(is_ident) {
                        paths.push([path.clone(), vec![first.to_string()]].concat());
                    }
                }
                paths.push(path);
                i = end;
            }
            break;
        }
    }
    paths
}

struct Crate {
    /// module path → file
    files: BTreeMap<Vec<String>, PathBuf>,
    /// file → files it imports
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files: BTreeMap<Vec<String>, PathBuf> = paths
        .iter()
        .map(|p| (module_of(&src, p), p.clone()))
        .collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let targets = edges.entry(file.clone()).or_default();
        for path in imported_paths(module, &code(&text)) {
            // the file of the longest module prefix of the path
            let target = (1..=path.len()).rev().find_map(|n| files.get(&path[..n]));
            if let Some(t) = target.filter(|t| *t != file) {
                targets.insert(t.clone());
            }
        }
    }
    Crate { files, edges }
}

fn short(file: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    file.strip_prefix(&src)
        .unwrap_or(file)
        .display()
        .to_string()
}

#[test]
fn every_import_runs_down_the_layers() {
    let krate = read_crate();
    let layer: BTreeMap<&PathBuf, usize> =
        krate.files.iter().map(|(m, f)| (f, layer_of(m))).collect();
    let upward: Vec<String> = krate
        .edges
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(from, to)| {
            // lib.rs is the crate root: it declares every layer
            !from.ends_with("lib.rs") && layer[to] > layer[from]
        })
        .map(|(from, to)| {
            format!(
                "{} (layer {}) → {} (layer {})",
                short(from),
                layer[from],
                short(to),
                layer[to]
            )
        })
        .collect();
    assert!(
        upward.is_empty(),
        "imports running up the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_import_cycle_between_files() {
    let krate = read_crate();
    // a file is in a cycle when it reaches itself
    let reach = |start: &PathBuf| -> bool {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&PathBuf> = krate.edges[start].iter().collect();
        while let Some(f) = stack.pop() {
            if f == start {
                return true;
            }
            if seen.insert(f) {
                stack.extend(krate.edges.get(f).into_iter().flatten());
            }
        }
        false
    };
    let in_cycle: Vec<String> = krate
        .edges
        .keys()
        .filter(|f| reach(f))
        .map(|f| short(f))
        .collect();
    assert!(
        in_cycle.is_empty(),
        "files in an import cycle: {in_cycle:?}"
    );
}

#[test]
fn no_source_file_over_600_lines() {
    let krate = read_crate();
    let long: Vec<String> = krate
        .files
        .values()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f)
                .expect("readable")
                .lines()
                .count();
            (n > 600).then(|| format!("{} ({n} lines)", short(f)))
        })
        .collect();
    assert!(long.is_empty(), "source files over 600 lines: {long:?}");
}

#[test]
fn the_import_reader_finds_paths_and_groups() {
    let m = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let paths = imported_paths(
        &m(&["score", "mlp"]),
        "use crate::data::{read_npy, Array};\nlet x = crate::backend::to_host(y);\nuse super::embed;",
    );
    assert!(paths.contains(&m(&["data", "read_npy"])));
    assert!(paths.contains(&m(&["data", "Array"])));
    assert!(paths.contains(&m(&["backend", "to_host"])));
    assert!(paths.contains(&m(&["score", "embed"])));
    assert_eq!(layer_of(&m(&["cli", "train"])), 4);
}
