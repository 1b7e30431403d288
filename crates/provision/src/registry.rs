//! Builds the connector of a configured app: reads its secret from where the
//! configuration says (`file:/path`, so Kubernetes secrets mounted as files work,
//! or `env:VAR`) at the moment it is needed. Secrets are never stored in the
//! database and never logged.

use crate::connectors::nextcloud::{NextcloudConfig, NextcloudConnector};
use crate::connectors::rocketchat::{RocketChatConfig, RocketChatConnector};
use crate::connectors::scim::{ScimConfig, ScimConnector};
use crate::connectors::synapse::{SynapseConfig, SynapseConnector};
use crate::{AppKind, Connector, DeliveryError};
use std::sync::Arc;
use store::AppRecord;

/// Reads a secret from `file:/path` or `env:VAR` (surrounding white space removed).
pub fn read_credential(source: &str) -> Result<String, DeliveryError> {
    let secret = if let Some(path) = source.strip_prefix("file:") {
        std::fs::read_to_string(path).map_err(|e| {
            DeliveryError::Permanent(format!("cannot read the credential file {path}: {e}"))
        })?
    } else if let Some(var) = source.strip_prefix("env:") {
        std::env::var(var).map_err(|_| {
            DeliveryError::Permanent(format!("the credential variable {var} is not set"))
        })?
    } else {
        return Err(DeliveryError::Permanent(
            "a credential source is file:/path or env:VAR".into(),
        ));
    };
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        return Err(DeliveryError::Permanent(format!(
            "the credential from {source} is empty"
        )));
    }
    Ok(secret)
}

fn split_pair(secret: &str, what: &str) -> Result<(String, String), DeliveryError> {
    secret
        .split_once(':')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| DeliveryError::Permanent(format!("the credential must be {what}")))
}

fn setting(app: &AppRecord, key: &str) -> Option<String> {
    app.settings
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// The connector for an app, with its secret read now.
pub fn connector_for(app: &AppRecord) -> Result<Arc<dyn Connector>, DeliveryError> {
    let secret = read_credential(&app.credential)?;
    let base_url = app.base_url.trim_end_matches('/').to_owned();
    Ok(match app.kind {
        AppKind::Synapse => {
            let server_name = setting(app, "server_name").ok_or_else(|| {
                DeliveryError::Permanent("a synapse app needs the setting server_name".into())
            })?;
            let mut cfg = SynapseConfig::new(base_url, server_name, secret);
            cfg.groups_as = app.groups_as;
            if let Some(p) = setting(app, "auth_provider") {
                cfg.auth_provider = p;
            }
            Arc::new(SynapseConnector::new(cfg)?)
        }
        AppKind::Nextcloud => {
            let (user, app_password) = split_pair(&secret, "user:app-password")?;
            Arc::new(NextcloudConnector::new(NextcloudConfig {
                base_url,
                user,
                app_password,
                quota: setting(app, "quota"),
            })?)
        }
        AppKind::Rocketchat => {
            let (user_id, token) = split_pair(&secret, "user-id:token")?;
            Arc::new(RocketChatConnector::new(RocketChatConfig {
                base_url,
                user_id,
                token,
                groups_as: app.groups_as,
            })?)
        }
        AppKind::Scim => Arc::new(ScimConnector::new(ScimConfig {
            base_url,
            bearer_token: Some(secret),
            use_patch: app.settings.get("use_patch").and_then(|v| v.as_bool()),
        })?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupsAs;

    #[test]
    fn credentials_come_from_files_or_variables() {
        let dir = std::env::temp_dir().join(format!("liaison-cred-{}", std::process::id()));
        std::fs::write(&dir, "  s3cret\n").unwrap();
        assert_eq!(
            read_credential(&format!("file:{}", dir.display())).unwrap(),
            "s3cret"
        );
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(
            read_credential("file:/nonexistent/liaison"),
            Err(DeliveryError::Permanent(_))
        ));
        std::env::set_var("LIAISON_REGISTRY_TEST_SECRET", "abc");
        assert_eq!(
            read_credential("env:LIAISON_REGISTRY_TEST_SECRET").unwrap(),
            "abc"
        );
        assert!(read_credential("plain-secret").is_err());
    }

    #[test]
    fn connector_configs_never_show_their_secrets() {
        let nc = NextcloudConfig {
            base_url: "https://cloud.example".into(),
            user: "admin".into(),
            app_password: "nc-s3cret".into(),
            quota: None,
        };
        let rc = RocketChatConfig {
            base_url: "https://chat.example".into(),
            user_id: "uid".into(),
            token: "rc-s3cret".into(),
            groups_as: GroupsAs::Rooms,
        };
        let shown = format!(
            "{nc:?} {rc:?} {:?} {:?}",
            NextcloudConnector::new(nc.clone()).unwrap(),
            RocketChatConnector::new(rc.clone()).unwrap()
        );
        assert!(
            !shown.contains("nc-s3cret") && !shown.contains("rc-s3cret"),
            "{shown}"
        );
    }
}
