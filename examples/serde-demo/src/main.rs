//! Reads a deployment description, validates it, and writes a report: the
//! kind of code `#[derive(Serialize, Deserialize)]` exists for.

use serde_derive::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Deployment {
    name: String,
    #[serde(default = "default_replicas")]
    replicas: u16,
    services: Vec<Service>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

fn default_replicas() -> u16 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Service {
    Http {
        port: u16,
        #[serde(default)]
        tls: bool,
        routes: Vec<Route>,
    },
    Worker {
        queue: String,
        concurrency: Option<u8>,
    },
    Cron {
        schedule: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Route {
    path: String,
    #[serde(flatten)]
    target: Target,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Target {
    Upstream {
        upstream: String,
    },
    Static {
        dir: String,
        #[serde(rename = "cache-seconds")]
        cache_seconds: u32,
    },
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    deployment: &'a str,
    services: usize,
    public_ports: Vec<u16>,
    warnings: Vec<String>,
}

const INPUT: &str = r#"{
  "name": "shop",
  "replicas": 3,
  "services": [
    { "kind": "http", "port": 443, "tls": true,
      "routes": [ { "path": "/api", "upstream": "api:8080" },
                  { "path": "/", "dir": "/srv/www", "cache-seconds": 600 } ] },
    { "kind": "worker", "queue": "orders", "concurrency": null },
    { "kind": "cron", "schedule": "0 3 * * *" }
  ],
  "labels": { "team": "checkout" }
}"#;

fn main() {
    let deployment: Deployment = serde_json::from_str(INPUT).expect("valid deployment");
    let mut warnings = Vec::new();
    let mut public_ports = Vec::new();
    for service in &deployment.services {
        match service {
            Service::Http { port, tls, .. } => {
                public_ports.push(*port);
                if !tls {
                    warnings.push(format!("port {port} is served without TLS"));
                }
            }
            Service::Worker {
                queue,
                concurrency: None,
            } => {
                warnings.push(format!("worker on `{queue}` has no concurrency limit"));
            }
            _ => {}
        }
    }
    let report = Report {
        deployment: &deployment.name,
        services: deployment.services.len(),
        public_ports,
        warnings,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("report serializes")
    );
    println!(
        "{}",
        serde_json::to_string(&deployment).expect("deployment serializes")
    );
    let bad = serde_json::from_str::<Deployment>(r#"{"name":"x","services":[],"replica":2}"#);
    println!("rejected: {}", bad.expect_err("unknown field is rejected"));
}
