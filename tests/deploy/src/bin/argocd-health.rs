//! `argocd-health SCRIPT.lua < objects.json`: runs an Argo CD health check on live objects
//! (a `kubectl get -o json` object or List) and prints `name status message` per object,
//! so tests/deploy/run.sh can check the Lua against what the real operator wrote.

use std::io::Read;

use serde_json::Value;
use tributary_deploy_tests::{ARGO_HEALTH, health};

fn main() {
    let script_path = std::env::args()
        .nth(1)
        .expect("usage: argocd-health SCRIPT.lua < objects.json");
    let script = std::fs::read_to_string(&script_path).expect("read the script");
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .expect("read stdin");
    let value: Value = serde_json::from_str(&input).expect("JSON on stdin");
    let items = match value.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![value],
    };
    let mut bad = false;
    for object in &items {
        let h = health(&script, object);
        bad |= !ARGO_HEALTH.contains(&h.status.as_str());
        println!(
            "{} {} {}",
            object["metadata"]["name"].as_str().unwrap_or("?"),
            h.status,
            h.message
        );
    }
    if bad {
        std::process::exit(1);
    }
}
