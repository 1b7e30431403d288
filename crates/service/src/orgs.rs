//! Organisations (tenants): creation, listing, deletion.

use crate::ServiceError;
use store::{Org, Store, StoreError};

/// Whether `slug` may name an organisation in URLs (`/o/<slug>/...`): 1 to 63
/// lower-case letters, digits and inner `-`.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// Longest display name of an organisation.
const MAX_NAME: usize = 200;

/// Creates an organisation; its name defaults to the slug.
pub async fn create(store: &Store, slug: &str, name: Option<&str>) -> Result<Org, ServiceError> {
    if !valid_slug(slug) {
        return Err(ServiceError::Invalid(format!(
            "invalid slug {slug:?}: use 1 to 63 lower-case letters, digits and inner '-'"
        )));
    }
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(slug);
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(format!(
            "the name must be at most {MAX_NAME} characters without control characters"
        )));
    }
    let mut tx = store.begin().await?;
    let org = match tx.create_org(slug, name).await {
        Ok(org) => org,
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::Conflict(format!(
                "organisation {slug} already exists"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(org)
}

/// The organisation of that slug, or `NotFound`.
pub async fn find(store: &Store, slug: &str) -> Result<Org, ServiceError> {
    store
        .org_by_slug(slug)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no organisation {slug}")))
}

/// Deletes an organisation and everything it holds.
pub async fn delete(store: &Store, slug: &str) -> Result<(), ServiceError> {
    let mut tx = store.begin().await?;
    if !tx.delete_org(slug).await? {
        return Err(ServiceError::NotFound(format!("no organisation {slug}")));
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(valid_slug("ecole-jaures-2"));
        for bad in ["", "-a", "a-", "Upper", "a_b", "a/b", &"a".repeat(64)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
