//! What the HTML pages (`corpus report`, `corpus tokens report --html`) share.

/// `s` with `&`, `<`, `>` and `"` escaped, for text and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
