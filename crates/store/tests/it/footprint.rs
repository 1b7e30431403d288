//! Kept footprint results: one per organisation and month, replaced when a
//! month is computed again, read back oldest first, scoped by organisation.

use crate::common::*;
use store::testing::for_each_store;

#[tokio::test]
async fn results_are_kept_per_org_and_month_and_replaced() {
    for_each_store(|s| async move {
        let a = org(&s, "a").await;
        let b = org(&s, "b").await;
        for (period, v) in [
            ("2026-09", "1"),
            ("2026-10", "2"),
            ("2026-11", "3"),
            ("2026-12", "4"),
        ] {
            s.save_footprint(a.id, period, "m/1", &format!("{{\"v\":{v}}}"))
                .await
                .unwrap();
        }
        s.save_footprint(a.id, "2026-10", "m/2", "{\"v\":20}")
            .await
            .unwrap();
        s.save_footprint(b.id, "2026-10", "m/1", "{\"v\":99}")
            .await
            .unwrap();
        let h = s.footprint_history(a.id, "2026-12", 2).await.unwrap();
        let got: Vec<(&str, &str, &str)> = h
            .iter()
            .map(|r| (r.period.as_str(), r.method.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-10", "m/2", "{\"v\":20}"),
                ("2026-11", "m/1", "{\"v\":3}")
            ]
        );
        let hb = s.footprint_history(b.id, "2027-01", 24).await.unwrap();
        assert_eq!(hb.len(), 1);
        assert_eq!(hb[0].result, "{\"v\":99}");
        // Deleting an organisation deletes its results.
        let mut tx = s.begin().await.unwrap();
        assert!(tx.delete_org("b").await.unwrap());
        tx.commit().await.unwrap();
        assert!(s
            .footprint_history(b.id, "2027-01", 24)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}
