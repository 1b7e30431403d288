//! [`Directory`]: the SCIM operations on one organisation's resources.

use crate::query::{SearchRequest, LIST_RESPONSE_SCHEMA};
use crate::render::{etag, resource_json, Projection};
use crate::{password, scim_error, BulkLimits};
use scim::patch::{MemberChange, PatchOpKind, PatchRequest};
use scim::resource::{self, MemberValue};
use scim::{Filter, ResourceKind, ScimError};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use store::{ListQuery, Member, ResourceRow, Store, Target, Tx};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Server limits advertised in `/ServiceProviderConfig` and enforced here.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest page a list or search answers (`filter.maxResults`).
    pub max_results: u64,
    pub bulk: BulkLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_results: 1000,
            bulk: BulkLimits::default(),
        }
    }
}

/// The organisation a request acts on, and the base URL its locations use
/// (`https://host/o/{slug}/scim/v2`, no trailing slash).
#[derive(Debug, Clone, Copy)]
pub struct OrgScope<'a> {
    pub org_id: i64,
    pub base_url: &'a str,
}

/// A resource as answered: its projected JSON and its version (for the ETag).
#[derive(Debug, Clone)]
pub struct Resource {
    pub json: Value,
    pub version: i64,
    pub location: String,
}

impl Resource {
    /// The weak ETag (`W/"3"`).
    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

/// The SCIM service over a store.
#[derive(Clone)]
pub struct Directory {
    store: Store,
    limits: Limits,
    outbox_wake: Option<Arc<Notify>>,
}

type Result<T> = std::result::Result<T, ScimError>;

impl Directory {
    pub fn new(store: Store, limits: Limits) -> Self {
        Directory {
            store,
            limits,
            outbox_wake: None,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// `POST /Users`, `POST /Groups`.
    pub async fn create(
        &self,
        scope: OrgScope<'_>,
        kind: ResourceKind,
        body: &Value,
        proj: &Projection,
    ) -> Result<Resource> {
        let normalized = resource::normalize(kind, body)?;
        let password_hash = match normalized.password {
            Some(p) => Some(password::hash(p).await?),
            None => None,
        };
        let now = now();
        let row = ResourceRow {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            doc: normalized.doc,
            password_hash,
            version: 1,
            created: now,
            last_modified: now,
        };
        let mut tx = self.begin().await?;
        tx.insert_resource(scope.org_id, &row)
            .await
            .map_err(scim_error)?;
        enqueue(&mut tx, scope.org_id, kind, &row.id).await?;
        if let Some(members) = normalized.members {
            add_members(&mut tx, scope.org_id, &row.id, &members).await?;
        }
        self.commit(tx).await?;
        self.render(scope, row, proj).await
    }

    /// `GET /Users/{id}`.
    pub async fn get(
        &self,
        scope: OrgScope<'_>,
        kind: ResourceKind,
        id: &str,
        proj: &Projection,
    ) -> Result<Resource> {
        let row = self
            .store
            .get_resource(scope.org_id, kind, id)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| not_found(kind, id))?;
        self.render(scope, row, proj).await
    }

    /// The current version of a resource, for `If-None-Match` before rendering.
    pub async fn version(&self, scope: OrgScope<'_>, kind: ResourceKind, id: &str) -> Result<i64> {
        self.store
            .get_resource(scope.org_id, kind, id)
            .await
            .map_err(scim_error)?
            .map(|r| r.version)
            .ok_or_else(|| not_found(kind, id))
    }

    /// `GET /Users?...` and `POST /Users/.search`: a `ListResponse`.
    pub async fn list(
        &self,
        scope: OrgScope<'_>,
        kind: ResourceKind,
        req: &SearchRequest,
    ) -> Result<Value> {
        let (total, resources) = self.list_page(scope, kind, req, req.start_index).await?;
        Ok(self.list_response(total, req.start_index, resources))
    }

    /// `POST /.search` at the service root: Users then Groups, as one list.
    /// Sorting applies within each resource type.
    pub async fn search_all(&self, scope: OrgScope<'_>, req: &SearchRequest) -> Result<Value> {
        let count = self.page_size(req);
        let mut total = 0;
        let mut out = Vec::new();
        let mut start = req.start_index;
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let sub = SearchRequest {
                count: Some(count.saturating_sub(out.len() as u64)),
                ..req.clone()
            };
            // A filter naming an attribute this type lacks selects none of it.
            let (n, page) = match self.list_page(scope, kind, &sub, start).await {
                Ok(r) => r,
                Err(e) if e.scim_type == Some(scim::ScimType::InvalidFilter) => {
                    if req
                        .filter
                        .as_ref()
                        .is_some_and(|f| resolves(other(kind), f))
                    {
                        (0, Vec::new())
                    } else {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            };
            total += n;
            start = start.saturating_sub(n).max(1);
            out.extend(page);
        }
        Ok(self.list_response(total, req.start_index, out))
    }

    fn page_size(&self, req: &SearchRequest) -> u64 {
        req.count
            .unwrap_or(self.limits.max_results)
            .min(self.limits.max_results)
    }

    async fn list_page(
        &self,
        scope: OrgScope<'_>,
        kind: ResourceKind,
        req: &SearchRequest,
        start_index: u64,
    ) -> Result<(u64, Vec<Value>)> {
        let query = ListQuery {
            filter: req.filter.clone(),
            sort_by: req.sort_by.clone(),
            descending: req.descending,
            start_index,
            count: self.page_size(req),
        };
        let page = self
            .store
            .list_resources(scope.org_id, kind, &query)
            .await
            .map_err(scim_error)?;
        let proj = Projection {
            attributes: req.attributes.clone(),
            excluded: req.excluded_attributes.clone(),
        };
        let rendered = self
            .render_many(scope, page.resources, page.grouped.as_ref(), &proj)
            .await?
            .into_iter()
            .map(|r| r.json)
            .collect();
        Ok((page.total_results, rendered))
    }

    fn list_response(&self, total: u64, start_index: u64, resources: Vec<Value>) -> Value {
        json!({
            "schemas": [LIST_RESPONSE_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        })
    }

    /// `PUT /Users/{id}`: replaces the resource; members of a Group are applied as
    /// a diff against the stored list.
    pub async fn replace(
        &self,
        scope: OrgScope<'_>,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Resource> {
        let normalized = resource::normalize(kind, body)?;
        let new_hash = match normalized.password {
            Some(p) => Some(password::hash(p).await?),
            None => None,
        };
        let mut tx = self.begin().await?;
        let current = tx
            .get_resource_for_update(scope.org_id, kind, id)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| not_found(kind, id))?;
        check_if_match(if_match, current.version)?;
        resource::check_immutable(kind, &current.doc, &normalized.doc)?;
        let mut changed = normalized.doc != current.doc || new_hash.is_some();
        if kind == ResourceKind::Group {
            let wanted = normalized.members.unwrap_or_default();
            changed |= sync_members(&mut tx, scope.org_id, id, &wanted).await?;
        }
        let update = changed.then(|| {
            let hash = new_hash.or_else(|| current.password_hash.clone());
            (normalized.doc, hash)
        });
        self.save(tx, scope, current, update, proj).await
    }

    /// `PATCH /Users/{id}`: answers 200 with the updated resource.
    pub async fn patch(
        &self,
        scope: OrgScope<'_>,
        kind: ResourceKind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Resource> {
        let request = PatchRequest::parse(body)?;
        // Hashing is slow: done before the write transaction, never while
        // holding it. When the request sets a password in a form the quick
        // look missed, the transaction is rolled back, the password hashed,
        // and the request applied again.
        let mut prehashed = match password_in(&request) {
            Some(clear) => Some((clear.clone(), password::hash(clear).await?)),
            None => None,
        };
        loop {
            let mut tx = self.begin().await?;
            let current = tx
                .get_resource_for_update(scope.org_id, kind, id)
                .await
                .map_err(scim_error)?
                .ok_or_else(|| not_found(kind, id))?;
            check_if_match(if_match, current.version)?;
            let mut doc = current.doc.clone();
            let outcome = scim::patch::apply(kind, &mut doc, &request)?;
            let password_hash = match (outcome.password, &prehashed) {
                (Some(p), Some((clear, hash))) if p == *clear => Some(hash.clone()),
                (Some(p), _) => {
                    tx.rollback().await.map_err(scim_error)?;
                    let hash = password::hash(p.clone()).await?;
                    prehashed = Some((p, hash));
                    continue;
                }
                (None, _) => None,
            };
            let mut changed = doc != current.doc || password_hash.is_some();
            for change in &outcome.member_changes {
                changed |= apply_member_change(&mut tx, scope.org_id, id, change).await?;
            }
            let password_hash = password_hash.or_else(|| current.password_hash.clone());
            let update = changed.then_some((doc, password_hash));
            return self.save(tx, scope, current, update, proj).await;
        }
    }

    /// Ends a replace or patch: writes the new document and password hash when
    /// there is one (version bumped, deliveries queued), commits, and renders.
    async fn save(
        &self,
        mut tx: Tx,
        scope: OrgScope<'_>,
        current: ResourceRow,
        update: Option<(Value, Option<String>)>,
        proj: &Projection,
    ) -> Result<Resource> {
        let row = match update {
            Some((doc, password_hash)) => {
                let row = ResourceRow {
                    doc,
                    password_hash,
                    version: current.version + 1,
                    last_modified: now(),
                    ..current
                };
                tx.update_resource(scope.org_id, &row)
                    .await
                    .map_err(scim_error)?;
                enqueue(&mut tx, scope.org_id, row.kind, &row.id).await?;
                row
            }
            None => current,
        };
        self.commit(tx).await?;
        self.render(scope, row, proj).await
    }

    /// `DELETE /Users/{id}`.
    pub async fn delete(
        &self,
        scope: OrgScope<'_>,
        kind: ResourceKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let current = tx
            .get_resource_for_update(scope.org_id, kind, id)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| not_found(kind, id))?;
        check_if_match(if_match, current.version)?;
        if kind == ResourceKind::User {
            // The memberships go with the user: each app drops them too.
            let groups = tx
                .groups_of_member(scope.org_id, id)
                .await
                .map_err(scim_error)?;
            for g in groups {
                tx.enqueue(scope.org_id, Target::Member, &g, Some(id))
                    .await
                    .map_err(scim_error)?;
            }
        } else {
            // The group's memberships go with it: each app drops them too
            // (a group the app keeps under the `disable` policy is emptied).
            let users: Vec<String> = tx
                .members_of(scope.org_id, id)
                .await
                .map_err(scim_error)?
                .into_iter()
                .filter(|m| m.kind == ResourceKind::User)
                .map(|m| m.value)
                .collect();
            tx.enqueue_members(scope.org_id, id, &users)
                .await
                .map_err(scim_error)?;
        }
        tx.delete_resource(scope.org_id, kind, id)
            .await
            .map_err(scim_error)?;
        enqueue(&mut tx, scope.org_id, kind, id).await?;
        self.commit(tx).await
    }

    async fn begin(&self) -> Result<Tx> {
        self.store.begin().await.map_err(scim_error)
    }

    /// Commits a write and wakes the local outbox worker, if any.
    async fn commit(&self, tx: Tx) -> Result<()> {
        tx.commit().await.map_err(scim_error)?;
        if let Some(n) = &self.outbox_wake {
            n.notify_one();
        }
        Ok(())
    }

    /// Wakes `notify` after every committed write (the outbox worker of this
    /// process, so deliveries start at once).
    pub fn with_outbox_wake(mut self, notify: Arc<Notify>) -> Self {
        self.outbox_wake = Some(notify);
        self
    }

    /// What wakes the outbox worker after a change, when one was given.
    pub fn outbox_wake(&self) -> Option<Arc<Notify>> {
        self.outbox_wake.clone()
    }

    async fn render(
        &self,
        scope: OrgScope<'_>,
        row: ResourceRow,
        proj: &Projection,
    ) -> Result<Resource> {
        let mut all = self.render_many(scope, vec![row], None, proj).await?;
        all.pop()
            .ok_or_else(|| ScimError::status(500, "rendering lost the resource"))
    }

    /// Renders rows, loading `members`/`groups` in one query per page and only when
    /// the projection keeps them. `grouped`, when known, holds the users that
    /// belong to a group: the others need no query for their `groups`.
    async fn render_many(
        &self,
        scope: OrgScope<'_>,
        rows: Vec<ResourceRow>,
        grouped: Option<&std::collections::HashSet<String>>,
        proj: &Projection,
    ) -> Result<Vec<Resource>> {
        let (groups, users): (Vec<&ResourceRow>, Vec<&ResourceRow>) = rows
            .iter()
            .filter(|r| r.kind == ResourceKind::Group || grouped.is_none_or(|g| g.contains(&r.id)))
            .partition(|r| r.kind == ResourceKind::Group);
        let mut members = if !groups.is_empty() && proj.wants("members") {
            let ids: Vec<&str> = groups.iter().map(|r| r.id.as_str()).collect();
            self.store
                .members(scope.org_id, &ids)
                .await
                .map_err(scim_error)?
        } else {
            Default::default()
        };
        let mut groups_of = if !users.is_empty() && proj.wants("groups") {
            let ids: Vec<&str> = users.iter().map(|r| r.id.as_str()).collect();
            self.store
                .groups_of(scope.org_id, &ids)
                .await
                .map_err(scim_error)?
        } else {
            Default::default()
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let m = members.remove(&row.id);
                let g = groups_of.remove(&row.id);
                let mut json = resource_json(scope.base_url, &row, m.as_deref(), g.as_deref());
                let location = format!("{}/{}/{}", scope.base_url, row.kind.endpoint(), row.id);
                proj.apply(row.kind, &mut json);
                Resource {
                    json,
                    version: row.version,
                    location,
                }
            })
            .collect())
    }
}

/// The current time at the store's precision (microseconds), so that a
/// resource answered after a write carries the same `meta` timestamps as later reads.
fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

fn not_found(kind: ResourceKind, id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id} not found", kind.name()))
}

