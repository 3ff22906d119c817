//! Tidy checks: rules of the codebase that the machine checks instead of memory.
//!
//! Each test reads the repository's own files: docs name only paths that exist, every
//! metric the engine emits is documented (and nothing documented is missing), core stays
//! free of I/O crates, every Rust file opens with a module doc, no file outside tests is
//! over 600 lines, and no source comment cites an issue number or a document outside the
//! repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent: the workspace root")
        .to_path_buf()
}

/// Every file under the root, as paths relative to it with `/` separators; build output,
/// VCS data and fuzz corpora are skipped.
fn repo_files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if matches!(
                    name.as_ref(),
                    "target" | ".git" | "node_modules" | "corpus" | "artifacts"
                ) {
                    continue;
                }
                walk(&path, root, out);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = root();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn rust_files() -> Vec<String> {
    repo_files()
        .into_iter()
        .filter(|f| f.ends_with(".rs"))
        .collect()
}

/// Markdown files whose named paths are checked.
fn doc_files() -> Vec<String> {
    repo_files()
        .into_iter()
        .filter(|f| f == "README.md" || (f.starts_with("docs/") && f.ends_with(".md")))
        .collect()
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|f| !read(f).starts_with("//!"))
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line saying what they are for: {missing:?}"
    );
}

/// The longest a non-test `.rs` file may be: past it a file holds several concerns and
/// is split by them (tests are exempt: a table of cases reads fine at any length).
const MAX_LINES: usize = 600;

/// True for test code: files under a `tests/` directory (integration tests, the workspace
/// tests crate, `src/**/tests/`) and `tests.rs` files (`#[cfg(test)]` modules moved out).
fn is_test_file(relative: &str) -> bool {
    relative.starts_with("tests/")
        || relative.contains("/tests/")
        || relative == "tests.rs"
        || relative.ends_with("/tests.rs")
}

