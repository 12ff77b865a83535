//! Applications (算力应用): job templates shipped as data (`catalog/applications.toml`).
//!
//! An application has typed parameters and a `job` table: a job body in which strings may name
//! parameters. The rules, small on purpose:
//! - `"{p}"` anywhere in a string is replaced by the parameter's value;
//! - a string that is exactly `"{p}"`, with `p` an integer parameter, becomes that number;
//! - a string that is exactly `"{p}*N"` becomes the integer `p × N` (e.g. `"{hours}*3600"`);
//! - a top-level job field that names an optional parameter left out is left out itself.
//!
//! Every placeholder must name a declared parameter, and defaults must satisfy their own bounds:
//! [`parse`] checks both, so a template that loads always expands for valid parameters.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::toml_error;
use crate::error::FormatError;

/// Applications in one catalogue, at most this many.
pub const APPS_MAX: usize = 256;

/// Parameters of one application, at most this many.
pub const PARAMS_MAX: usize = 32;

/// Longest string parameter value, in bytes.
pub const VALUE_BYTES_MAX: usize = 1024;

/// The applications shipped with Suanwang, as text.
pub const BUILTIN_TEXT: &str = include_str!("../../../catalog/applications.toml");

/// The applications shipped with Suanwang.
pub fn builtin() -> AppCatalog {
    parse("catalog/applications.toml", BUILTIN_TEXT).expect("the built-in applications are valid (tested)")
}

/// A catalogue of applications.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppCatalog {
    /// In file order.
    pub apps: Vec<App>,
}

impl AppCatalog {
    /// The application named `name`.
    pub fn get(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }
}

/// One application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Unique name, e.g. `fine-tune`.
    pub name: String,
    /// English title.
    pub title: String,
    /// Chinese title.
    pub title_zh: String,
    /// `training`, `inference`, `batch` or `hpc`.
    pub kind: String,
    /// What it does and what it needs.
    pub description: String,
    /// Parameters.
    #[serde(default, rename = "param")]
    pub params: Vec<Param>,
    /// The job body template.
    pub job: Map<String, Value>,
}

/// A parameter of an application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// Name, used as `{name}` in the template.
    pub name: String,
    /// `string` or `integer`.
    #[serde(rename = "type")]
    pub kind: ParamKind,
    /// What it means.
    pub description: String,
    /// Must be given.
    #[serde(default)]
    pub required: bool,
    /// Value when not given.
    #[serde(default)]
    pub default: Option<Value>,
    /// Smallest integer allowed.
    #[serde(default)]
    pub min: Option<i64>,
    /// Largest integer allowed.
    #[serde(default)]
    pub max: Option<i64>,
}

/// A parameter's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// Text.
    String,
    /// A whole number.
    Integer,
}

/// Why parameters do not fit an application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A parameter the application does not have.
    #[error("application {app:?} has no parameter {param:?} (it has: {known})")]
    UnknownParam {
        /// Application.
        app: String,
        /// The parameter given.
        param: String,
        /// Its parameters, comma-separated.
        known: String,
    },
    /// A required parameter left out.
    #[error("application {app:?} needs the parameter {param:?}")]
    Missing {
        /// Application.
        app: String,
        /// The parameter.
        param: String,
    },
    /// A value of the wrong type or out of bounds.
    #[error("parameter {param:?}: {reason}")]
    Invalid {
        /// The parameter.
        param: String,
        /// Why.
        reason: String,
    },
}

impl ExpandError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ExpandError::UnknownParam { .. } => "unknown_param",
            ExpandError::Missing { .. } => "missing_param",
            ExpandError::Invalid { .. } => "invalid_param",
        }
    }
}

impl Param {
    /// Checks a value against the parameter's type and bounds.
    fn check(&self, value: &Value) -> Result<(), ExpandError> {
        let invalid = |reason: String| ExpandError::Invalid { param: self.name.clone(), reason };
        match (self.kind, value) {
            (ParamKind::String, Value::String(s)) => {
                if s.is_empty() || s.len() > VALUE_BYTES_MAX {
                    return Err(invalid(format!("must be 1 to {VALUE_BYTES_MAX} bytes")));
                }
                if s.contains('{') || s.contains('}') {
                    return Err(invalid("must not contain { or }".to_owned()));
                }
                Ok(())
            }
            (ParamKind::Integer, Value::Number(n)) => {
                let n = n.as_i64().ok_or_else(|| invalid("must be a whole number".to_owned()))?;
                if let Some(min) = self.min
                    && n < min
                {
                    return Err(invalid(format!("must be at least {min}, not {n}")));
                }
                if let Some(max) = self.max
                    && n > max
                {
                    return Err(invalid(format!("must be at most {max}, not {n}")));
                }
                Ok(())
            }
            (ParamKind::String, _) => Err(invalid("must be a string".to_owned())),
            (ParamKind::Integer, _) => Err(invalid("must be a whole number".to_owned())),
        }
    }
}

