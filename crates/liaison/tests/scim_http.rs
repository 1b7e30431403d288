//! The SCIM endpoints end to end (in-process), on every store under test.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::App;
use serde_json::{json, Value};

const U: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const G: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn create_user(app: &App, token: &str, name: &str) -> String {
    let r = app
        .call(
            Method::POST,
            "/o/acme/scim/v2/Users",
            Some(token),
            Some(json!({"schemas": [U], "userName": name})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", app.label, r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

#[tokio::test]
async fn user_lifecycle_with_etags() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        let created = app
            .call(
                Method::POST,
                "/o/acme/scim/v2/Users",
                Some(&t),
                Some(json!({
                    "schemas": [U], "userName": "bjensen", "password": "t1meMa$heen",
                    "name": {"givenName": "Barbara", "familyName": "Jensen"},
                    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
                })),
                &[],
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let location = format!("http://liaison.test/o/acme/scim/v2/Users/{id}");
        assert_eq!(created.headers["location"], location.as_str());
        assert_eq!(created.headers["content-type"], "application/scim+json");
        assert_eq!(created.headers["etag"], "W/\"1\"");
        assert_eq!(created.body["meta"]["location"], location.as_str());
        assert_eq!(created.body["meta"]["resourceType"], "User");
        assert_eq!(created.body["meta"]["version"], "W/\"1\"");
        assert!(
            created.body.get("password").is_none(),
            "password is never returned"
        );

        let uri = format!("/o/acme/scim/v2/Users/{id}");
        let asked = app
            .call(
                Method::GET,
                &format!("{uri}?attributes=password,userName"),
                Some(&t),
                None,
                &[],
            )
            .await;
        assert!(asked.body.get("password").is_none());
        assert_eq!(asked.body["userName"], "bjensen");
        assert!(asked.body.get("name").is_none());

        let not_modified = app
            .call(
                Method::GET,
                &uri,
                Some(&t),
                None,
                &[("if-none-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);

        let patched = app
            .call(
                Method::PATCH,
                &uri,
                Some(&t),
                Some(patch(
                    json!([{"op": "replace", "path": "name.givenName", "value": "Babs"}]),
                )),
                &[("if-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        assert_eq!(patched.body["name"]["givenName"], "Babs");
        assert_eq!(patched.body["name"]["familyName"], "Jensen");
        assert_eq!(patched.headers["etag"], "W/\"2\"");

        let stale = app
            .call(
                Method::PUT,
                &uri,
                Some(&t),
                Some(json!({"schemas": [U], "userName": "bjensen"})),
                &[("if-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        let still = app.call(Method::GET, &uri, Some(&t), None, &[]).await;
        assert_eq!(
            still.body["name"]["givenName"], "Babs",
            "a refused PUT writes nothing"
        );

        let put = app
            .call(
                Method::PUT,
                &uri,
                Some(&t),
                Some(json!({"schemas": [U], "userName": "bjensen", "displayName": "B J"})),
                &[("if-match", "W/\"2\"")],
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
        assert_eq!(put.body["displayName"], "B J");
        assert!(
            put.body.get("name").is_none(),
            "PUT replaces the whole resource"
        );

        let deleted = app.call(Method::DELETE, &uri, Some(&t), None, &[]).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        let gone = app.call(Method::GET, &uri, Some(&t), None, &[]).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        assert_eq!(
            gone.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(gone.body["status"], "404");
    }
}

#[tokio::test]
async fn names_are_unique_case_insensitively() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        create_user(&app, &t, "BJensen").await;
        let dup = app
            .call(
                Method::POST,
                "/o/acme/scim/v2/Users",
                Some(&t),
                Some(json!({"schemas": [U], "userName": "bjensen"})),
                &[],
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT, "{}", app.label);
        assert_eq!(dup.body["scimType"], "uniqueness");
        let g = json!({"schemas": [G], "displayName": "Staff"});
        assert_eq!(
            app.call(
                Method::POST,
                "/o/acme/scim/v2/Groups",
                Some(&t),
                Some(g),
                &[]
            )
            .await
            .status,
            StatusCode::CREATED
        );
        let g2 = json!({"schemas": [G], "displayName": "STAFF"});
        let dup = app
            .call(
                Method::POST,
                "/o/acme/scim/v2/Groups",
                Some(&t),
                Some(g2),
                &[],
            )
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        assert_eq!(dup.body["scimType"], "uniqueness");
        // The same userName in another organisation is fine.
        let t2 = app.org("other").await;
        let r = app
            .call(
                Method::POST,
                "/o/other/scim/v2/Users",
                Some(&t2),
                Some(json!({"schemas": [U], "userName": "bjensen"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
}

#[tokio::test]
async fn bad_input_gets_scim_errors() {
    let mut config = liaison::config::Config::default();
    config.limits.max_body_bytes = 2048;
    for app in common::apps_with(config).await {
        let t = app.org("acme").await;
        let big = json!({"schemas": [U], "userName": "x".repeat(4096)});
        let r = app
            .call(
                Method::POST,
                "/o/acme/scim/v2/Users",
                Some(&t),
                Some(big),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.body["status"], "413");

        let req = Request::post("/o/acme/scim/v2/Users")
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/scim+json")
            .body(Body::from("{\"schemas\": [oops"))
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["scimType"], "invalidSyntax");

        let r = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/Users?filter=userName%20eq",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["scimType"], "invalidFilter");

        let deep = format!("{}userName pr{}", "not (".repeat(200), ")".repeat(200));
        let uri = format!(
            "/o/acme/scim/v2/Users?filter={}",
            deep.replace(' ', "%20")
                .replace('(', "%28")
                .replace(')', "%29")
        );
        let r = app.call(Method::GET, &uri, Some(&t), None, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["scimType"], "invalidFilter");

        let r = app
            .call(Method::GET, "/o/acme/scim/v2/Widgets", Some(&t), None, &[])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        let r = app
            .call(
                Method::POST,
                "/o/acme/scim/v2/Users",
                Some(&t),
                Some(json!({"schemas": [U], "userName": "a", "active": "maybe"})),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["scimType"], "invalidValue");

        let id = create_user(&app, &t, "carol").await;
        let r = app
            .call(
                Method::PATCH,
                &format!("/o/acme/scim/v2/Users/{id}"),
                Some(&t),
                Some(patch(json!([
                    {"op": "replace", "path": "displayName", "value": "Carol"},
                    {"op": "replace", "path": "nonsense.path", "value": 1}
                ]))),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["scimType"], "invalidPath");
        let after = app
            .call(
                Method::GET,
                &format!("/o/acme/scim/v2/Users/{id}"),
                Some(&t),
                None,
                &[],
            )
            .await;
        assert!(
            after.body.get("displayName").is_none(),
            "a failed PATCH writes nothing"
        );
        assert_eq!(after.body["meta"]["version"], "W/\"1\"");

        let r = app
            .call(
                Method::PATCH,
                &format!("/o/acme/scim/v2/Users/{id}"),
                Some(&t),
                Some(patch(
                    json!([{"op": "replace", "path": "id", "value": "x"}]),
                )),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["scimType"], "mutability");
    }
}

#[tokio::test]
async fn plain_json_content_type_is_accepted() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        let req = Request::post("/o/acme/scim/v2/Users")
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"schemas": [U], "userName": "plain"}).to_string(),
            ))
            .unwrap();
        assert_eq!(app.send(req).await.status, StatusCode::CREATED);
    }
}

#[tokio::test]
async fn lists_filter_sort_and_page_in_the_database() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
            create_user(&app, &t, name).await;
        }
        let r = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=2",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["totalResults"], 5);
        assert_eq!(r.body["startIndex"], 2);
        assert_eq!(r.body["itemsPerPage"], 2);
        let names: Vec<&str> = r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["delta", "charlie"], "{}", app.label);

        let r = app
            .call(Method::GET, "/o/acme/scim/v2/Users?filter=userName%20sw%20%22A%22%20or%20userName%20eq%20%22ECHO%22&sortBy=userName", Some(&t), None, &[])
            .await;
        let names: Vec<&str> = r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alpha", "echo"]);

        let search = app
            .call(Method::POST, "/o/acme/scim/v2/Users/.search", Some(&t), Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "userName gt \"c\"", "sortBy": "userName", "attributes": ["userName"], "count": 10
            })), &[])
            .await;
        assert_eq!(search.status, StatusCode::OK);
        assert_eq!(search.body["totalResults"], 3);
        assert!(search.body["Resources"][0].get("meta").is_none());

        let zero = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/Users?count=0",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(zero.body["totalResults"], 5);
        assert_eq!(zero.body["itemsPerPage"], 0);
    }
}

#[tokio::test]
async fn page_size_is_capped_at_max_results() {
    let mut config = liaison::config::Config::default();
    config.limits.max_results = 3;
    for app in common::apps_with(config).await {
        let t = app.org("acme").await;
        for i in 0..5 {
            create_user(&app, &t, &format!("user{i}")).await;
        }
        let r = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/Users?count=100",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(r.body["totalResults"], 5);
        assert_eq!(r.body["itemsPerPage"], 3);
        let spc = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/ServiceProviderConfig",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(spc.body["filter"]["maxResults"], 3);
    }
}

#[tokio::test]
async fn group_members_put_as_a_diff_and_patched_as_rows() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        let mut ids = Vec::new();
        for i in 0..30 {
            ids.push(create_user(&app, &t, &format!("member{i:02}")).await);
        }
        let members: Vec<Value> = ids[..20].iter().map(|id| json!({"value": id})).collect();
        let g = app
            .call(
                Method::POST,
                "/o/acme/scim/v2/Groups",
                Some(&t),
                Some(json!({"schemas": [G], "displayName": "Staff", "members": members})),
                &[],
            )
            .await;
        assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
        let gid = g.body["id"].as_str().unwrap().to_owned();
        let uri = format!("/o/acme/scim/v2/Groups/{gid}");
        assert_eq!(g.body["members"].as_array().unwrap().len(), 20);
        assert_eq!(g.body["members"][0]["type"], "User");
        assert!(g.body["members"][0]["$ref"]
            .as_str()
            .unwrap()
            .ends_with(&format!(
                "/Users/{}",
                g.body["members"][0]["value"].as_str().unwrap()
            )));

        // Keycloak style: PUT with the whole list, one member swapped.
        let mut list: Vec<Value> = ids[1..20].iter().map(|id| json!({"value": id})).collect();
        list.push(json!({"value": ids[25]}));
        let put = app
            .call(
                Method::PUT,
                &uri,
                Some(&t),
                Some(json!({"schemas": [G], "displayName": "Staff", "members": list})),
                &[],
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
        let got: std::collections::HashSet<&str> = put.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        assert_eq!(got.len(), 20);
        assert!(!got.contains(ids[0].as_str()) && got.contains(ids[25].as_str()));
        assert_eq!(put.body["meta"]["version"], "W/\"2\"");

        // The same PUT again changes nothing and keeps the version.
        let again = app
            .call(Method::PUT, &uri, Some(&t), Some(json!({"schemas": [G], "displayName": "Staff", "members": put.body["members"].clone()})), &[])
            .await;
        assert_eq!(again.body["meta"]["version"], "W/\"2\"");

        let add = app
            .call(
                Method::PATCH,
                &uri,
                Some(&t),
                Some(patch(
                    json!([{"op": "add", "path": "members", "value": [{"value": ids[29]}]}]),
                )),
                &[],
            )
            .await;
        assert_eq!(add.status, StatusCode::OK, "{}", add.body);
        assert_eq!(add.body["members"].as_array().unwrap().len(), 21);

        let rm = app
            .call(
                Method::PATCH,
                &format!("{uri}?excludedAttributes=members"),
                Some(&t),
                Some(patch(json!([
                    {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[29])},
                    {"op": "Remove", "path": "members", "value": [{"value": ids[25]}]}
                ]))),
                &[],
            )
            .await;
        assert_eq!(rm.status, StatusCode::OK, "{}", rm.body);
        assert!(
            rm.body.get("members").is_none(),
            "excludedAttributes=members is honoured"
        );
        let full = app.call(Method::GET, &uri, Some(&t), None, &[]).await;
        assert_eq!(full.body["members"].as_array().unwrap().len(), 19);

        let excluded = app
            .call(
                Method::GET,
                &format!("{uri}?excludedAttributes=members"),
                Some(&t),
                None,
                &[],
            )
            .await;
        assert!(excluded.body.get("members").is_none());
        assert_eq!(excluded.body["displayName"], "Staff");

        // The user's groups attribute reflects membership.
        let u = app
            .call(
                Method::GET,
                &format!("/o/acme/scim/v2/Users/{}", ids[1]),
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(u.body["groups"][0]["value"], gid.as_str());
        assert_eq!(u.body["groups"][0]["display"], "Staff");

        let by_member = app
            .call(
                Method::GET,
                &format!(
                    "/o/acme/scim/v2/Groups?filter=members.value%20eq%20%22{}%22",
                    ids[1]
                ),
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(by_member.body["totalResults"], 1, "{}", by_member.body);

        // Deleting a user removes it from the group.
        app.call(
            Method::DELETE,
            &format!("/o/acme/scim/v2/Users/{}", ids[1]),
            Some(&t),
            None,
            &[],
        )
        .await;
        let full = app.call(Method::GET, &uri, Some(&t), None, &[]).await;
        assert_eq!(full.body["members"].as_array().unwrap().len(), 18);
    }
}

#[tokio::test]
async fn client_tolerances() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        let id = create_user(&app, &t, "okta").await;
        let uri = format!("/o/acme/scim/v2/Users/{id}");
        // Okta: path-less replace with a value object.
        let r = app
            .call(
                Method::PATCH,
                &uri,
                Some(&t),
                Some(patch(
                    json!([{"op": "replace", "value": {"active": false}}]),
                )),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], false);
        // Entra ID: capitalised op and boolean strings.
        let r = app
            .call(
                Method::PATCH,
                &uri,
                Some(&t),
                Some(patch(
                    json!([{"op": "Replace", "path": "active", "value": "True"}]),
                )),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], true);
        // Dotted and URN-prefixed keys in a path-less value.
        let r = app
            .call(
                Method::PATCH,
                &uri,
                Some(&t),
                Some(patch(json!([{"op": "add", "value": {
                    "name.givenName": "Ada",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Maths"
                }}]))),
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["name"]["givenName"], "Ada");
        assert_eq!(
            r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Maths"
        );
        let f = app
            .call(Method::GET, "/o/acme/scim/v2/Users?filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department%20eq%20%22maths%22", Some(&t), None, &[])
            .await;
        assert_eq!(f.body["totalResults"], 1, "{}", f.body);
    }
}