/// The cleartext password a PATCH sets, when it says so plainly (a `password`
/// path, or a path-less value object with a `password` key, URN-qualified or
/// under the User schema's URN), so it can be hashed before the transaction.
fn password_in(request: &PatchRequest) -> Option<String> {
    let is_password = |name: &str| {
        name.eq_ignore_ascii_case("password")
            || name.rsplit_once(':').is_some_and(|(urn, attr)| {
                urn.eq_ignore_ascii_case(scim::schema::USER_SCHEMA)
                    && attr.eq_ignore_ascii_case("password")
            })
    };
    let in_object = |o: &serde_json::Map<String, Value>| -> Option<String> {
        o.iter().find_map(|(k, v)| match v {
            Value::String(p) if is_password(k) => Some(p.clone()),
            Value::Object(inner) if k.eq_ignore_ascii_case(scim::schema::USER_SCHEMA) => inner
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("password"))
                .and_then(|(_, v)| v.as_str().map(str::to_owned)),
            _ => None,
        })
    };
    request
        .operations
        .iter()
        .rev()
        .filter(|op| op.op != PatchOpKind::Remove)
        .find_map(|op| match (&op.path, &op.value) {
            (Some(p), Some(Value::String(v)))
                if p.filter.is_none() && p.attr.sub_attr.is_none() && is_password(&p.attr.attr) =>
            {
                Some(v.clone())
            }
            (None, Some(Value::Object(o))) => in_object(o),
            _ => None,
        })
}