impl App {
    /// The job body for these parameters (defaults fill the rest).
    pub fn expand(&self, given: &Map<String, Value>) -> Result<Map<String, Value>, ExpandError> {
        if let Some(unknown) = given.keys().find(|k| !self.params.iter().any(|p| &p.name == *k)) {
            return Err(ExpandError::UnknownParam {
                app: self.name.clone(),
                param: unknown.clone(),
                known: self.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
        let mut values = Map::new();
        for param in &self.params {
            match given.get(&param.name).or(param.default.as_ref()) {
                Some(value) => {
                    param.check(value)?;
                    values.insert(param.name.clone(), value.clone());
                }
                None if param.required => {
                    return Err(ExpandError::Missing { app: self.name.clone(), param: param.name.clone() });
                }
                None => {}
            }
        }
        let mut job = Map::new();
        for (field, template) in &self.job {
            if let Some(value) = fill(template, &values)? {
                job.insert(field.clone(), value);
            }
        }
        Ok(job)
    }
}

/// Placeholders in a string: the names between `{` and `}`.
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start + 1..].find('}') else { break };
        out.push(&rest[start + 1..start + 1 + len]);
        rest = &rest[start + 1 + len + 1..];
    }
    out
}

/// `"{p}"` or `"{p}*N"`: the parameter and the factor.
fn whole_reference(text: &str) -> Option<(&str, Option<i64>)> {
    let inner = text.strip_prefix('{')?;
    let (name, after) = inner.split_once('}')?;
    if name.contains('{') {
        return None;
    }
    if after.is_empty() {
        return Some((name, None));
    }
    let factor = after.strip_prefix('*')?.parse::<i64>().ok()?;
    Some((name, Some(factor)))
}

/// Fills a template value; `None` when it names an optional parameter left out.
fn fill(template: &Value, values: &Map<String, Value>) -> Result<Option<Value>, ExpandError> {
    fill_in(template, values, false)
}

/// `in_list`: an item of a list (a command's arguments, models) stays text even when it is
/// exactly a number's placeholder.
fn fill_in(template: &Value, values: &Map<String, Value>, in_list: bool) -> Result<Option<Value>, ExpandError> {
    Ok(match template {
        Value::String(text) => {
            if placeholders(text).iter().any(|name| !values.contains_key(*name)) {
                return Ok(None);
            }
            if !in_list
                && let Some((name, factor)) = whole_reference(text)
                && let Some(Value::Number(n)) = values.get(name)
            {
                let n = n.as_i64().unwrap_or(0);
                let product = n.checked_mul(factor.unwrap_or(1)).ok_or_else(|| ExpandError::Invalid {
                    param: name.to_owned(),
                    reason: format!("{text} overflows"),
                })?;
                return Ok(Some(Value::from(product)));
            }
            let mut out = text.clone();
            for (name, value) in values {
                let replacement = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out = out.replace(&format!("{{{name}}}"), &replacement);
            }
            Some(Value::String(out))
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match fill_in(item, values, true)? {
                    Some(v) => out.push(v),
                    None => return Ok(None),
                }
            }
            Some(Value::Array(out))
        }
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, item) in fields {
                match fill(item, values)? {
                    Some(v) => {
                        out.insert(key.clone(), v);
                    }
                    None => return Ok(None),
                }
            }
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    #[serde(default)]
    app: Vec<App>,
}