#[tokio::test]
async fn bulk_resolves_bulk_ids_and_stops_on_errors() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        let r = app
            .call(Method::POST, "/o/acme/scim/v2/Bulk", Some(&t), Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [G], "displayName": "Team", "members": [{"type": "User", "value": "bulkId:u"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"schemas": [U], "userName": "bulk.user"}}
                ]
            })), &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let ops = r.body["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), 2);
        assert!(ops.iter().all(|o| o["status"] == "201"), "{}", r.body);
        let g = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/Groups?filter=displayName%20eq%20%22Team%22",
                Some(&t),
                None,
                &[],
            )
            .await;
        let member = g.body["Resources"][0]["members"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        let u = app
            .call(
                Method::GET,
                &format!("/o/acme/scim/v2/Users/{member}"),
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(u.body["userName"], "bulk.user");

        let r = app
            .call(Method::POST, "/o/acme/scim/v2/Bulk", Some(&t), Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1,
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [U], "userName": "bulk.user"}},
                    {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [U], "userName": "never.created"}}
                ]
            })), &[])
            .await;
        let ops = r.body["Operations"].as_array().unwrap();
        assert_eq!(
            ops.len(),
            1,
            "failOnErrors stops after the first error: {}",
            r.body
        );
        assert_eq!(ops[0]["status"], "409");
        assert_eq!(ops[0]["response"]["scimType"], "uniqueness");
        let none = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/Users?filter=userName%20eq%20%22never.created%22",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(none.body["totalResults"], 0);
    }
}

