//! The template set: embedded defaults from `templates/`, replaced file by file from a
//! directory the operator names (`--template-dir`), rendered with minijinja.
//!
//! `hooks.md` holds the site-specific steps (notifications, change tickets) as macros, so a team
//! usually overrides only that file.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

use crate::RunbookError;

/// The embedded templates, by the file name an override must use.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("upgrade.md", include_str!("../templates/upgrade.md")),
    ("rollback.md", include_str!("../templates/rollback.md")),
    ("checks.md", include_str!("../templates/checks.md")),
    ("hooks.md", include_str!("../templates/hooks.md")),
    ("staging.md", include_str!("../templates/staging.md")),
    ("report.html", include_str!("../templates/report.html")),
];

/// The templates a render uses: the embedded ones, with any overrides on top.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    overrides: BTreeMap<String, String>,
}

impl Templates {
    pub fn embedded() -> Self {
        Templates::default()
    }

    /// Read every regular file in `dir`: a file named like an embedded template replaces it;
    /// other `.md`/`.html` files are added so that replaced templates can include them.
    pub fn with_dir(dir: &Path) -> Result<Self, RunbookError> {
        let io = |source| RunbookError::TemplateDir { path: dir.display().to_string(), source };
        let mut overrides = BTreeMap::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let known = EMBEDDED.iter().any(|(n, _)| *n == name);
            if !(known || name.ends_with(".md") || name.ends_with(".html")) {
                return Err(RunbookError::UnusedTemplate {
                    path: path.display().to_string(),
                    known: EMBEDDED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                });
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|source| RunbookError::TemplateDir { path: path.display().to_string(), source })?;
            overrides.insert(name, text);
        }
        Ok(Templates { overrides })
    }

    /// The names that came from the override directory.
    pub fn overridden(&self) -> impl Iterator<Item = &str> {
        self.overrides.keys().map(String::as_str)
    }

    fn environment(&self) -> Result<Environment<'_>, RunbookError> {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .expect("static syntax config"),
        );
        // A misspelt field in a template must fail the render, not print an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Untrusted values (names, addresses, paths) reach shell lines only through these.
        env.add_filter("q", |s: String| crate::shell::quote(&s));
        env.add_filter("qall", |items: Vec<String>| {
            items.iter().map(|s| crate::shell::quote(s)).collect::<Vec<_>>().join(" ")
        });
        env.add_filter("oneline", |s: String| crate::shell::one_line(&s));
        env.add_filter("re", |s: String| crate::shell::regex_literal(&s));
        env.add_filter("json", |s: String| serde_json::Value::String(s).to_string());
        for (name, text) in EMBEDDED {
            if !self.overrides.contains_key(*name) {
                env.add_template(name, text).map_err(|e| template_error(name, &e))?;
            }
        }
        for (name, text) in &self.overrides {
            env.add_template(name, text).map_err(|e| template_error(name, &e))?;
        }
        Ok(env)
    }

    /// Render template `name` with `view` as its context.
    pub fn render<T: Serialize>(&self, name: &str, view: &T) -> Result<String, RunbookError> {
        let env = self.environment()?;
        let template = env.get_template(name).map_err(|e| template_error(name, &e))?;
        // The view's fields are top-level names; `r` is the whole view, for passing to macros.
        let root = Value::from(Serde(view));
        template.render(context! { r => root.clone(), ..root }).map_err(|e| template_error(name, &e))
    }
}

fn template_error(name: &str, err: &minijinja::Error) -> RunbookError {
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        detail.push_str(&format!(": {s}"));
        source = s.source();
    }
    if let (Some(file), Some(line)) = (err.name(), err.line()) {
        detail.push_str(&format!(" (at {file} line {line})"));
    }
    RunbookError::Template { name: name.to_string(), detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Tiny {
        who: &'static str,
    }

    #[test]
    fn every_embedded_template_parses() {
        let templates = Templates::embedded();
        let env = templates.environment().unwrap();
        for (name, _) in EMBEDDED {
            env.get_template(name).unwrap();
        }
    }

    #[test]
    fn a_file_in_the_directory_replaces_the_embedded_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hooks.md"), "{% macro before_upgrade(r) %}call {{ r }}{% endmacro %}").unwrap();
        std::fs::write(dir.path().join("staging.md"), "hello {{ who }}\n").unwrap();
        let t = Templates::with_dir(dir.path()).unwrap();
        assert_eq!(t.overridden().collect::<Vec<_>>(), ["hooks.md", "staging.md"]);
        assert_eq!(t.render("staging.md", &Tiny { who: "team" }).unwrap(), "hello team\n");
    }

    #[test]
    fn a_stray_file_and_a_bad_field_are_reported_with_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let err = Templates::with_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("notes.txt") && err.contains("upgrade.md"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("staging.md"), "line one\n{{ whom }}\n").unwrap();
        let err = Templates::with_dir(dir.path()).unwrap().render("staging.md", &Tiny { who: "x" }).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("staging.md") && text.contains("line 2"), "{text}");
    }
}
