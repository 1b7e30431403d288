//! The directory side: what the organisation's directory holds (read from the
//! store) and the writes, all through [`directory::Directory`], the service the
//! SCIM endpoints use (same validation, same uniqueness rules, one
//! transaction per write with its outbox rows).
//!
//! Keycloak's id is the resource's `externalId`; a user is the SCIM User
//! Keycloak's fields map to, a group is the SCIM Group named by its path.

use crate::keycloak::{KcGroup, KcUser};
use directory::{Directory, OrgScope, Projection};
use scim::{Filter, ResourceKind, ScimError};
use serde_json::{json, Value};
use std::collections::HashMap;
use store::{ListQuery, ResourceRow, Store, StoreError};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Rows read per page from the store.
const PAGE: u64 = 1000;

/// The SCIM User a Keycloak user becomes.
pub fn user_body(u: &KcUser) -> Value {
    let mut body = json!({
        "schemas": [USER_SCHEMA],
        "userName": u.username,
        "externalId": u.id,
        "active": u.enabled,
    });
    let full = [u.first_name.as_deref(), u.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !full.is_empty() {
        let mut name = serde_json::Map::new();
        if let Some(g) = &u.first_name {
            name.insert("givenName".into(), json!(g));
        }
        if let Some(f) = &u.last_name {
            name.insert("familyName".into(), json!(f));
        }
        name.insert("formatted".into(), json!(full));
        body["name"] = Value::Object(name);
        body["displayName"] = json!(full);
    }
    if let Some(e) = &u.email {
        body["emails"] = json!([{"value": e, "type": "work", "primary": true}]);
    }
    body
}

/// A group's displayName: its path without the leading `/` (`staff/teachers`),
/// unique in the realm as paths are.
pub fn group_name(g: &KcGroup) -> String {
    g.path.trim_start_matches('/').to_owned()
}

/// The SCIM Group a Keycloak group becomes; `members` are directory ids.
pub fn group_body(g: &KcGroup, members: Option<&[(String, ResourceKind)]>) -> Value {
    let mut body = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": group_name(g),
        "externalId": g.id,
    });
    if let Some(m) = members {
        body["members"] = m
            .iter()
            .map(|(id, kind)| json!({"value": id, "type": kind.name()}))
            .collect();
    }
    body
}

/// The stored form of a body, to compare with what the directory holds.
pub fn stored_doc(kind: ResourceKind, body: &Value) -> Result<Value, ScimError> {
    scim::resource::normalize(kind, body).map(|n| n.doc)
}

/// A resource of the directory, as the source compares it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub external_id: Option<String>,
    /// userName or displayName, lower-cased (the uniqueness key).
    pub name_lc: String,
    pub doc: Value,
    /// Groups: direct members (id, kind).
    pub members: Vec<(String, ResourceKind)>,
}

fn entry(row: ResourceRow) -> Entry {
    let name_attr = match row.kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    };
    Entry {
        external_id: row.doc["externalId"].as_str().map(str::to_owned),
        name_lc: row.doc[name_attr]
            .as_str()
            .unwrap_or_default()
            .to_lowercase(),
        id: row.id,
        doc: row.doc,
        members: Vec::new(),
    }
}

/// The writes of one organisation's source, through the SCIM service.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub directory: &'a Directory,
    pub org_id: i64,
}

