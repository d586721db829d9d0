use super::*;
use crate::persistence::default_catalog::default_catalog;
use proptest::prelude::*;

fn spec(stock: i64, limit: i64) -> SaleSpec {
    SaleSpec {
        id: "spring".into(),
        node: "port".into(),
        good: "grain".into(),
        stock,
        price: 10,
        per_character_limit: limit,
        starts_at_ms: 1_000,
        ends_at_ms: 2_000,
    }
}

fn book(stock: i64, limit: i64) -> SaleBook {
    SaleBook::new(spec(stock, limit), 0, HashMap::new())
}

#[test]
fn refuses_outside_the_window_and_at_another_node() {
    let mut b = book(10, 2);
    let c = Uuid::new_v4();
    assert_eq!(b.reserve(1, c, "port", 1, 999), Err(SaleError::NotStarted));
    assert_eq!(b.reserve(1, c, "port", 1, 2_000), Err(SaleError::Ended));
    assert_eq!(
        b.reserve(1, c, "elsewhere", 1, 1_500),
        Err(SaleError::WrongNode("port".into()))
    );
    assert!(matches!(
        b.reserve(1, c, "port", 0, 1_500),
        Err(SaleError::Invalid(_))
    ));
    assert_eq!(b.reserved(), 0);
}

#[test]
fn the_limit_counts_bought_and_reserved_units() {
    let mut b = book(10, 3);
    let c = Uuid::new_v4();
    b.reserve(1, c, "port", 2, 1_500).unwrap();
    assert_eq!(
        b.reserve(2, c, "port", 2, 1_500),
        Err(SaleError::OverLimit { limit: 3, left: 1 })
    );
    b.settle(
        1,
        c,
        Outcome::Committed(Some(Committed { sold: 2, bought: 2 })),
    );
    assert_eq!(b.taken_by(c), 2);
    assert!(b.reserve(3, c, "port", 1, 1_500).is_ok());
    assert_eq!(
        b.reserve(4, c, "port", 1, 1_500),
        Err(SaleError::OverLimit { limit: 3, left: 0 })
    );
}

#[test]
fn stock_counts_open_reservations_and_frees_them_on_release() {
    let mut b = book(3, 5);
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    b.reserve(1, x, "port", 2, 1_500).unwrap();
    assert_eq!(
        b.reserve(2, y, "port", 2, 1_500),
        Err(SaleError::SoldOut(1))
    );
    assert!(!b.settle(1, x, Outcome::NotRun));
    assert!(b.reserve(2, y, "port", 3, 1_500).is_ok());
    assert_eq!(b.release(2).map(|h| h.quantity), Some(3));
    assert_eq!(b.available(), 3);
}

#[test]
fn a_refusal_or_an_unknown_commit_asks_for_a_read() {
    let mut b = book(3, 5);
    let x = Uuid::new_v4();
    b.reserve(1, x, "port", 1, 1_500).unwrap();
    assert!(b.settle(1, x, Outcome::Refused));
    b.reserve(2, x, "port", 1, 1_500).unwrap();
    assert!(b.settle(2, x, Outcome::Committed(None)));
    assert_eq!(b.reserved(), 0);
}

#[test]
fn adopting_rows_never_lowers_what_is_known() {
    let mut b = SaleBook::new(spec(10, 5), 4, HashMap::new());
    let x = Uuid::new_v4();
    b.adopt(x, Committed { sold: 3, bought: 1 });
    assert_eq!(b.sold, 4);
    b.adopt(x, Committed { sold: 6, bought: 2 });
    assert_eq!((b.sold, b.taken_by(x)), (6, 2));
}

#[test]
fn validation_names_the_field() {
    let catalog = default_catalog();
    let mut s = spec(10, 2);
    s.node = catalog.nodes()[0].code.clone();
    s.good = catalog.goods()[0].code.clone();
    assert_eq!(validate(&s, &catalog), Ok(()));
    let field = |f: fn(&mut SaleSpec)| {
        let mut t = s.clone();
        f(&mut t);
        validate(&t, &catalog).unwrap_err().0
    };
    assert_eq!(field(|t| t.node = "atlantis".into()), "node");
    assert_eq!(field(|t| t.good = "unobtainium".into()), "good");
    assert_eq!(field(|t| t.stock = 0), "stock");
    assert_eq!(field(|t| t.price = -1), "price");
    assert_eq!(field(|t| t.per_character_limit = 0), "per_character_limit");
    assert_eq!(field(|t| t.ends_at_ms = t.starts_at_ms), "ends_at");
    assert_eq!(field(|t| t.id = String::new()), "id");
}

