//! TOML recipes: read a file into a typed struct (every field has a default), then apply command-line
//! overrides `--set section.key=value`. Unknown keys are errors that name the key and the file.
//!
//! The value of an override is parsed as a TOML value (`0.01`, `true`, `[60, 120]`, `"text"`); a value
//! that is not valid TOML is taken as a plain string, so `--set model.arch=skipblocknet-s` works.

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Parses one `key.path=value` override.
pub fn parse_override(text: &str) -> Result<(String, toml::Value)> {
    let (key, raw) =
        text.split_once('=').ok_or_else(|| anyhow!("invalid override '{text}': expected key.path=value"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("invalid override '{text}': empty key");
    }
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}

/// Sets `key.path` in a TOML table, creating intermediate tables.
pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let mut parts = key.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = current.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current =
            entry.as_table_mut().ok_or_else(|| anyhow!("cannot set '{key}': '{part}' is a value, not a section"))?;
    }
    unreachable!("split always yields at least one part")
}

/// Deserialises a TOML table into `T`, with `origin` (a file name or "command line") in errors.
fn from_table<T: DeserializeOwned>(table: toml::Table, origin: &str) -> Result<T> {
    // Going through the text form gives toml's error messages with the key path.
    let text = toml::to_string(&table).context("re-serialising the configuration")?;
    toml::from_str::<T>(&text).map_err(|e| anyhow!("{origin}: {}", one_line(&e.to_string())))
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Loads a recipe: the file (when given) then the overrides. Errors name the file or the override.
pub fn load_config<T: DeserializeOwned>(path: Option<&Path>, overrides: &[String]) -> Result<T> {
    let mut table = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file '{}'", path.display()))?;
            // First pass on the file alone, so that its errors carry its name and the line.
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| anyhow!("config file '{}': {}", path.display(), one_line(&e.to_string())))?;
            toml::from_str::<T>(&text)
                .map_err(|e| anyhow!("config file '{}': {}", path.display(), one_line(&e.to_string())))?;
            table
        }
        None => toml::Table::new(),
    };
    if overrides.is_empty() {
        return from_table(table, "configuration");
    }
    for text in overrides {
        let (key, value) = parse_override(text)?;
        set_path(&mut table, &key, value)?;
    }
    from_table(table, &format!("override ({})", overrides.join(", ")))
}

/// The effective configuration as TOML text (written next to a run's metrics, stored in checkpoints).
pub fn to_toml<T: serde::Serialize>(config: &T) -> Result<String> {
    toml::to_string_pretty(config).context("serialising the configuration")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Train {
        lr: f64,
        epochs: usize,
        milestones: Vec<usize>,
    }
    impl Default for Train {
        fn default() -> Self {
            Train { lr: 0.1, epochs: 10, milestones: vec![] }
        }
    }
    #[derive(Debug, Deserialize, Serialize, PartialEq, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Recipe {
        name: String,
        train: Train,
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let p = dir.path().join("recipe.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn defaults_file_and_overrides_compose() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "name = \"a\"\n[train]\nepochs = 3\n");
        let r: Recipe = load_config(Some(&p), &[]).unwrap();
        assert_eq!(r.train, Train { lr: 0.1, epochs: 3, milestones: vec![] });
        let r: Recipe = load_config(
            Some(&p),
            &["train.lr=0.01".into(), "train.milestones=[60, 120]".into(), "name=plain-text".into()],
        )
        .unwrap();
        assert_eq!(r.train.lr, 0.01);
        assert_eq!(r.train.milestones, vec![60, 120]);
        assert_eq!(r.name, "plain-text");
        assert_eq!(r.train.epochs, 3);
    }

    #[test]
    fn unknown_key_in_file_names_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "[train]\nlearning_rate = 3\n");
        let err = load_config::<Recipe>(Some(&p), &[]).unwrap_err().to_string();
        assert!(err.contains("learning_rate"), "{err}");
        assert!(err.contains("recipe.toml"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn unknown_key_in_override_is_an_error() {
        let err = load_config::<Recipe>(None, &["train.lrr=1".into()]).unwrap_err().to_string();
        assert!(err.contains("lrr"), "{err}");
        let err = load_config::<Recipe>(None, &["train.lr".into()]).unwrap_err().to_string();
        assert!(err.contains("key.path=value"), "{err}");
        let err = load_config::<Recipe>(None, &["train.lr=fast".into()]).unwrap_err().to_string();
        assert!(err.contains("lr"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_config::<Recipe>(Some(Path::new("/no/such/recipe.toml")), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("/no/such/recipe.toml"));
    }

    #[test]
    fn round_trips_through_toml() {
        let r = Recipe { name: "x".into(), train: Train::default() };
        let text = to_toml(&r).unwrap();
        let back: Recipe = toml::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
