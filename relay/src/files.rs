//! Static files (`static_dir`, off by default): a directory served under
//! the paths the API does not use, for example a browser chat page on the
//! relay's own origin (docs/RELAY.md section 2, "Browsers").
//!
//! Only `GET` and `HEAD` of paths outside `/`, `/healthz`, `/metrics` and
//! `/v1/...` reach it, so a file can never shadow a route. A path is
//! percent-decoded segment by segment and refused when a segment is empty,
//! `.` or `..`, starts with a dot (hidden files), or holds a slash,
//! backslash or NUL after decoding; the file found is then resolved
//! (symbolic links followed) and must still lie inside the directory.
//! Anything refused or missing is a 404 JSON error, the same as a route
//! that does not exist.

use std::path::{Path, PathBuf};

use hyper::StatusCode;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};

use crate::api::Resp;
use crate::error::{ApiError, Error, ErrorCode};

/// Largest file served: a page, its script and its WebAssembly module.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A directory of static files.
#[derive(Debug)]
pub(crate) struct StaticFiles {
    /// The directory, resolved at start.
    root: PathBuf,
}

/// The content type of a file, by its extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "ts") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i.saturating_add(1)..i.saturating_add(3))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i = i.saturating_add(3);
        } else {
            out.push(b);
            i = i.saturating_add(1);
        }
    }
    String::from_utf8(out).ok()
}

/// The relative file path a request path names, or `None` if it is not a
/// plain path inside the directory. A path ending in `/` names its
/// `index.html`.
pub(crate) fn relative_path(request_path: &str) -> Option<PathBuf> {
    let rest = request_path.strip_prefix('/')?;
    let mut out = PathBuf::new();
    let mut segments: Vec<&str> = rest.split('/').collect();
    if segments.last() == Some(&"") {
        segments.pop();
        segments.push("index.html");
    }
    for raw in segments {
        let seg = percent_decode(raw)?;
        if seg.is_empty() || seg.starts_with('.') || seg.contains(['/', '\\', '\0']) {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

impl StaticFiles {
    /// Serves `dir`, which must be a readable directory.
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let root = std::fs::canonicalize(dir).map_err(|e| Error::io(format!("static_dir {}", dir.display()), e))?;
        if !root.is_dir() {
            return Err(Error::Config(format!("static_dir {} is not a directory", dir.display())));
        }
        Ok(Self { root })
    }

    /// Answers `GET`/`HEAD` of `request_path` with the file's bytes and
    /// content type, or 404.
    pub(crate) async fn serve(&self, request_path: &str) -> Result<Resp, ApiError> {
        let missing = || ApiError::new(ErrorCode::NoSuchRoute, format!("no route or file {request_path}"));
        let relative = relative_path(request_path).ok_or_else(missing)?;
        let candidate = self.root.join(&relative);
        let resolved = tokio::fs::canonicalize(&candidate).await.map_err(|_| missing())?;
        if !resolved.starts_with(&self.root) {
            return Err(missing());
        }
        let meta = tokio::fs::metadata(&resolved).await.map_err(|_| missing())?;
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            return Err(missing());
        }
        let bytes = tokio::fs::read(&resolved).await.map_err(|_| missing())?;
        let mut resp = Resp::new(crate::inflight::Body::new(bytes));
        *resp.status_mut() = StatusCode::OK;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&resolved)));
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_map_inside_the_directory_or_nowhere() {
        assert_eq!(relative_path("/app.js"), Some(PathBuf::from("app.js")));
        assert_eq!(relative_path("/chat/"), Some(PathBuf::from("chat/index.html")));
        assert_eq!(relative_path("/a%20b.png"), Some(PathBuf::from("a b.png")));
        for bad in [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/a%2f..%2f..%2fetc",
            "/..%5c..%5cetc",
            "/.git/config",
            "/a//b",
            "/x%00.html",
            "/bad%zz",
            "/%c0%ae%c0%ae/etc",
            "relative",
        ] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        for (name, ct) in [
            ("i.html", "text/html; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("m.wasm", "application/wasm"),
            ("s.css", "text/css; charset=utf-8"),
            ("d.json", "application/json"),
            ("l.svg", "image/svg+xml"),
            ("p.PNG", "image/png"),
            ("blob", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), ct, "{name}");
        }
    }
}