fn other(kind: ResourceKind) -> ResourceKind {
    match kind {
        ResourceKind::User => ResourceKind::Group,
        ResourceKind::Group => ResourceKind::User,
    }
}

/// Whether every attribute the filter names exists on `kind`.
fn resolves(kind: ResourceKind, filter: &Filter) -> bool {
    match filter {
        Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => {
            kind.resolve(p).is_some()
        }
        Filter::Not(f) => resolves(kind, f),
        Filter::And(a, b) | Filter::Or(a, b) => resolves(kind, a) && resolves(kind, b),
    }
}

/// RFC 7644 §3.14: `If-Match` with `*` or a list of ETags, compared weakly.
pub(crate) fn check_if_match(if_match: Option<&str>, version: i64) -> Result<()> {
    let Some(header) = if_match else {
        return Ok(());
    };
    if etag_matches(header, version) {
        Ok(())
    } else {
        Err(ScimError::status(
            412,
            format!("the resource has changed: its version is {}", etag(version)),
        ))
    }
}

/// Whether an `If-Match`/`If-None-Match` header value designates `version`.
pub fn etag_matches(header: &str, version: i64) -> bool {
    let want = version.to_string();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == want.as_str())
}

fn to_store_members(values: &[MemberValue]) -> Vec<Member> {
    values
        .iter()
        .map(|m| Member {
            value: m.value.clone(),
            kind: m.kind.unwrap_or(ResourceKind::User),
            display: m.display.clone(),
        })
        .collect()
}

