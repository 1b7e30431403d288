//! Tenant isolation: a token of organisation A gets 401 or 404 on every endpoint
//! of organisation B, sees none of B's resources, and cannot reference them.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

#[tokio::test]
async fn a_token_of_one_org_opens_nothing_of_another() {
    for app in common::apps().await {
        let token_a = app.org("alpha").await;
        let token_b = app.org("beta").await;
        let user = app
            .call(
                Method::POST,
                "/o/beta/scim/v2/Users",
                Some(&token_b),
                Some(json!({"schemas": [U], "userName": "b.user"})),
                &[],
            )
            .await;
        assert_eq!(user.status, StatusCode::CREATED, "{}", app.label);
        let uid = user.body["id"].as_str().unwrap().to_owned();
        let group = app
            .call(
                Method::POST,
                "/o/beta/scim/v2/Groups",
                Some(&token_b),
                Some(
                    json!({"schemas": [G], "displayName": "b.group", "members": [{"value": uid}]}),
                ),
                &[],
            )
            .await;
        assert_eq!(group.status, StatusCode::CREATED, "{}", app.label);
        let gid = group.body["id"].as_str().unwrap().to_owned();

        let user_body = json!({"schemas": [U], "userName": "intruder"});
        let patch_body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]});
        let search_body =
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
        let bulk_body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"method": "DELETE", "path": format!("/Users/{uid}")}]});
        let endpoints: Vec<(Method, String, Option<serde_json::Value>)> = vec![
            (Method::GET, "/ServiceProviderConfig".into(), None),
            (Method::GET, "/ResourceTypes".into(), None),
            (Method::GET, "/ResourceTypes/User".into(), None),
            (Method::GET, "/Schemas".into(), None),
            (Method::GET, format!("/Schemas/{U}"), None),
            (Method::GET, "/Users".into(), None),
            (Method::GET, "/Groups".into(), None),
            (Method::POST, "/Users".into(), Some(user_body.clone())),
            (
                Method::POST,
                "/Groups".into(),
                Some(json!({"schemas": [G], "displayName": "g"})),
            ),
            (
                Method::POST,
                "/Users/.search".into(),
                Some(search_body.clone()),
            ),
            (
                Method::POST,
                "/Groups/.search".into(),
                Some(search_body.clone()),
            ),
            (Method::POST, "/.search".into(), Some(search_body.clone())),
            (Method::POST, "/Bulk".into(), Some(bulk_body.clone())),
            (Method::GET, format!("/Users/{uid}"), None),
            (
                Method::PUT,
                format!("/Users/{uid}"),
                Some(user_body.clone()),
            ),
            (
                Method::PATCH,
                format!("/Users/{uid}"),
                Some(patch_body.clone()),
            ),
            (Method::DELETE, format!("/Users/{uid}"), None),
            (Method::GET, format!("/Groups/{gid}"), None),
            (
                Method::PUT,
                format!("/Groups/{gid}"),
                Some(json!({"schemas": [G], "displayName": "g"})),
            ),
            (
                Method::PATCH,
                format!("/Groups/{gid}"),
                Some(patch_body.clone()),
            ),
            (Method::DELETE, format!("/Groups/{gid}"), None),
            (Method::GET, "/Me".into(), None),
        ];
        for (method, path, body) in &endpoints {
            let uri = format!("/o/beta/scim/v2{path}");
            let wrong = app
                .call(method.clone(), &uri, Some(&token_a), body.clone(), &[])
                .await;
            assert_eq!(
                wrong.status,
                StatusCode::NOT_FOUND,
                "{} {method} {uri} with another org's token",
                app.label
            );
            let none = app
                .call(method.clone(), &uri, None, body.clone(), &[])
                .await;
            assert_eq!(
                none.status,
                StatusCode::UNAUTHORIZED,
                "{} {method} {uri} without token",
                app.label
            );
            let forged = format!("{}0", &token_b[..token_b.len() - 1]);
            let forged = if forged == token_b {
                format!("{}1", &token_b[..token_b.len() - 1])
            } else {
                forged
            };
            let bad = app
                .call(method.clone(), &uri, Some(&forged), body.clone(), &[])
                .await;
            assert_eq!(
                bad.status,
                StatusCode::UNAUTHORIZED,
                "{} {method} {uri} with a forged token",
                app.label
            );
            // B's resources seen through A's own base URL do not exist.
            let own = app
                .call(
                    method.clone(),
                    &format!("/o/alpha/scim/v2{path}"),
                    Some(&token_a),
                    body.clone(),
                    &[],
                )
                .await;
            if path.contains(&uid) || path.contains(&gid) {
                assert_eq!(
                    own.status,
                    StatusCode::NOT_FOUND,
                    "{} {method} {path} through alpha",
                    app.label
                );
            }
        }
        // B is untouched: its user and group still exist with their membership.
        let g = app
            .call(
                Method::GET,
                &format!("/o/beta/scim/v2/Groups/{gid}"),
                Some(&token_b),
                None,
                &[],
            )
            .await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.body["displayName"], "b.group");
        assert_eq!(g.body["members"][0]["value"], uid.as_str());
        // A's lists and searches never show B's resources.
        let list = app
            .call(
                Method::GET,
                "/o/alpha/scim/v2/Users?filter=userName%20eq%20%22b.user%22",
                Some(&token_a),
                None,
                &[],
            )
            .await;
        assert_eq!(list.body["totalResults"], 0, "{}", app.label);
        // A cannot put B's user into one of its own groups.
        let cross = app
            .call(
                Method::POST,
                "/o/alpha/scim/v2/Groups",
                Some(&token_a),
                Some(json!({"schemas": [G], "displayName": "steal", "members": [{"value": uid}]})),
                &[],
            )
            .await;
        assert_eq!(cross.status, StatusCode::BAD_REQUEST, "{}", app.label);
        assert_eq!(cross.body["scimType"], "invalidValue");
        let after = app
            .call(
                Method::GET,
                "/o/alpha/scim/v2/Groups?filter=displayName%20eq%20%22steal%22",
                Some(&token_a),
                None,
                &[],
            )
            .await;
        assert_eq!(
            after.body["totalResults"], 0,
            "no partial write: {}",
            app.label
        );
    }
}