#[tokio::test]
async fn discovery_health_and_metrics() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        let spc = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/ServiceProviderConfig",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(spc.status, StatusCode::OK);
        assert_eq!(spc.body["patch"]["supported"], true);
        assert_eq!(spc.body["bulk"]["supported"], true);
        assert_eq!(spc.body["etag"]["supported"], true);
        let rts = app
            .call(
                Method::GET,
                "/o/acme/scim/v2/ResourceTypes",
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(rts.status, StatusCode::OK);
        let schemas = app
            .call(Method::GET, "/o/acme/scim/v2/Schemas", Some(&t), None, &[])
            .await;
        assert_eq!(schemas.status, StatusCode::OK);
        let one = app
            .call(
                Method::GET,
                &format!("/o/acme/scim/v2/Schemas/{U}"),
                Some(&t),
                None,
                &[],
            )
            .await;
        assert_eq!(one.body["id"], U);
        assert_eq!(
            app.call(Method::GET, "/healthz", None, None, &[])
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            app.call(Method::GET, "/readyz", None, None, &[])
                .await
                .status,
            StatusCode::OK
        );
        let operator = common::operator_token(&app.store).await;
        let m = app
            .call(Method::GET, "/metrics", Some(&operator), None, &[])
            .await;
        let text = m.body.as_str().unwrap_or_default().to_owned();
        assert!(text.contains("liaison_http_requests_total"), "{text}");
        assert!(
            text.contains("route=\"/o/{org}/scim/v2/Schemas/{id}\""),
            "{text}"
        );
    }
}

