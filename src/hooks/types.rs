//! The hook types a binary has, and the instances a configuration makes of
//! them.

use super::Hook;
use crate::config::{HookConfig, Hooks};
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;

/// Builds an instance from its settings (YAML text), or says what is wrong
/// with them.
type Factory = Box<dyn Fn(&str) -> Result<Arc<dyn Hook>, String> + Send + Sync>;

/// The hook types a binary registered, by name.
#[derive(Default)]
pub struct HookTypes {
    types: BTreeMap<String, Factory>,
}

/// The hook instances of one configuration, by name.
#[derive(Default)]
pub struct HookSet {
    instances: IndexMap<String, (HookConfig, Arc<dyn Hook>)>,
}

impl HookTypes {
    /// No hook types.
    pub fn new() -> Self {
        HookTypes::default()
    }

    /// The built-in hook types: `api_key` and `rate_limit`.
    pub fn built_in() -> Self {
        let mut types = HookTypes::new();
        types.register("api_key", super::api_key::ApiKey::from_config);
        types.register("rate_limit", super::rate_limit::RateLimit::from_config);
        types
    }

    /// Register the type `name`, whose instances `make` builds from their
    /// settings (any serde type). Replaces a type registered under that
    /// name before.
    pub fn register<S, H, E, F>(&mut self, name: &str, make: F)
    where
        S: DeserializeOwned,
        H: Hook,
        E: Display,
        F: Fn(S) -> Result<H, E> + Send + Sync + 'static,
    {
        let factory = move |yaml: &str| -> Result<Arc<dyn Hook>, String> {
            let settings: S =
                serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(yaml))
                    .map_err(|e| {
                        let path = e.path().to_string();
                        let message = without_position(e.inner());
                        // serde_yaml names the key of some errors itself.
                        match message.strip_prefix(&format!("{path}: ")) {
                            _ if path == "." => message,
                            Some(bare) => format!("{path}: {bare}"),
                            None => format!("{path}: {message}"),
                        }
                    })?;
            let hook = make(settings).map_err(|e| e.to_string())?;
            Ok(Arc::new(hook))
        };
        self.types.insert(name.to_string(), Box::new(factory));
    }

    /// The names of the registered types, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// The instances `hooks` describes. An instance of `previous` whose
    /// entry is unchanged is kept (or replaced as its
    /// [`Hook::reload`] says); the others are built anew. Errors name the
    /// key and the line (the caller adds the file).
    pub fn instantiate(
        &self,
        hooks: &Hooks,
        previous: Option<&HookSet>,
    ) -> Result<HookSet, String> {
        let mut instances = IndexMap::with_capacity(hooks.len());
        for (name, config) in hooks {
            let kept = previous
                .and_then(|set| set.instances.get(name))
                .filter(|(old, _)| old.kind == config.kind && old.settings == config.settings);
            let hook = match kept {
                Some((_, hook)) => match unpanicked(|| hook.reload()) {
                    Ok(None) => Arc::clone(hook),
                    Ok(Some(replacement)) => Arc::from(replacement),
                    Err(e) => return Err(in_entry(name, config, &e)),
                },
                None => self.build(name, config)?,
            };
            instances.insert(name.clone(), (config.clone(), hook));
        }
        Ok(HookSet { instances })
    }

    fn build(&self, name: &str, config: &HookConfig) -> Result<Arc<dyn Hook>, String> {
        let Some(factory) = self.types.get(&config.kind) else {
            let known: Vec<&str> = self.names().collect();
            return Err(format!(
                "hooks.{name}.type: no hook type `{}` in this binary (it has: {}){}",
                config.kind,
                known.join(", "),
                config.at_line()
            ));
        };
        let yaml = serde_yaml::to_string(&config.settings).map_err(|e| e.to_string())?;
        unpanicked(|| factory(&yaml)).map_err(|e| in_entry(name, config, &e))
    }
}

