//! Keeps the layers of ARCHITECTURE.md: reads every `crate::…` path in `src/` (production
//! code: a file's inline `#[cfg(test)]` module and `tests.rs` files are left out) and fails on
//! an edge between top-level modules that goes against the written order, on a module the
//! order does not name, on a pure domain file that reaches for actix, tokio or SQL, and on a
//! production file over 600 lines. Every failure prints `file:line`.
//!
//! The order is read from ARCHITECTURE.md's ```layers block: one line per layer, lowest first;
//! a module may use the modules of earlier lines only (modules on one line are independent).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;
/// Crates a pure domain file may not name.
const IMPURE: [&str; 6] = [
    "actix",
    "tokio",
    "tokio_postgres",
    "deadpool_postgres",
    "postgres_types",
    "futures_util",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The layers, lowest first, from ARCHITECTURE.md.
fn layers() -> Vec<Vec<String>> {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let block = text
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    block
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to; `None` for the crate root and the binaries.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "main.rs" | "bin" => None,
        _ => Some(first.trim_end_matches(".rs").to_string()),
    }
}

/// The file's production lines (up to its `#[cfg(test)] mod`), comments removed.
fn production_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        // An inline test module ends the production code; `mod tests;` (its own file) does not.
        let module = next.starts_with("mod ") || next.starts_with("pub mod ");
        if line.trim() == "#[cfg(test)]" && module && next.ends_with('{') {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push((i + 1, code.to_string()));
    }
    out
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules a line names through `crate::`, `crate::{a, b::c}` included.
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        out.push(ident_at(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident_at(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

struct Scan {
    /// (from, to) → the first place that makes the edge.
    edges: BTreeMap<(String, String), String>,
    impure: Vec<String>,
    long: Vec<String>,
}

fn scan() -> Scan {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut scan = Scan {
        edges: BTreeMap::new(),
        impure: Vec::new(),
        long: Vec::new(),
    };
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_path_buf();
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).expect("read source");
        let lines = production_lines(&text);
        let shown = format!("src/{}", rel.display());
        if lines.len() > MAX_LINES {
            scan.long
                .push(format!("{shown}: {} production lines", lines.len()));
        }
        let Some(module) = module_of(&rel) else {
            continue;
        };
        let pure = module == "domain" || rel.file_name().is_some_and(|n| n == "rules.rs");
        for (n, code) in &lines {
            for target in crate_refs(code) {
                if target != module {
                    scan.edges
                        .entry((module.clone(), target))
                        .or_insert_with(|| format!("{shown}:{n}"));
                }
            }
            if pure {
                for bad in IMPURE {
                    let named = code.contains(&format!("{bad}::"))
                        && !code.contains(&format!("_{bad}::"))
                        && !code.contains(&format!("crate::{bad}"));
                    if named {
                        scan.impure.push(format!("{shown}:{n}: names {bad}"));
                    }
                }
            }
        }
    }
    scan
}

#[test]
fn dependencies_follow_the_written_layers() {
    let layers = layers();
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let scan = scan();
    let mut wrong = Vec::new();
    let modules: BTreeSet<&String> = scan.edges.keys().flat_map(|(a, b)| [a, b]).collect();
    for m in modules {
        if !rank.contains_key(m.as_str()) {
            wrong.push(format!("module `{m}` is not in ARCHITECTURE.md's layers"));
        }
    }
    for ((from, to), place) in &scan.edges {
        if let (Some(f), Some(t)) = (rank.get(from.as_str()), rank.get(to.as_str())) {
            if t >= f {
                wrong.push(format!("{place}: `{from}` uses `{to}` (layer {f} → {t})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against ARCHITECTURE.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_pure_domain_names_no_runtime_or_sql() {
    let scan = scan();
    assert!(
        scan.impure.is_empty(),
        "pure files reaching for runtime or SQL crates:\n{}",
        scan.impure.join("\n")
    );
}

#[test]
fn no_production_file_is_over_600_lines() {
    let scan = scan();
    assert!(
        scan.long.is_empty(),
        "files over {MAX_LINES} production lines:\n{}",
        scan.long.join("\n")
    );
}

#[test]
fn the_scanner_reads_grouped_and_nested_paths() {
    assert_eq!(
        crate_refs("use crate::{routing::{Router, x}, request::Failure};"),
        vec!["routing", "request"]
    );
    assert_eq!(
        crate_refs("let x = crate::persistence::flush(crate::metrics::M);"),
        vec!["persistence", "metrics"]
    );
    let lines = production_lines("a\n// crate::x\n#[cfg(test)]\nmod tests {\n crate::y\n}\n");
    assert_eq!(lines.len(), 2);
    let declared = production_lines("#[cfg(test)]\nmod tests;\nuse crate::z;\n");
    assert_eq!(
        declared.len(),
        3,
        "a test module in its own file does not end the scan"
    );
    assert!(crate_refs(&lines[1].1).is_empty());
}