#[test]
fn no_rust_file_outside_tests_is_over_the_line_limit() {
    let long: Vec<String> = rust_files()
        .into_iter()
        .filter(|f| !is_test_file(f))
        .filter_map(|f| {
            let lines = read(&f).lines().count();
            (lines > MAX_LINES).then(|| format!("{f}: {lines} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these files by concern (at most {MAX_LINES} lines outside tests):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_line_limit_exempts_tests_only() {
    assert!(is_test_file("tests/src/mesh.rs"));
    assert!(is_test_file("crates/replication-engine/tests/lifecycle.rs"));
    assert!(is_test_file("crates/replication-core/src/cdc/tests.rs"));
    assert!(is_test_file(
        "crates/replication-core/src/config/tests/cases.rs"
    ));
    assert!(!is_test_file("crates/replication-core/src/config.rs"));
    assert!(!is_test_file(
        "crates/replication-testkit/src/memory_store.rs"
    ));
    assert!(!is_test_file(
        "crates/replication-core/src/test_fixtures.rs"
    ));
}

/// The comment part of a line of Rust, approximately: from `//` outside a string literal.
fn comment_of(line: &str) -> Option<&str> {
    let mut in_string = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes[i + 1] == b'/' => return Some(&line[i..]),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Why a comment cites something outside the code, if it does.
fn outside_citation(comment: &str, docs_in_repo: &BTreeSet<String>) -> Option<String> {
    let lower = comment.to_ascii_lowercase();
    for marker in ["issue ", "issue #", "issues "] {
        if let Some(at) = lower.find(marker) {
            let rest = &lower[at + marker.len()..];
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                return Some(format!("cites an issue ({marker}…)"));
            }
        }
    }
    let bytes = comment.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let preceded_by_word =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'&');
        if b == b'#' && !preceded_by_word && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return Some("cites an issue number (#N)".into());
        }
    }
    if lower.contains("shared/design") || lower.contains("developers.md") {
        return Some("cites a document outside the repository".into());
    }
    for word in comment.split(|c: char| c.is_whitespace() || "()[]`,;'\"".contains(c)) {
        let word = word.trim_end_matches(['.', ':']);
        if let Some(stem) = word.strip_suffix(".md") {
            let name = format!("{}.md", stem.rsplit('/').next().unwrap_or(stem));
            if !stem.is_empty() && !docs_in_repo.contains(&name) {
                return Some(format!(
                    "cites {word}, which is not a document of this repository"
                ));
            }
        }
    }
    None
}

#[test]
fn no_source_comment_cites_an_issue_or_an_outside_document() {
    let docs_in_repo: BTreeSet<String> = repo_files()
        .into_iter()
        .filter(|f| f.ends_with(".md"))
        .map(|f| f.rsplit('/').next().unwrap_or(&f).to_owned())
        .collect();
    let mut offences = Vec::new();
    for file in rust_files() {
        if file == "tests/tests/tidy.rs" {
            continue; // Its own examples name what it looks for.
        }
        for (n, line) in read(&file).lines().enumerate() {
            if let Some(why) = comment_of(line).and_then(|c| outside_citation(c, &docs_in_repo)) {
                offences.push(format!("{file}:{}: {why}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "comments must stand on their own:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_citation_check_catches_what_it_should() {
    let docs: BTreeSet<String> = ["PROTOCOL.md".to_owned()].into();
    assert!(outside_citation("// fixed for issue 13", &docs).is_some());
    assert!(outside_citation("// see #42", &docs).is_some());
    assert!(outside_citation("// as BRIEF.md says", &docs).is_some());
    assert!(outside_citation("// docs/PROTOCOL.md, Conflict order", &docs).is_none());
    assert!(outside_citation("// &#123; and a#1 are not issues", &docs).is_none());
    assert_eq!(comment_of(r#"let s = "a // b"; // real"#), Some("// real"));
}

/// Backticked tokens and link targets of a Markdown text that name repository paths.
fn named_paths(doc: &str, text: &str) -> Vec<String> {
    const EXTENSIONS: &[&str] = &[
        ".rs", ".md", ".toml", ".json", ".yml", ".yaml", ".sh", ".html", ".png", ".txt", ".js",
        ".css",
    ];
    const ROOTS: &[&str] = &[
        "crates/", "docs/", "tests/", "xtask/", "fuzz/", ".ci/", ".cargo/",
    ];
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        // Odd parts are inside backticks.
        if i % 2 == 0 || part.contains(char::is_whitespace) {
            continue;
        }
        if part.contains(['*', '{', '}', '<', '>', '$', '|']) || part.contains("://") {
            continue;
        }
        if part.starts_with(['/', '~', '-']) || part.starts_with("../") {
            continue;
        }
        // A bare extension (`.rs`) names a kind of file, not a file.
        let has_extension = EXTENSIONS.iter().any(|e| part.ends_with(e) && part != *e);
        let rooted = ROOTS.iter().any(|r| part.starts_with(r));
        if has_extension || rooted {
            out.push(part.trim_end_matches('/').to_owned());
        }
    }
    let dir = Path::new(doc).parent().unwrap_or(Path::new(""));
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("");
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            let joined = dir.join(target);
            let mut normal = PathBuf::new();
            for component in joined.components() {
                match component {
                    std::path::Component::ParentDir => {
                        normal.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => normal.push(other),
                }
            }
            out.push(normal.to_string_lossy().replace('\\', "/"));
        }
    }
    out
}

#[test]
fn every_path_named_in_the_docs_exists() {
    let files = repo_files();
    let exists = |path: &str| {
        files.iter().any(|f| {
            f == path
                || f.ends_with(&format!("/{path}"))
                || f.starts_with(&format!("{path}/"))
                || f.contains(&format!("/{path}/"))
        })
    };
    let mut missing = Vec::new();
    for doc in doc_files() {
        for path in named_paths(&doc, &read(&doc)) {
            if !exists(&path) {
                missing.push(format!("{doc}: {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs name paths that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_path_check_reads_backticks_and_links() {
    let text = "see `crates/replication-core/src/stamp.rs`, `put/get/del`, `{prefix}cdc`, `.rs`, \
                [the protocol](PROTOCOL.md#keys) and `/usr/bin/chromium`";
    assert_eq!(
        named_paths("docs/ARCHITECTURE.md", text),
        ["crates/replication-core/src/stamp.rs", "docs/PROTOCOL.md"]
    );
}

/// Metric names: string literals `"replication_…"` of library and daemon sources.
fn emitted_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in rust_files() {
        let library = file.starts_with("crates/") && file.contains("/src/");
        let support = [
            "replication-testkit",
            "replication-bench",
            "replication-sim",
        ]
        .iter()
        .any(|c| file.starts_with(&format!("crates/{c}/")));
        if !library || support || file.ends_with("/tests.rs") || file.contains("/tests/") {
            continue;
        }
        for part in read(&file).split('"').skip(1).step_by(2) {
            if part.starts_with("replication_")
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                names.insert(part.to_owned());
            }
        }
    }
    names
}

/// Metric names in the rows of docs/OPERATIONS.md's tables (`| `name` | type | ...`).
fn documented_metric_names() -> BTreeSet<String> {
    read("docs/OPERATIONS.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `replication_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|rest| format!("replication_{rest}"))
        .collect()
}

#[test]
fn every_metric_is_documented_and_every_documented_metric_exists() {
    let emitted = emitted_metric_names();
    let documented = documented_metric_names();
    assert!(
        emitted.len() > 10,
        "the scan found too few metrics: {emitted:?}"
    );
    let undocumented: Vec<_> = emitted.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&emitted).collect();
    assert!(
        undocumented.is_empty() && phantom.is_empty(),
        "docs/OPERATIONS.md and the code disagree: emitted but not documented {undocumented:?}; \
         documented but never emitted {phantom:?}"
    );
}

/// `cargo tree` of `package`'s normal dependencies (default features), one crate per line.
fn dependency_tree(package: &str) -> String {
    let output = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "--package",
            package,
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        tree.contains(package),
        "unexpected cargo tree output: {tree}"
    );
    tree
}

/// The crates of `tree` named in `names`.
fn named_in<'a>(tree: &'a str, names: &[&str]) -> BTreeSet<&'a str> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| names.contains(name))
        .collect()
}

#[test]
fn core_depends_on_no_io_crate() {
    const FORBIDDEN: &[&str] = &["fred", "rusqlite", "tokio", "mio", "libsqlite3-sys", "sqlx"];
    let tree = dependency_tree("replication-core");
    let offenders = named_in(&tree, FORBIDDEN);
    assert!(
        offenders.is_empty(),
        "replication-core must stay free of I/O crates but depends on {offenders:?}"
    );
}

#[test]
fn default_builds_of_the_facade_and_the_daemon_do_not_link_sync_engine() {
    // sync-engine is AGPL-3.0: only replication-sync-engine and replicationd's
    // `sync-engine` feature may bring it in.
    for package in ["replication-engine", "replicationd"] {
        let tree = dependency_tree(package);
        let linked = named_in(&tree, &["sync-engine", "replication-sync-engine", "sqlx"]);
        assert!(
            linked.is_empty(),
            "{package} links {linked:?} in its default build; sync-engine must stay opt-in"
        );
    }
}
