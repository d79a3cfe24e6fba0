//! Test support for the deployment files: repository paths, multi-document YAML, and an
//! Argo CD-like Lua sandbox that runs a resource health check on an object.

use std::path::{Path, PathBuf};

use mlua::{Lua, LuaOptions, LuaSerdeExt, StdLib};
use serde::Deserialize;
use serde_json::Value;

/// The repository root (this crate lives in `tests/deploy`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text of a file under the repository root.
pub fn read(path: &str) -> String {
    let full = repo().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every non-empty document of a multi-document YAML file, as JSON values.
pub fn documents(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// What an Argo CD health check returns.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Health {
    pub status: String,
    #[serde(default)]
    pub message: String,
}

/// Runs a health check the way Argo CD does: the object as the global `obj`, the script's
/// returned table as the result, and only the libraries Argo CD opens (base, table,
/// string, math — no io, os or package, so a script that needs them fails here too).
pub fn health(script: &str, object: &Value) -> Health {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .expect("a Lua state");
    // As in Argo CD, a JSON null becomes nil (an absent field), not a sentinel value.
    let to_nil = mlua::serde::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let obj = lua.to_value_with(object, to_nil).expect("object to Lua");
    lua.globals().set("obj", obj).expect("set obj");
    let result: mlua::Value = lua
        .load(script)
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("the health check failed to run: {e}"));
    lua.from_value(result)
        .expect("a table with status and message")
}

/// The statuses Argo CD knows; a health check returning anything else is a bug.
pub const ARGO_HEALTH: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];
