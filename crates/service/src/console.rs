//! The web console's rules: one-time login links, sessions, CSRF tokens,
//! who may see which organisation, the pages' read models and the audit log
//! every console action writes.
//!
//! A link or session secret is 32 random bytes in hex; the store keeps its
//! SHA-256 only. A session's CSRF token is derived from its secret (a keyed
//! hash under a fixed domain tag), so it needs no storage and cannot be
//! computed without the secret, which only the session's HttpOnly cookie holds.
//! An organisation admin asking for another organisation, or for an
//! operators' page, gets `NotFound`, as for an organisation that does not
//! exist.

use crate::apps::{self, ProvisioningView};
use crate::{rfc3339, Caller, ServiceError};
use rand::RngCore;
use sha2::{Digest, Sha256};
use store::{ConsoleGrant, NewAudit, Org, ResourceKind, SessionRecord, Store};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// How long a login link stays valid.
pub const LINK_TTL: Duration = Duration::minutes(10);
/// How long a session lasts (it is not extended).
pub const SESSION_TTL: Duration = Duration::hours(12);
/// Users per page of the users list.
pub const USERS_PER_PAGE: i64 = 50;
/// Entries per page of the audit log.
pub const AUDIT_PER_PAGE: i64 = 100;
/// Longest search prefix.
const MAX_PREFIX: usize = 200;

/// What the console records in its audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A login link was redeemed: a session began.
    Login,
    /// A session was ended.
    Logout,
    /// A user's parked deliveries were made due again.
    Retry,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::Logout => "logout",
            AuditAction::Retry => "retry",
        }
    }
}

/// A login link: the secret goes in the URL (`/console/login/{secret}`) and
/// is shown once.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub secret: String,
    /// The link's public name, which the sessions it opens are known by.
    pub label: String,
    pub expires: OffsetDateTime,
}

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub grant: ConsoleGrant,
    /// The organisation of an organisation admin.
    pub org: Option<Org>,
    /// Who signed in, as the audit log names them.
    pub actor: String,
    pub expires: OffsetDateTime,
}

impl Session {
    pub fn caller(&self) -> Caller {
        match self.grant {
            ConsoleGrant::Operator => Caller::Operator,
            ConsoleGrant::OrgAdmin(_) => Caller::OrgAdmin,
        }
    }

    pub fn is_operator(&self) -> bool {
        self.grant == ConsoleGrant::Operator
    }
}