/// Records a change of a resource in the outbox, in the caller's transaction.
async fn enqueue(tx: &mut Tx, org_id: i64, kind: ResourceKind, id: &str) -> Result<()> {
    let target = match kind {
        ResourceKind::User => Target::User,
        ResourceKind::Group => Target::Group,
    };
    tx.enqueue(org_id, target, id, None)
        .await
        .map_err(scim_error)
}

async fn add_members(
    tx: &mut Tx,
    org_id: i64,
    group_id: &str,
    values: &[MemberValue],
) -> Result<()> {
    tx.add_members(org_id, group_id, &to_store_members(values))
        .await
        .map_err(scim_error)?;
    let ids: Vec<String> = values.iter().map(|m| m.value.clone()).collect();
    tx.enqueue_members(org_id, group_id, &ids)
        .await
        .map_err(scim_error)
}

async fn remove_members(tx: &mut Tx, org_id: i64, group_id: &str, ids: &[String]) -> Result<()> {
    tx.remove_members(org_id, group_id, ids)
        .await
        .map_err(scim_error)?;
    tx.enqueue_members(org_id, group_id, ids)
        .await
        .map_err(scim_error)
}

/// Makes the stored member list equal to `wanted`, writing only the difference.
/// Returns whether anything changed.
async fn sync_members(
    tx: &mut Tx,
    org_id: i64,
    group_id: &str,
    wanted: &[MemberValue],
) -> Result<bool> {
    let current: HashSet<String> = tx
        .member_ids(org_id, group_id)
        .await
        .map_err(scim_error)?
        .into_iter()
        .collect();
    let wanted_ids: HashSet<&str> = wanted.iter().map(|m| m.value.as_str()).collect();
    let removed: Vec<String> = current
        .iter()
        .filter(|id| !wanted_ids.contains(id.as_str()))
        .cloned()
        .collect();
    let added: Vec<MemberValue> = wanted
        .iter()
        .filter(|m| !current.contains(&m.value))
        .cloned()
        .collect();
    if !removed.is_empty() {
        remove_members(tx, org_id, group_id, &removed).await?;
    }
    if !added.is_empty() {
        add_members(tx, org_id, group_id, &added).await?;
    }
    Ok(!removed.is_empty() || !added.is_empty())
}

