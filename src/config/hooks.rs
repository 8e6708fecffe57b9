//! The `hooks:` section: named hook instances, each of a type the binary
//! registered (see [`crate::hooks`]), with its settings.
//!
//! The settings are read here only as YAML: what they mean is the hook
//! type's business, which deserializes them when the configuration is put
//! to use ([`crate::hooks::HookTypes`]). That is why an entry remembers
//! the line it was written on: errors found then still name it.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The hook instances, by name, as written.
pub type Hooks = IndexMap<String, HookConfig>;

/// One entry of `hooks:`: `{ type: NAME, ...settings }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookConfig {
    /// The hook type (`api_key`, `rate_limit`, or one the binary added).
    #[serde(rename = "type")]
    pub kind: String,
    /// Every other key: the hook type's settings.
    #[serde(flatten)]
    pub settings: serde_yaml::Mapping,
    /// The line the entry starts on (1-based; 0 when unknown).
    #[serde(skip)]
    pub line: usize,
}

impl HookConfig {
    /// ` at line N`, or nothing when the line is unknown.
    pub fn at_line(&self) -> String {
        if self.line == 0 {
            String::new()
        } else {
            format!(" at line {}", self.line)
        }
    }
}

/// Whether `name` may name a hook: 1-64 letters, digits, `_`, `-`, `.`.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// The line (1-based) of `entry:` in the top-level map `section:` of
/// `text`, when written in block style; 0 when it cannot be found.
pub(super) fn line_of_entry(text: &str, section: &str, entry: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|line| {
        line.strip_prefix(section)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    }) else {
        return 0;
    };
    let mut first_indent = None;
    for (offset, line) in lines[start + 1..].iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 {
            break;
        }
        if *first_indent.get_or_insert(indent) != indent {
            continue;
        }
        let key = trimmed.trim_start_matches(['"', '\'']);
        if key
            .strip_prefix(entry)
            .is_some_and(|rest| rest.trim_start_matches(['"', '\'']).starts_with(':'))
        {
            return start + offset + 2;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_keeps_its_type_and_settings_and_finds_its_line() {
        let text = "listen: 127.0.0.1:1\nhooks:\n  # keys\n  partner_keys: { type: api_key, keys_file: /k, header: x-api-key }\n  per_ip:\n    type: rate_limit\n    rate: 100/s\n";
        #[derive(Deserialize)]
        struct Top {
            hooks: Hooks,
        }
        let top: Top = serde_yaml::from_str(&text.replace("listen: 127.0.0.1:1\n", "")).unwrap();
        let keys = &top.hooks["partner_keys"];
        assert_eq!(keys.kind, "api_key");
        assert_eq!(keys.settings.len(), 2);
        assert_eq!(top.hooks["per_ip"].settings.len(), 1);
        assert_eq!(line_of_entry(text, "hooks", "partner_keys"), 4);
        assert_eq!(line_of_entry(text, "hooks", "per_ip"), 5);
        assert_eq!(line_of_entry(text, "hooks", "per"), 0);
        assert_eq!(line_of_entry(text, "listen", "x"), 0);
        assert!(valid_name("per_ip") && !valid_name("a b") && !valid_name(""));
    }
}
