//! High availability: nodes sharing one PostgreSQL ledger, through the real binary, against
//! a throwaway cluster (`tests/support/pg.rs`) and the test SMTP server.

mod support;

use support::pg;
use support::skip::skip_or_fail;

/// The cluster every test here shares, or a skip (a failure under CI).
fn cluster() -> Option<&'static pg::Cluster> {
    let c = pg::shared();
    if c.is_none() {
        skip_or_fail(
            "PostgreSQL's initdb and pg_ctl are not installed (scripts/test installs them)",
        );
    }
    c
}

#[test]
fn each_test_gets_its_own_database_on_the_throwaway_cluster() {
    let Some(c) = cluster() else { return };
    let a = c.database("own_a");
    let b = c.database("own_b");
    assert_ne!(a.name, b.name);
    c.psql(
        &a,
        "CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (7)",
    );
    assert_eq!(c.psql(&a, "SELECT x FROM only_in_a"), "7");
    assert_eq!(
        c.psql(
            &b,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "0"
    );
    // Served on loopback, with the user the URL names.
    assert!(a.url().starts_with("postgresql://nhacviec@127.0.0.1:"));
    assert_eq!(c.psql(&a, "SELECT current_user"), "nhacviec");
}