/// Parses an applications file and checks every template against its parameters.
pub fn parse(source: &str, text: &str) -> Result<AppCatalog, FormatError> {
    let file: AppFile = toml::from_str(text).map_err(|e| toml_error(source, text, &e))?;
    if file.app.is_empty() {
        return Err(FormatError::new(source, "empty_input", "the file has no [[app]] entries"));
    }
    if file.app.len() > APPS_MAX {
        return Err(FormatError::new(source, "too_many", format!("at most {APPS_MAX} applications")));
    }
    for (i, app) in file.app.iter().enumerate() {
        let wrong =
            |message: String| FormatError::new(source, "invalid_app", message).field(&format!("app.{}", app.name));
        if app.name.is_empty() || !app.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(wrong(format!("application name {:?} must be lowercase letters, digits and -", app.name)));
        }
        if file.app[..i].iter().any(|a| a.name == app.name) {
            return Err(wrong(format!("application {:?} appears twice", app.name)));
        }
        if app.params.len() > PARAMS_MAX {
            return Err(wrong(format!("at most {PARAMS_MAX} parameters")));
        }
        for (j, param) in app.params.iter().enumerate() {
            if app.params[..j].iter().any(|p| p.name == param.name) {
                return Err(wrong(format!("parameter {:?} appears twice", param.name)));
            }
            if let Some(default) = &param.default {
                param.check(default).map_err(|e| wrong(format!("the default of {e}")))?;
            }
        }
        let mut strings = Vec::new();
        collect_strings(&Value::Object(app.job.clone()), &mut strings);
        for text in strings {
            for name in placeholders(&text) {
                if !app.params.iter().any(|p| p.name == name) {
                    return Err(wrong(format!("the job names {{{name}}}, which is not a parameter")));
                }
            }
        }
    }
    Ok(AppCatalog { apps: file.app })
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(fields) => fields.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde_json::json;

    use super::*;

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_builtin_applications_parse_and_expand_with_their_defaults() {
        let catalog = builtin();
        assert!(catalog.apps.len() >= 4);
        for app in &catalog.apps {
            let mut given = Map::new();
            for p in app.params.iter().filter(|p| p.required) {
                given.insert(
                    p.name.clone(),
                    match p.kind {
                        ParamKind::String => json!("x"),
                        ParamKind::Integer => json!(p.min.unwrap_or(1)),
                    },
                );
            }
            let job = app.expand(&given).unwrap();
            assert!(job.contains_key("name"), "{}: {job:?}", app.name);
            // A command is text, even an argument that is exactly a number's placeholder.
            for arg in job.get("command").and_then(Value::as_array).into_iter().flatten() {
                assert!(arg.is_string(), "{}: command argument {arg}", app.name);
            }
        }
        let serve = catalog.get("inference-endpoint").unwrap();
        let job = serve.expand(&params(json!({"model": "qwen2-7b", "cards": 2}))).unwrap();
        assert_eq!(job["command"], json!(["vllm", "serve", "qwen2-7b", "--tensor-parallel-size", "2"]));
        assert_eq!(job["accelerators"], 2);
    }

    #[test]
    fn placeholders_become_values_numbers_and_products() {
        let app = &builtin();
        let fine_tune = app.get("fine-tune").unwrap();
        let job = fine_tune.expand(&params(json!({"model": "qwen2-7b", "cards": 4, "hours": 2}))).unwrap();
        assert_eq!(job["name"], "fine-tune-qwen2-7b");
        assert_eq!(job["accelerators"], 4);
        assert_eq!(job["estimate_s"], 7200);
        assert!(job["command"].as_array().unwrap().contains(&json!("--nproc_per_node=4")));
        assert!(!job.contains_key("dataset"), "an optional parameter left out leaves its field out");
        let with_data = fine_tune.expand(&params(json!({"model": "qwen2-7b", "dataset": "corpus"}))).unwrap();
        assert_eq!(with_data["dataset"], "corpus");
    }

    #[test]
    fn bad_parameters_are_named() {
        let catalog = builtin();
        let app = catalog.get("fine-tune").unwrap();
        let cases = [
            (json!({}), "missing_param"),
            (json!({"model": "m", "colour": "red"}), "unknown_param"),
            (json!({"model": "m", "cards": 0}), "invalid_param"),
            (json!({"model": "m", "cards": "eight"}), "invalid_param"),
            (json!({"model": 7}), "invalid_param"),
            (json!({"model": "{evil}"}), "invalid_param"),
        ];
        for (given, code) in cases {
            assert_eq!(app.expand(&params(given.clone())).unwrap_err().code(), code, "{given}");
        }
    }

    #[test]
    fn templates_must_name_declared_parameters() {
        let text = r#"
[[app]]
name = "x"
title = "X"
title_zh = "X"
kind = "batch"
description = "d"
job = { name = "{missing}" }
"#;
        let error = parse("apps.toml", text).unwrap_err();
        assert_eq!(error.code, "invalid_app");
        assert!(error.message.contains("{missing}"), "{error}");
        let bad_default = r#"
[[app]]
name = "x"
title = "X"
title_zh = "X"
kind = "batch"
description = "d"
job = { name = "x" }
[[app.param]]
name = "n"
type = "integer"
description = "d"
default = 0
min = 1
"#;
        assert_eq!(parse("apps.toml", bad_default).unwrap_err().code, "invalid_app");
    }
}