#[tokio::test]
async fn passwords_set_by_patch_are_hashed_and_never_returned() {
    for app in common::apps().await {
        let t = app.org("acme").await;
        let id = create_user(&app, &t, "pat").await;
        let uri = format!("/o/acme/scim/v2/Users/{id}");
        for body in [
            json!([{"op": "replace", "path": "password", "value": "n3w-Secret"}]),
            json!([{"op": "Replace", "value": {"password": "an0ther-Secret"}}]),
            json!([{"op": "replace", "value": {
                "urn:ietf:params:scim:schemas:core:2.0:User:password": "urn-Secret"}}]),
        ] {
            let r = app
                .call(Method::PATCH, &uri, Some(&t), Some(patch(body)), &[])
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}: {}", app.label, r.body);
            assert!(r.body.get("password").is_none());
        }
        let org = app.store.org_by_slug("acme").await.unwrap().unwrap();
        let stored = app
            .store
            .get_resource(org.id, scim::ResourceKind::User, &id)
            .await
            .unwrap()
            .unwrap();
        let hash = stored.password_hash.expect("a hash is stored");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("urn-Secret"));
        let parsed = argon2::PasswordHash::new(&hash).unwrap();
        use argon2::PasswordVerifier;
        assert!(argon2::Argon2::default()
            .verify_password(b"urn-Secret", &parsed)
            .is_ok());
        assert_eq!(stored.version, 4, "{}", app.label);
    }
}