/// Applies one member change of a PATCH. Returns whether it may have changed
/// the list.
async fn apply_member_change(
    tx: &mut Tx,
    org_id: i64,
    group_id: &str,
    change: &MemberChange,
) -> Result<bool> {
    match change {
        MemberChange::Add(values) => {
            add_members(tx, org_id, group_id, values).await?;
            Ok(!values.is_empty())
        }
        MemberChange::Remove(ids) => {
            remove_members(tx, org_id, group_id, ids).await?;
            Ok(!ids.is_empty())
        }
        MemberChange::Clear => {
            let ids = tx.member_ids(org_id, group_id).await.map_err(scim_error)?;
            tx.clear_members(org_id, group_id)
                .await
                .map_err(scim_error)?;
            tx.enqueue_members(org_id, group_id, &ids)
                .await
                .map_err(scim_error)?;
            Ok(!ids.is_empty())
        }
        MemberChange::RemoveWhere(filter) => {
            // Rare (a filter on something other than `value`): evaluated on the
            // member rows as this transaction sees them.
            let members = tx.members_of(org_id, group_id).await.map_err(scim_error)?;
            let wrapped =
                Filter::ValuePath(scim::AttrPath::new("members"), Box::new(filter.clone()));
            let doomed: Vec<String> = members
                .into_iter()
                .filter(|m| {
                    let probe = json!({"members": [{
                        "value": m.value, "type": m.kind.name(), "display": m.display,
                    }]});
                    wrapped.matches(ResourceKind::Group, &probe)
                })
                .map(|m| m.value)
                .collect();
            if doomed.is_empty() {
                return Ok(false);
            }
            remove_members(tx, org_id, group_id, &doomed).await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{etag_matches, password_in, PatchRequest, Value};

    #[test]
    fn etags_compare_weakly_and_accept_lists_and_star() {
        assert!(etag_matches("W/\"3\"", 3));
        assert!(etag_matches("\"3\"", 3));
        assert!(etag_matches("W/\"1\", W/\"3\"", 3));
        assert!(etag_matches("*", 9));
        assert!(!etag_matches("W/\"2\"", 3));
    }

    /// Every form of a PATCH that sets a password is seen before the write
    /// transaction, so that the password is hashed outside it.
    #[test]
    fn passwords_are_found_in_every_patch_form() {
        use serde_json::json;
        const URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
        let ops = |ops: Value| {
            PatchRequest::parse(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": ops,
            }))
            .unwrap()
        };
        for request in [
            json!([{"op": "replace", "path": "password", "value": "p1"}]),
            json!([{"op": "replace", "path": format!("{URN}:password"), "value": "p1"}]),
            json!([{"op": "add", "value": {"password": "p1"}}]),
            json!([{"op": "replace", "value": {"Password": "p1"}}]),
            json!([{"op": "replace", "value": {format!("{URN}:password"): "p1"}}]),
            json!([{"op": "replace", "value": {URN: {"password": "p1"}}}]),
            json!([
                {"op": "replace", "value": {"password": "p0"}},
                {"op": "replace", "value": {"displayName": "x", format!("{URN}:password"): "p1"}}
            ]),
        ] {
            assert_eq!(
                password_in(&ops(request.clone())).as_deref(),
                Some("p1"),
                "{request}"
            );
        }
        assert_eq!(
            password_in(&ops(json!([{"op": "remove", "path": "password"}]))),
            None
        );
    }
}
