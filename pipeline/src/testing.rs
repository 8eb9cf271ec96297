//! Helpers shared by the crate's unit tests (and, through `#[path]`, by the integration
//! tests in tests/common).

/// A fake process environment for code that takes its environment as a function (so
/// that tests neither read nor change the real one): `vars` and nothing else is set.
pub(crate) fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Asserts that `text` (an error message, a table) contains every one of `parts`; a
/// failure names the missing part and shows the text.
pub(crate) fn assert_mentions(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }
}
