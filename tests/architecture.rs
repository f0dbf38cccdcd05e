//! The crate's structure, read from its own sources: which file imports
//! which, the floors they stand on, and that no import runs back up or in a
//! circle. `ARCHITECTURE.md` describes the floors; this test keeps it true.
//!
//! Every `use` item and every `crate::…`/`super::…`/`self::…` path in a
//! file's code (comments and string literals removed) is resolved to the
//! file that defines the module it names. A `mod x;` declaration is not an
//! import (a parent owns its children); a `pub use` re-export is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, bottom up: a file may import files of its own floor and of
/// the floors below it, never above.
const FLOORS: &[(&str, &[&str])] = &[
    (
        "base: configuration, logging, registries, pNext chains",
        &["config", "log", "registry", "pnext"],
    ),
    ("kernel objects", &["kernel"]),
    (
        "the device: dispatch, capabilities, queues, driver calls",
        &["device"],
    ),
    ("the sync bridge", &["sync"]),
    ("the swapchain core and platform backends", &["wsi"]),
    ("the loader interface and entry points", &["layer"]),
];

/// A module path (`["wsi", "x11", "backend"]`) for every file under `src/`
/// that belongs to the library (the binaries under `src/bin` are apps on
/// top and are checked only for not being imported).
fn library_files(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if prefix.is_empty() && name == "bin" {
                    continue;
                }
                let mut sub = prefix.to_vec();
                sub.push(name);
                walk(&p, &sub, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut m = prefix.to_vec();
                if stem != "mod" && !(prefix.is_empty() && stem == "lib") {
                    m.push(stem.to_string());
                }
                out.insert(m, p);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The source with comments, string and character literals blanked out.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) {
            // Raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            let close = format!("\"{}", "#".repeat(hashes)).into_bytes();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && (b.get(i + 2) == Some(&b'\'') || (b.get(i + 1) == Some(&b'\\')))
        {
            // A char literal ('x' or '\n'), not a lifetime.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands a `use` tree (`crate::{a::{self, b}, c}`) into its paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn split_top(s: &str) -> Vec<&str> {
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        parts
    }
    fn go(prefix: &[String], s: &str, out: &mut Vec<Vec<String>>) {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        if let Some(open) = s.find('{') {
            let head = s[..open].trim().trim_end_matches("::");
            let inner = &s[open + 1..s.rfind('}').unwrap_or(s.len())];
            let mut p = prefix.to_vec();
            p.extend(
                head.split("::")
                    .filter(|x| !x.is_empty())
                    .map(str::to_string),
            );
            for part in split_top(inner) {
                go(&p, part, out);
            }
        } else {
            let s = s.split(" as ").next().unwrap().trim();
            let mut p = prefix.to_vec();
            for seg in s.split("::").map(str::trim) {
                if seg != "self" || p.is_empty() {
                    p.push(seg.to_string());
                }
            }
            out.push(p);
        }
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// Every path the code refers to through `crate`, `super` or `self`, and
/// every `use` path (which may start with a name a `use` brought in).
fn referenced_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    // `use` items.
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while let Some(off) = code[i..].find("use ") {
        let at = i + off;
        i = at + 4;
        if at > 0 && is_ident(bytes[at - 1]) {
            continue;
        }
        let Some(end) = code[i..].find(';') else {
            break;
        };
        paths.extend(expand_use(&code[i..i + end]));
        i += end;
    }
    // Paths in expressions and types.
    for root in ["crate::", "super::", "self::"] {
        let mut i = 0;
        while let Some(off) = code[i..].find(root) {
            let at = i + off;
            i = at + root.len();
            if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':') {
                continue;
            }
            let mut end = at;
            while end < bytes.len() && (is_ident(bytes[end]) || bytes[end] == b':') {
                end += 1;
            }
            let segs: Vec<String> = code[at..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            paths.push(segs);
        }
    }
    paths
}

/// The file a path from module `from` refers to, if it is one of ours.
fn resolve(
    from: &[String],
    path: &[String],
    files: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "super" | "self" => from.to_vec(),
        _ => return None,
    };
    let mut rest = path;
    if path[0] == "crate" {
        rest = &path[1..];
    } else {
        while let Some(first) = rest.first() {
            match first.as_str() {
                "super" => {
                    base.pop()?;
                }
                "self" => {}
                _ => break,
            }
            rest = &rest[1..];
        }
    }
    // `#[macro_export]` macros live at the crate root but are defined in
    // log.rs.
    if base.is_empty()
        && matches!(
            rest.first().map(String::as_str),
            Some("warn_once" | "info_once")
        )
    {
        return Some(vec!["log".into()]);
    }
    let mut best = base.clone();
    for seg in rest {
        let mut next = best.clone();
        next.push(seg.clone());
        if files.contains_key(&next) {
            best = next;
        } else {
            break;
        }
    }
    files.contains_key(&best).then_some(best)
}

struct Graph {
    files: BTreeMap<Vec<String>, PathBuf>,
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = library_files(&src);
    let mut edges = BTreeMap::new();
    for (module, path) in &files {
        let code = code_only(&std::fs::read_to_string(path).unwrap());
        let mut to = BTreeSet::new();
        for p in referenced_paths(&code) {
            if let Some(target) = resolve(module, &p, &files) {
                if &target != module && !target.is_empty() {
                    to.insert(target);
                }
            }
        }
        edges.insert(module.clone(), to);
    }
    Graph { files, edges }
}

fn floor_of(module: &[String]) -> Option<usize> {
    let top = module.first()?;
    FLOORS
        .iter()
        .position(|(_, mods)| mods.contains(&top.as_str()))
}

fn name(m: &[String]) -> String {
    m.join("::")
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<Vec<String>>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Vec<String>) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in &t.g.edges[v] {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn every_library_file_stands_on_a_floor() {
    let g = graph();
    let homeless: Vec<String> = g
        .files
        .keys()
        .filter(|m| !m.is_empty() && floor_of(m).is_none())
        .map(|m| name(m))
        .collect();
    assert!(
        homeless.is_empty(),
        "modules on no floor (add them to FLOORS and ARCHITECTURE.md): {homeless:?}"
    );
}

#[test]
fn no_import_runs_up_a_floor() {
    let g = graph();
    let mut up = Vec::new();
    for (from, tos) in &g.edges {
        let Some(f) = floor_of(from) else { continue };
        for to in tos {
            if let Some(t) = floor_of(to) {
                if t > f {
                    up.push(format!(
                        "{} (floor {f}) -> {} (floor {t})",
                        name(from),
                        name(to)
                    ));
                }
            }
        }
    }
    assert!(
        up.is_empty(),
        "imports that run back up:\n{}",
        up.join("\n")
    );
}

#[test]
fn no_import_cycles_between_files_or_rooms() {
    let g = graph();
    let file_cycles: Vec<String> = cycles(&g)
        .iter()
        .map(|c| c.iter().map(|m| name(m)).collect::<Vec<_>>().join(" <-> "))
        .collect();
    assert!(
        file_cycles.is_empty(),
        "import cycles between files:\n{}",
        file_cycles.join("\n")
    );
    // Rooms (top-level modules): a cycle between two rooms of one floor.
    let mut rooms: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, tos) in &g.edges {
        let Some(a) = from.first() else { continue };
        for to in tos {
            if let Some(b) = to.first() {
                if a != b {
                    rooms.entry(a).or_default().insert(b);
                }
            }
        }
    }
    for (a, bs) in &rooms {
        for b in bs {
            assert!(
                !rooms.get(b).is_some_and(|x| x.contains(a)),
                "rooms {a} and {b} import each other"
            );
        }
    }
}

#[test]
fn the_parser_sees_imports_it_must_see() {
    let code = code_only(
        "use crate::{a::{self, b::C}, d as e};\n// use crate::zz;\nlet s = \"crate::yy\"; f(super::x::y);",
    );
    let paths = referenced_paths(&code);
    let has = |p: &[&str]| {
        paths
            .iter()
            .any(|q| q.iter().map(String::as_str).eq(p.iter().copied()))
    };
    assert!(has(&["crate", "a"]), "{paths:?}");
    assert!(has(&["crate", "a", "b", "C"]), "{paths:?}");
    assert!(has(&["crate", "d"]), "{paths:?}");
    assert!(has(&["super", "x", "y"]), "{paths:?}");
    assert!(
        !paths.iter().flatten().any(|s| s == "zz" || s == "yy"),
        "{paths:?}"
    );
    // And on the real tree: the layer's entry points reach the swapchain.
    let g = graph();
    let entry = vec!["layer".to_string(), "wsi_entry".to_string()];
    assert!(
        g.edges[&entry]
            .iter()
            .any(|t| t.first().map(String::as_str) == Some("wsi")),
        "layer::wsi_entry must be seen importing wsi"
    );
}
