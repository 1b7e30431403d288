//! Setup shared by the provisioning tests that drive one app (a fake): the
//! organisation `acme`, its app with a credential read from a variable, and
//! directory users created through the SCIM service.

use directory::{Directory, Limits, OrgScope, Projection};
use serde_json::{json, Value};
use store::{Adopt, AppKind, AppRecord, Deprovision, GroupsAs, ResourceKind, Store};

/// The app an organisation gets.
pub struct AppSpec<'a> {
    pub name: &'a str,
    pub kind: AppKind,
    pub base_url: String,
    /// The variable the credential is read from (set to `credential`): one per
    /// test and store, since tests run in parallel.
    pub credential_var: String,
    pub credential: &'a str,
    pub groups_as: GroupsAs,
}

/// The organisation `acme` with one app.
pub struct Org {
    pub store: Store,
    pub dir: Directory,
    pub org_id: i64,
    pub app: AppRecord,
}

impl Org {
    /// Creates the organisation and its app (deprovisioning policy `disable`,
    /// default settings).
    pub async fn new(store: Store, spec: AppSpec<'_>) -> Org {
        std::env::set_var(&spec.credential_var, spec.credential);
        let mut tx = store.begin().await.unwrap();
        let org = tx.create_org("acme", "Acme").await.unwrap();
        let app = tx
            .create_app(&AppRecord {
                id: 0,
                org_id: org.id,
                name: spec.name.into(),
                kind: spec.kind,
                base_url: spec.base_url,
                credential: format!("env:{}", spec.credential_var),
                groups_as: spec.groups_as,
                deprovision: Deprovision::Disable,
                adopt: Adopt::Never,
                settings: json!({}),
                created: time::OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        Org {
            dir: Directory::new(store.clone(), Limits::default()),
            store,
            org_id: org.id,
            app,
        }
    }

    /// Creates a directory user (`attributes` besides `schemas`) through
    /// the SCIM service, which queues its deliveries; returns its id.
    pub async fn user(&self, attributes: Value) -> String {
        let mut body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]});
        if let (Some(b), Value::Object(a)) = (body.as_object_mut(), attributes) {
            b.extend(a);
        }
        let scope = OrgScope {
            org_id: self.org_id,
            base_url: "http://liaison.test/o/acme/scim/v2",
        };
        let r = self
            .dir
            .create(scope, ResourceKind::User, &body, &Projection::default())
            .await
            .unwrap();
        r.json["id"].as_str().unwrap().to_owned()
    }
}