/// `error` about the entry `name`: `hooks.NAME.KEY: ... at line N` when it
/// starts with a path into the settings (`rate: ...`), else
/// `hooks.NAME: ... at line N`.
fn in_entry(name: &str, config: &HookConfig, error: &str) -> String {
    let separator = if error
        .split_once(": ")
        .is_some_and(|(key, _)| is_key_path(key))
    {
        "."
    } else {
        ": "
    };
    format!("hooks.{name}{separator}{error}{}", config.at_line())
}

/// `make()`, with a panic (a hook type's code is not switchyard's) turned
/// into an error: a reload it breaks is refused, and the process goes on.
fn unpanicked<T>(make: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(format!("the hook type panicked: {why}"))
    })
}

/// A serde_yaml error without its ` at line L column C`, which counts lines
/// of the settings alone, not of the file.
fn without_position(error: &serde_yaml::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) if error.location().is_some() => text[..at].to_string(),
        _ => text,
    }
}

/// Whether `text` reads as a key path (`rate`, `limits.burst`, `keys[1]`).
fn is_key_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b))
}

impl HookSet {
    /// The instance called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Hook>> {
        self.instances.get(name).map(|(_, hook)| hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde::Deserialize;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CounterSettings {
        start: u32,
    }

    struct Counter(AtomicU32);

    impl Hook for Counter {}

    fn types() -> HookTypes {
        let mut types = HookTypes::new();
        types.register("counter", |s: CounterSettings| {
            assert!(s.start != 13, "unlucky");
            if s.start > 100 {
                return Err("start: at most 100");
            }
            Ok(Counter(AtomicU32::new(s.start)))
        });
        types
    }

    fn hooks_of(yaml: &str) -> Hooks {
        let text = format!("{yaml}upstreams:\n  a:\n    peers: [127.0.0.1:1]\n");
        Config::parse(&text, "t.yaml").unwrap().hooks
    }

    #[test]
    fn unchanged_instances_are_kept_and_changed_ones_built_anew() {
        let types = types();
        let first = types
            .instantiate(
                &hooks_of(
                    "hooks:\n  a: { type: counter, start: 1 }\n  b: { type: counter, start: 2 }\n",
                ),
                None,
            )
            .unwrap();
        let second = types
            .instantiate(
                &hooks_of(
                    "hooks:\n  a: { type: counter, start: 1 }\n  b: { type: counter, start: 3 }\n",
                ),
                Some(&first),
            )
            .unwrap();
        assert!(Arc::ptr_eq(
            first.get("a").unwrap(),
            second.get("a").unwrap()
        ));
        assert!(!Arc::ptr_eq(
            first.get("b").unwrap(),
            second.get("b").unwrap()
        ));
        assert!(second.get("b").is_some() && second.get("c").is_none());
        let _ = Counter(AtomicU32::new(0)).0.load(Ordering::Relaxed);
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let types = types();
        let error = |yaml: &str| types.instantiate(&hooks_of(yaml), None).err().unwrap();
        let message = error("hooks:\n  a: { type: nope }\n");
        assert_eq!(
            message,
            "hooks.a.type: no hook type `nope` in this binary (it has: counter) at line 2"
        );
        let message = error("hooks:\n  a:\n    type: counter\n    start: many\n");
        assert!(
            message.starts_with("hooks.a.start: invalid type: string \"many\"")
                && message.ends_with(" at line 2"),
            "{message}"
        );
        let message = error("hooks:\n  a: { type: counter, stop: 1 }\n");
        assert!(
            message.starts_with("hooks.a.stop: unknown field `stop`"),
            "{message}"
        );
        assert_eq!(
            error("hooks:\n  a: { type: counter, start: 101 }\n"),
            "hooks.a.start: at most 100 at line 2"
        );
        assert_eq!(
            error("hooks:\n  a: { type: counter, start: 13 }\n"),
            "hooks.a: the hook type panicked: unlucky at line 2"
        );
    }
}
