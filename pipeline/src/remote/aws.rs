//! S3 client settings from the usual AWS sources: environment variables first, then the
//! shared `credentials` and `config` files of the selected profile, and anonymous
//! (unsigned) requests when no credentials are found anywhere.

use super::RemoteOptions;
use object_store::aws::AmazonS3Builder;
use std::collections::HashMap;
use std::path::PathBuf;

/// Sources of credentials that `object_store` resolves itself (web identity, ECS/EKS
/// container credentials): with one of them set, requests are signed.
const DELEGATED: &[&str] = &[
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// A builder for `bucket` with credentials, region and endpoint resolved.
pub(super) fn builder(bucket: &str, options: &RemoteOptions) -> AmazonS3Builder {
    builder_from(bucket, options, &|k| std::env::var(k).ok(), &home())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn builder_from(
    bucket: &str,
    options: &RemoteOptions,
    env: &dyn Fn(&str) -> Option<String>,
    home: &Option<PathBuf>,
) -> AmazonS3Builder {
    let settings = resolve(env, home);
    // `from_env` reads every AWS_* variable object_store knows (session tokens, STS,
    // container credentials...); the values resolved here fill in what it does not read.
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(options.retry_config());
    let mut client = options.client_options();
    if let Some(endpoint) = &settings.endpoint {
        b = b.with_endpoint(endpoint);
        if endpoint.starts_with("http://") {
            client = client.with_allow_http(true);
        }
    }
    b = b.with_client_options(client);
    if let Some(region) = &settings.region {
        b = b.with_region(region);
    }
    match &settings.credentials {
        Some((id, secret, token)) => {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = token {
                b = b.with_token(t);
            }
        }
        None if settings.anonymous => b = b.with_skip_signature(true),
        None => {}
    }
    b
}

/// What the environment and the shared files say.
#[derive(Debug, Default, PartialEq)]
struct Settings {
    credentials: Option<(String, String, Option<String>)>,
    region: Option<String>,
    endpoint: Option<String>,
    /// No credentials anywhere: send unsigned requests.
    anonymous: bool,
}

fn resolve(env: &dyn Fn(&str) -> Option<String>, home: &Option<PathBuf>) -> Settings {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let file = |var: &str, name: &str| -> Option<PathBuf> {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let creds_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| ini_section(&t, &profile))
        .unwrap_or_default();
    // In `config`, profiles other than default are written `[profile NAME]`.
    let config_section = if profile == "default" {
        profile.clone()
    } else {
        format!("profile {profile}")
    };
    let config_file = file("AWS_CONFIG_FILE", "config")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| ini_section(&t, &config_section))
        .unwrap_or_default();

    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some((id, secret, env("AWS_SESSION_TOKEN"))),
        _ => {
            let from = |m: &HashMap<String, String>| {
                Some((
                    m.get("aws_access_key_id")?.clone(),
                    m.get("aws_secret_access_key")?.clone(),
                    m.get("aws_session_token").cloned(),
                ))
            };
            from(&creds_file).or_else(|| from(&config_file))
        }
    };
    let delegated = DELEGATED.iter().any(|k| env(k).is_some());
    // The instance metadata service is asked only when the user says so (the AWS SDKs'
    // own switch): elsewhere it is an unreachable address that costs a timeout.
    let imds = env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    Settings {
        anonymous: credentials.is_none() && !delegated && !imds,
        credentials,
        region: env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| config_file.get("region").cloned()),
        endpoint: env("AWS_ENDPOINT_URL_S3")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| env("AWS_ENDPOINT"))
            .or_else(|| config_file.get("endpoint_url").cloned()),
    }
}

/// The `key = value` pairs of section `[name]` of an INI file (keys lower-cased).
fn ini_section(text: &str, name: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == name;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::env;

    #[test]
    fn environment_wins_then_files_then_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let home = Some(dir.path().to_path_buf());
        assert_eq!(
            resolve(&env(&[]), &home),
            Settings {
                anonymous: true,
                ..Default::default()
            }
        );
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = AK\naws_secret_access_key=SK\n\n[other]\naws_access_key_id=O\naws_secret_access_key=OS\naws_session_token=T\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".aws/config"),
            "[default]\nregion = eu-west-1\n[profile other]\nregion=us-west-2\nendpoint_url = http://127.0.0.1:9000\n",
        )
        .unwrap();
        let s = resolve(&env(&[]), &home);
        assert_eq!(s.credentials, Some(("AK".into(), "SK".into(), None)));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert!(!s.anonymous);
        let s = resolve(&env(&[("AWS_PROFILE", "other")]), &home);
        assert_eq!(
            s.credentials,
            Some(("O".into(), "OS".into(), Some("T".into())))
        );
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        let s = resolve(
            &env(&[
                ("AWS_ACCESS_KEY_ID", "E"),
                ("AWS_SECRET_ACCESS_KEY", "ES"),
                ("AWS_REGION", "ap-south-1"),
                ("AWS_ENDPOINT_URL", "http://localhost:1"),
            ]),
            &home,
        );
        assert_eq!(s.credentials, Some(("E".into(), "ES".into(), None)));
        assert_eq!(s.region.as_deref(), Some("ap-south-1"));
        assert_eq!(s.endpoint.as_deref(), Some("http://localhost:1"));
        let none = Some(dir.path().join("nowhere"));
        let s = resolve(&env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")]), &none);
        assert!(!s.anonymous && s.credentials.is_none());
    }
}