/// `/metrics` names every organisation and app: it answers operators and the
/// configured metrics token only, unless configured public.
#[tokio::test]
async fn metrics_need_an_operator_or_the_metrics_token() {
    let dir = std::env::temp_dir().join(format!("liaison-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    let metrics_token = "m".repeat(40);
    std::fs::write(&token_file, format!("{metrics_token}\n")).unwrap();
    let config_file = dir.join("liaison.toml");
    std::fs::write(
        &config_file,
        format!(
            "[metrics]\ntoken_file = {:?}\n",
            token_file.display().to_string()
        ),
    )
    .unwrap();
    let config = liaison::config::Config::load(Some(&config_file)).unwrap();
    for app in common::apps_with(config).await {
        let l = &app.label;
        let org_token = app.org("acme").await;
        let operator = common::operator_token(&app.store).await;
        for (token, expected) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(org_token.as_str()), StatusCode::UNAUTHORIZED),
            (Some("not-a-token"), StatusCode::UNAUTHORIZED),
            (Some(operator.as_str()), StatusCode::OK),
            (Some(metrics_token.as_str()), StatusCode::OK),
        ] {
            let m = app.call(Method::GET, "/metrics", token, None, &[]).await;
            assert_eq!(m.status, expected, "{l}: {token:?}");
            let text = m.body.as_str().unwrap_or_default();
            assert_eq!(
                text.contains("acme") || text.contains("liaison_http"),
                expected == StatusCode::OK,
                "{l}: {token:?}: {text}"
            );
        }
    }
    let public = liaison::config::Config {
        metrics: toml::from_str("public = true").unwrap(),
        ..Default::default()
    };
    for app in common::apps_with(public).await {
        let m = app.call(Method::GET, "/metrics", None, None, &[]).await;
        assert_eq!(m.status, StatusCode::OK, "{}", app.label);
    }
    std::fs::remove_dir_all(&dir).ok();
}