impl<'a> Target<'a> {
    fn store(&self) -> &'a Store {
        self.directory.store()
    }

    fn scope(&self) -> OrgScope<'static> {
        OrgScope {
            org_id: self.org_id,
            base_url: "source:",
        }
    }

    /// Every resource of a kind (groups with their members).
    pub async fn load(&self, kind: ResourceKind) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let q = ListQuery {
                start_index: start,
                count: PAGE,
                ..Default::default()
            };
            let page = self.store().list_resources(self.org_id, kind, &q).await?;
            let n = page.resources.len() as u64;
            out.extend(page.resources.into_iter().map(entry));
            if n < PAGE {
                break;
            }
            start += n;
        }
        if kind == ResourceKind::Group {
            for chunk in out.chunks_mut(500) {
                self.attach_members(chunk).await?;
            }
        }
        Ok(out)
    }

    /// The resource whose externalId is `ext`.
    pub async fn find(&self, kind: ResourceKind, ext: &str) -> Result<Option<Entry>, StoreError> {
        // `ext` is a checked Keycloak id (letters, digits, '-', '_'): safe in a filter.
        let filter = Filter::parse(&format!("externalId eq \"{ext}\""))?;
        let q = ListQuery {
            filter: Some(filter),
            start_index: 1,
            count: 2,
            ..Default::default()
        };
        let page = self.store().list_resources(self.org_id, kind, &q).await?;
        let Some(found) = page.resources.into_iter().map(entry).next() else {
            return Ok(None);
        };
        let mut found = [found];
        if kind == ResourceKind::Group {
            self.attach_members(&mut found).await?;
        }
        let [found] = found;
        Ok(Some(found))
    }

    /// Fills the direct members of groups, in one query.
    async fn attach_members(&self, groups: &mut [Entry]) -> Result<(), StoreError> {
        let ids: Vec<&str> = groups.iter().map(|e| e.id.as_str()).collect();
        let mut members = self.store().members(self.org_id, &ids).await?;
        for e in groups.iter_mut() {
            e.members = members
                .remove(&e.id)
                .unwrap_or_default()
                .into_iter()
                .map(|m| (m.value, m.kind))
                .collect();
        }
        Ok(())
    }

    /// The groups a user is a direct member of (directory ids).
    pub async fn groups_of(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let mut refs = self.store().groups_of(self.org_id, &[user_id]).await?;
        Ok(refs
            .remove(user_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|g| g.membership == "direct")
            .map(|g| g.value)
            .collect())
    }

    fn projection() -> Projection {
        Projection {
            attributes: vec![scim::AttrPath::new("id")],
            excluded: Vec::new(),
        }
    }

    pub async fn create(&self, kind: ResourceKind, body: &Value) -> Result<String, ScimError> {
        let r = self
            .directory
            .create(self.scope(), kind, body, &Self::projection())
            .await?;
        r.json["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ScimError::status(500, "created without an id"))
    }

    pub async fn replace(
        &self,
        kind: ResourceKind,
        id: &str,
        body: &Value,
    ) -> Result<(), ScimError> {
        self.directory
            .replace(self.scope(), kind, id, body, None, &Self::projection())
            .await
            .map(|_| ())
    }

    pub async fn delete(&self, kind: ResourceKind, id: &str) -> Result<(), ScimError> {
        match self.directory.delete(self.scope(), kind, id, None).await {
            Err(e) if e.status == 404 => Ok(()),
            other => other,
        }
    }

    /// Adds (`true`) or removes a user in a group, as a SCIM PATCH.
    pub async fn set_member(
        &self,
        group_id: &str,
        user_id: &str,
        member: bool,
    ) -> Result<(), ScimError> {
        let op = if member {
            json!({"op": "add", "path": "members", "value": [{"value": user_id, "type": "User"}]})
        } else {
            json!({"op": "remove", "path": format!("members[value eq \"{user_id}\"]")})
        };
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [op]});
        self.directory
            .patch(
                self.scope(),
                ResourceKind::Group,
                group_id,
                &body,
                None,
                &Self::projection(),
            )
            .await
            .map(|_| ())
    }
}

/// Entries by externalId.
pub fn by_external_id(entries: &[Entry]) -> HashMap<&str, &Entry> {
    entries
        .iter()
        .filter_map(|e| e.external_id.as_deref().map(|x| (x, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> KcUser {
        KcUser {
            id: "u1".into(),
            username: "jean.dupont".into(),
            first_name: Some("Jean".into()),
            last_name: Some("Dupont".into()),
            email: Some("jean@ecole.example".into()),
            enabled: true,
        }
    }

    #[test]
    fn a_keycloak_user_is_a_valid_scim_user() {
        let body = user_body(&user());
        let doc = stored_doc(ResourceKind::User, &body).unwrap();
        assert_eq!(doc["userName"], "jean.dupont");
        assert_eq!(doc["externalId"], "u1");
        assert_eq!(doc["displayName"], "Jean Dupont");
        assert_eq!(doc["name"]["familyName"], "Dupont");
        assert_eq!(doc["emails"][0]["value"], "jean@ecole.example");
        assert_eq!(doc["active"], true);
        let bare = KcUser {
            first_name: None,
            last_name: None,
            email: None,
            enabled: false,
            ..user()
        };
        let doc = stored_doc(ResourceKind::User, &user_body(&bare)).unwrap();
        assert!(
            doc.get("name").is_none() && doc.get("emails").is_none(),
            "{doc}"
        );
        assert_eq!(doc["active"], false);
    }

    #[test]
    fn groups_are_named_by_their_path() {
        let g = KcGroup {
            id: "g2".into(),
            name: "teachers".into(),
            path: "/staff/teachers".into(),
            parent_id: Some("g1".into()),
            sub_group_count: 0,
        };
        let body = group_body(&g, Some(&[("x".into(), ResourceKind::User)]));
        assert_eq!(body["displayName"], "staff/teachers");
        assert_eq!(body["members"][0]["type"], "User");
        let n = scim::resource::normalize(ResourceKind::Group, &body).unwrap();
        assert_eq!(n.members.map(|m| m.len()), Some(1));
    }
}
