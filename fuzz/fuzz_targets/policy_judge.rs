//! Arbitrary text → the policy judge (`rules::policy::Judge::scoped`), which reads the USING
//! and WITH CHECK text of the migrations and, later, of a live catalog (`pg_get_expr`).
//!
//! Beyond "no panic, no hang", two soundness properties that hold for every expression `e`
//! (new lines around `e` end a `--` comment in it):
//! - `(e) OR true` lets every row pass, so it is never tenant-scoped;
//! - `(e) AND true` is scoped whenever `e` is (unless the extra level takes it over the
//!   nesting the judge parses at all).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtask::{config::Tenancy, rules::policy::Judge, schema::QualName};

fuzz_target!(|data: &[u8]| {
    let expr = String::from_utf8_lossy(data);
    let judge = Judge::new(&Tenancy {
        settings: vec!["app.tenant_id".into()],
        check_functions: vec!["is_tenant_member".into()],
        ..Tenancy::default()
    });
    for names in [
        vec![QualName::new("public", "docs")],
        vec![QualName::new("public", "tenant_members")],
    ] {
        let scoped = judge.scoped(Some(&expr), &names).is_ok();
        let widened = format!("(\n{expr}\n) or true");
        assert!(
            judge.scoped(Some(&widened), &names).is_err(),
            "`{widened}` judged tenant-scoped"
        );
        let narrowed = format!("(\n{expr}\n) and true");
        // (Unless the extra level takes it over the nesting the judge parses at all.)
        if scoped && xtask::sql::too_deep(&narrowed).is_none() {
            assert!(
                judge.scoped(Some(&narrowed), &names).is_ok(),
                "`{expr}` is scoped but `{narrowed}` is not"
            );
        }
    }
});
