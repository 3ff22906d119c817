//! Headless Chromium, to look at a page as a person would: the DOM after the page's
//! scripts ran, or a screenshot. Each call starts a fresh browser with its own profile and
//! nothing that talks to the network on its own. Chromium comes with the Debian package
//! `chromium`, which `cargo xtask test` installs where it is missing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest a browser may take for one page.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

fn binary() -> String {
    std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "chromium".into())
}

fn run(args: &[String]) -> Result<Output, String> {
    let profile = tempfile::tempdir().map_err(|e| format!("browser profile dir: {e}"))?;
    let mut child = Command::new(binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} ({e}): `cargo xtask test` installs it (Debian package \
                 chromium), or point CHROMIUM_BIN at one",
                binary()
            )
        })?;
    // The pipes are drained by `wait_with_output`; poll for the exit first so a browser
    // that hangs is killed rather than waited on forever.
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the browser did not finish within {PAGE_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("waiting for the browser: {e}")),
        }
    }
    child
        .wait_with_output()
        .map_err(|e| format!("reading the browser's output: {e}"))
}

/// The page's DOM after it loaded and its scripts ran.
///
/// # Errors
/// When the browser cannot run or prints nothing.
pub fn dump_dom(url: &str) -> Result<String, String> {
    let out = run(&["--dump-dom".into(), url.into()])?;
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    if dom.trim().is_empty() {
        return Err(format!(
            "the browser printed no DOM for {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(dom)
}

/// A PNG screenshot of the page at `width`×`height` into `path`.
///
/// # Errors
/// When the browser cannot run or writes no image.
pub fn screenshot(url: &str, path: &Path, width: u32, height: u32) -> Result<(), String> {
    let out = run(&[
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
        url.into(),
    ])?;
    let png = std::fs::read(path).map_err(|e| {
        format!(
            "no screenshot at {} ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(format!("{} is not a PNG", path.display()));
    }
    Ok(())
}

/// The markup of the element that opens with `opening` (e.g. `<section ... data-peer="b"`),
/// up to its closing `</{tag}>`; elements of that tag must not nest inside it.
pub fn element<'a>(dom: &'a str, opening: &str, tag: &str) -> Option<&'a str> {
    let start = dom.find(opening)?;
    let close = format!("</{tag}>");
    let end = start + dom[start..].find(&close)? + close.len();
    Some(&dom[start..end])
}

/// The text of the element carrying `data-field="{field}"` inside `html`, tags removed.
pub fn field_text(html: &str, field: &str) -> Option<String> {
    let marker = format!("data-field=\"{field}\"");
    let at = html.find(&marker)?;
    let open_end = at + html[at..].find('>')? + 1;
    // The element ends at the first closing tag of its own name; fields hold no nested
    // elements of their own tag.
    let tag_start = html[..at].rfind('<')? + 1;
    let tag: String = html[tag_start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let end = open_end + html[open_end..].find(&format!("</{tag}>"))?;
    Some(strip_tags(&html[open_end..end]))
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_by_their_data_attribute() {
        let html = r#"<section data-peer="b"><div class="figure" data-field="lag">3 ms<small>behind</small></div><dd data-field="gaps">1 trimmed &amp; more</dd></section><section data-peer="c">"#;
        let b = element(html, r#"<section class="x" data-peer="b""#, "section");
        assert!(b.is_none(), "the opening must match exactly");
        let b = element(html, r#"<section data-peer="b""#, "section").expect("section b");
        assert!(!b.contains("data-peer=\"c\""));
        assert_eq!(field_text(b, "lag").as_deref(), Some("3 msbehind"));
        assert_eq!(field_text(b, "gaps").as_deref(), Some("1 trimmed & more"));
        assert_eq!(field_text(b, "cursor"), None);
    }
}