#[test]
fn a_purchase_needs_gold_and_room() {
    let catalog = default_catalog();
    let f = catalog.factions()[0].code.clone();
    let bg = catalog.backgrounds()[0].code.clone();
    let mut c =
        rules::new_character(&catalog, Uuid::new_v4(), Uuid::new_v4(), "Ada", &f, &bg).unwrap();
    let good = catalog
        .goods()
        .iter()
        .find(|g| g.weight > 0)
        .unwrap()
        .code
        .clone();
    c.gold = 100;
    assert!(precheck_purchase(&c, &catalog, &good, 1, 100).is_ok());
    assert!(precheck_purchase(&c, &catalog, &good, 1, 101).is_err());
    assert!(precheck_purchase(&c, &catalog, &good, 1_000_000, 0).is_err());
}

/// One step of a random interleaving.
#[derive(Debug, Clone)]
enum Step {
    Reserve { buyer: usize, quantity: i64 },
    Commit(usize),
    Refuse(usize),
    NotRun(usize),
    Expire(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6usize, 1..4i64).prop_map(|(buyer, quantity)| Step::Reserve { buyer, quantity }),
        (0..64usize).prop_map(Step::Commit),
        (0..64usize).prop_map(Step::Refuse),
        (0..64usize).prop_map(Step::NotRun),
        (0..64usize).prop_map(Step::Expire),
    ]
}

proptest! {
    /// Any interleaving of reserve, settle (committed, refused, not run) and expiry, with the
    /// database applying commits: sold + reserved never exceeds the stock, no buyer ever holds
    /// more than the limit, and the book's sold never exceeds the database's.
    #[test]
    fn never_oversold_never_over_the_limit(
        stock in 1..20i64,
        limit in 1..5i64,
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let buyers: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
        let mut b = book(stock, limit);
        let mut open: Vec<(u64, usize, i64)> = Vec::new();
        let (mut db_sold, mut db_bought) = (0i64, vec![0i64; 6]);
        for (n, s) in steps.into_iter().enumerate() {
            let pick = |i: usize, open: &mut Vec<(u64, usize, i64)>| {
                (!open.is_empty()).then(|| open.remove(i % open.len()))
            };
            match s {
                Step::Reserve { buyer, quantity } => {
                    if b.reserve(n as u64, buyers[buyer], "port", quantity, 1_500).is_ok() {
                        open.push((n as u64, buyer, quantity));
                    }
                }
                Step::Commit(i) => if let Some((id, buyer, q)) = pick(i, &mut open) {
                    // The database's guards, as the purchase transaction writes them.
                    if db_sold + q <= stock && db_bought[buyer] + q <= limit {
                        db_sold += q;
                        db_bought[buyer] += q;
                        let rows = Committed { sold: db_sold, bought: db_bought[buyer] };
                        b.settle(id, buyers[buyer], Outcome::Committed(Some(rows)));
                    } else {
                        b.settle(id, buyers[buyer], Outcome::Refused);
                    }
                },
                Step::Refuse(i) => if let Some((id, buyer, _)) = pick(i, &mut open) {
                    b.settle(id, buyers[buyer], Outcome::Refused);
                },
                Step::NotRun(i) => if let Some((id, buyer, _)) = pick(i, &mut open) {
                    b.settle(id, buyers[buyer], Outcome::NotRun);
                },
                Step::Expire(i) => if let Some((id, _, _)) = pick(i, &mut open) {
                    b.release(id);
                },
            }
            prop_assert!(b.sold + b.reserved() <= stock);
            prop_assert!(b.sold <= db_sold);
            prop_assert!(db_sold <= stock);
            for (i, c) in buyers.iter().enumerate() {
                prop_assert!(b.taken_by(*c) <= limit);
                prop_assert!(db_bought[i] <= limit);
            }
        }
    }
}