/// A session just opened, with the secret for its cookie.
#[derive(Debug, Clone)]
pub struct Opened {
    pub secret: String,
    pub session: Session,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `s` has the shape of a secret (64 lower-case hex digits).
fn well_formed(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Issues a one-time login link for an operator (`None`) or an organisation's
/// admin, valid [`LINK_TTL`].
pub async fn issue_link(store: &Store, org: Option<&Org>) -> Result<IssuedLink, ServiceError> {
    let secret = random_hex(32);
    let label = format!("lk-{}", random_hex(4));
    let expires = OffsetDateTime::now_utc() + LINK_TTL;
    let grant = org.map_or(ConsoleGrant::Operator, |o| ConsoleGrant::OrgAdmin(o.id));
    let mut tx = store.begin().await?;
    tx.insert_console_link(&hash(&secret), &label, grant, expires)
        .await?;
    tx.commit().await?;
    Ok(IssuedLink {
        secret,
        label,
        expires,
    })
}

/// Redeems a login link once: opens a session and records the login.
/// `None` when the link is unknown, used or expired.
pub async fn redeem_link(store: &Store, secret: &str) -> Result<Option<Opened>, ServiceError> {
    if !well_formed(secret) {
        return Ok(None);
    }
    // The store keeps microseconds: so does the session returned.
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    let mut tx = store.begin().await?;
    let Some(link) = tx.redeem_console_link(&hash(secret), now).await? else {
        // The expired link, if any, is deleted all the same.
        tx.commit().await?;
        return Ok(None);
    };
    let record = SessionRecord {
        grant: link.grant,
        actor: format!("link:{}", link.label),
        created: now,
        expires: now + SESSION_TTL,
    };
    let session_secret = random_hex(32);
    tx.insert_console_session(&hash(&session_secret), &record)
        .await?;
    let org = match link.grant {
        ConsoleGrant::Operator => None,
        ConsoleGrant::OrgAdmin(id) => store.org_by_id(id).await?,
    };
    tx.insert_audit(&NewAudit {
        actor: &record.actor,
        grant: record.grant,
        org_slug: org.as_ref().map(|o| o.slug.as_str()),
        action: AuditAction::Login.as_str(),
        subject: None,
        detail: None,
    })
    .await?;
    tx.commit().await?;
    Ok(Some(Opened {
        secret: session_secret,
        session: Session {
            grant: record.grant,
            org,
            actor: record.actor,
            expires: record.expires,
        },
    }))
}

/// The unexpired session of a cookie's secret.
pub async fn session(store: &Store, secret: &str) -> Result<Option<Session>, ServiceError> {
    if !well_formed(secret) {
        return Ok(None);
    }
    let Some(record) = store
        .console_session(&hash(secret), OffsetDateTime::now_utc())
        .await?
    else {
        return Ok(None);
    };
    let org = match record.grant {
        ConsoleGrant::Operator => None,
        ConsoleGrant::OrgAdmin(id) => match store.org_by_id(id).await? {
            Some(org) => Some(org),
            None => return Ok(None),
        },
    };
    Ok(Some(Session {
        grant: record.grant,
        org,
        actor: record.actor,
        expires: record.expires,
    }))
}

/// Ends a session (the secret stops working at once) and records it.
pub async fn logout(store: &Store, session: &Session, secret: &str) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    if tx.delete_console_session(&hash(secret)).await? {
        audit(&mut tx, session, AuditAction::Logout, None, None).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The CSRF token of the session whose secret is `secret`.
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"liaison-console-csrf\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `presented` is the CSRF token of the session of `secret`.
pub fn csrf_ok(secret: &str, presented: &str) -> bool {
    csrf_token(secret)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("no such page".into())
}

/// The organisation of `slug` if the session may see it: any for an
/// operator, its own for an organisation admin; `NotFound` otherwise.
pub async fn org_for(store: &Store, session: &Session, slug: &str) -> Result<Org, ServiceError> {
    match (&session.grant, &session.org) {
        (ConsoleGrant::Operator, _) => store.org_by_slug(slug).await?.ok_or_else(not_found),
        (ConsoleGrant::OrgAdmin(id), Some(org)) if org.id == *id && org.slug == slug => {
            Ok(org.clone())
        }
        _ => Err(not_found()),
    }
}

/// `NotFound` unless the session is an operator's: operators' pages do not
/// exist for anyone else.
pub fn require_operator(session: &Session) -> Result<(), ServiceError> {
    if session.is_operator() {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// How one organisation stands, for the operators' overview.
#[derive(Debug, Clone)]
pub struct OrgHealthView {
    pub slug: String,
    pub name: String,
    pub users: i64,
    pub apps: i64,
    pub pending: i64,
    pub failed: i64,
    pub collisions: i64,
    /// Seconds since the oldest waiting delivery was enqueued.
    pub oldest_pending_secs: Option<i64>,
    /// The organisation's current or next maintenance window: start and end,
    /// RFC 3339.
    pub next_maintenance: Option<(String, String)>,
}

/// Every organisation with its users, apps and provisioning health
/// (operators only).
pub async fn overview(
    store: &Store,
    session: &Session,
) -> Result<Vec<OrgHealthView>, ServiceError> {
    require_operator(session)?;
    let now = OffsetDateTime::now_utc();
    // Every window not over yet, by start: each organisation's first one.
    let windows = store.maintenance_windows(None, now).await?;
    Ok(store
        .org_health()
        .await?
        .into_iter()
        .map(|h| OrgHealthView {
            next_maintenance: windows
                .iter()
                .find(|w| w.org_id == h.org.id)
                .map(|w| (rfc3339(w.starts), rfc3339(w.ends))),
            slug: h.org.slug,
            name: h.org.name,
            users: h.users,
            apps: h.apps,
            pending: h.pending,
            failed: h.failed,
            collisions: h.collisions,
            oldest_pending_secs: h.oldest_pending.map(|t| (now - t).whole_seconds().max(0)),
        })
        .collect())
}

/// One page of an organisation's users.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<store::UserEntry>,
    /// The cursor of the next page (`after`), when there is one.
    pub next: Option<String>,
}

/// The organisation's users whose userName starts with `prefix` (any case),
/// after the cursor `after`, [`USERS_PER_PAGE`] at most.
pub async fn users(
    store: &Store,
    org: &Org,
    prefix: &str,
    after: Option<&str>,
) -> Result<UserPage, ServiceError> {
    let prefix = prefix.trim().to_lowercase();
    if prefix.chars().count() > MAX_PREFIX {
        return Err(ServiceError::Invalid(format!(
            "the search is at most {MAX_PREFIX} characters"
        )));
    }
    let after = after.filter(|a| !a.is_empty() && a.chars().count() <= 1024);
    let mut users = store
        .user_page(org.id, &prefix, after, USERS_PER_PAGE + 1)
        .await?;
    let next = if users.len() as i64 > USERS_PER_PAGE {
        users.truncate(USERS_PER_PAGE as usize);
        users.last().map(|u| u.name_lc.clone())
    } else {
        None
    };
    Ok(UserPage { users, next })
}

/// A user and where they stand in every app of their organisation.
#[derive(Debug, Clone)]
pub struct UserView {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub provisioning: ProvisioningView,
}

/// One user of the organisation; `NotFound` when it has no such user.
pub async fn user(store: &Store, org: &Org, id: &str) -> Result<UserView, ServiceError> {
    let row = store
        .get_resource(org.id, ResourceKind::User, id)
        .await?
        .ok_or_else(not_found)?;
    let text = |k: &str| row.doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let provisioning = apps::provisioning(store, org, ResourceKind::User, id).await?;
    Ok(UserView {
        id: row.id.clone(),
        user_name: text("userName").unwrap_or_default(),
        display_name: text("displayName"),
        provisioning,
    })
}

/// Makes the user's parked deliveries due again in every app (the worker
/// delivers them from the directory's current state) and records it; returns
/// how many.
pub async fn retry_user(
    store: &Store,
    session: &Session,
    org: &Org,
    id: &str,
) -> Result<u64, ServiceError> {
    if store
        .get_resource(org.id, ResourceKind::User, id)
        .await?
        .is_none()
    {
        return Err(not_found());
    }
    let mut tx = store.begin().await?;
    let n = tx.retry_poisoned_of(org.id, id).await?;
    let detail = format!("{n} deliveries");
    audit_in(
        &mut tx,
        session,
        Some(&org.slug),
        AuditAction::Retry,
        Some(id),
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

async fn audit(
    tx: &mut store::Tx,
    session: &Session,
    action: AuditAction,
    subject: Option<&str>,
    detail: Option<&str>,
) -> Result<(), ServiceError> {
    let slug = session.org.as_ref().map(|o| o.slug.clone());
    audit_in(tx, session, slug.as_deref(), action, subject, detail).await
}

async fn audit_in(
    tx: &mut store::Tx,
    session: &Session,
    org_slug: Option<&str>,
    action: AuditAction,
    subject: Option<&str>,
    detail: Option<&str>,
) -> Result<(), ServiceError> {
    tx.insert_audit(&NewAudit {
        actor: &session.actor,
        grant: session.grant,
        org_slug,
        action: action.as_str(),
        subject,
        detail,
    })
    .await?;
    Ok(())
}

/// One entry of the audit log, as the console shows it.
#[derive(Debug, Clone)]
pub struct AuditView {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    pub actor: String,
    pub role: String,
    pub org: Option<String>,
    pub action: String,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

/// One page of the audit log, newest first (operators only).
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditView>,
    /// The cursor of the next (older) page.
    pub next: Option<i64>,
}

/// The audit log, newest first, before entry `before` (operators only).
pub async fn audit_log(
    store: &Store,
    session: &Session,
    before: Option<i64>,
) -> Result<AuditPage, ServiceError> {
    require_operator(session)?;
    let mut rows = store.audit_page(before, AUDIT_PER_PAGE + 1).await?;
    let next = if rows.len() as i64 > AUDIT_PER_PAGE {
        rows.truncate(AUDIT_PER_PAGE as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(AuditPage {
        entries: rows
            .into_iter()
            .map(|r| AuditView {
                id: r.id,
                at: rfc3339(r.at),
                actor: r.actor,
                role: r.role,
                org: r.org_slug,
                action: r.action,
                subject: r.subject,
                detail: r.detail,
            })
            .collect(),
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn stores() -> Vec<(&'static str, Store)> {
        store::testing::stores_under_test().await
    }

    #[tokio::test]
    async fn a_link_opens_one_session_once_and_logout_revokes_it() {
        for (label, store) in stores().await {
            let link = issue_link(&store, None).await.unwrap();
            let opened = redeem_link(&store, &link.secret)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{label}: the link opens a session"));
            assert!(opened.session.is_operator());
            assert_eq!(opened.session.actor, format!("link:{}", link.label));
            assert!(
                redeem_link(&store, &link.secret).await.unwrap().is_none(),
                "{label}: a link works once"
            );
            let s = session(&store, &opened.secret).await.unwrap().unwrap();
            assert_eq!(s, opened.session);
            logout(&store, &s, &opened.secret).await.unwrap();
            assert!(session(&store, &opened.secret).await.unwrap().is_none());
            let log = audit_log(&store, &s, None).await.unwrap();
            let actions: Vec<_> = log.entries.iter().map(|e| e.action.as_str()).collect();
            assert_eq!(actions, ["logout", "login"], "{label}");
        }
    }

    #[tokio::test]
    async fn expired_and_malformed_links_open_nothing() {
        for (label, store) in stores().await {
            let secret = random_hex(32);
            let mut tx = store.begin().await.unwrap();
            tx.insert_console_link(
                &hash(&secret),
                "lk-old",
                ConsoleGrant::Operator,
                OffsetDateTime::now_utc() - Duration::seconds(1),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            assert!(
                redeem_link(&store, &secret).await.unwrap().is_none(),
                "{label}"
            );
            for bad in ["", "zz", &"A".repeat(64), &secret[..63]] {
                assert!(redeem_link(&store, bad).await.unwrap().is_none());
                assert!(session(&store, bad).await.unwrap().is_none());
            }
        }
    }

    #[tokio::test]
    async fn an_org_admin_sees_only_its_organisation() {
        for (label, store) in stores().await {
            let mut tx = store.begin().await.unwrap();
            let a = tx.create_org("alpha", "Alpha").await.unwrap();
            tx.create_org("beta", "Beta").await.unwrap();
            tx.commit().await.unwrap();
            let link = issue_link(&store, Some(&a)).await.unwrap();
            let opened = redeem_link(&store, &link.secret).await.unwrap().unwrap();
            let s = opened.session;
            assert_eq!(org_for(&store, &s, "alpha").await.unwrap().id, a.id);
            for slug in ["beta", "nope"] {
                assert!(
                    matches!(
                        org_for(&store, &s, slug).await,
                        Err(ServiceError::NotFound(_))
                    ),
                    "{label}: {slug}"
                );
            }
            assert!(matches!(
                overview(&store, &s).await,
                Err(ServiceError::NotFound(_))
            ));
            assert!(matches!(
                audit_log(&store, &s, None).await,
                Err(ServiceError::NotFound(_))
            ));
        }
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let (a, b) = (random_hex(32), random_hex(32));
        assert!(csrf_ok(&a, &csrf_token(&a)));
        assert!(!csrf_ok(&a, &csrf_token(&b)));
        assert!(!csrf_ok(&a, ""));
    }
}
