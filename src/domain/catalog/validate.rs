//! [`Catalog::validate`]: the pure checks that a catalog describes a playable world.

use std::collections::{HashSet, VecDeque};

use super::Catalog;

/// Every problem found in a catalog, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct CatalogError {
    pub problems: Vec<String>,
}

/// Whether `code` is lowercase ASCII snake_case: `[a-z][a-z0-9_]*`, no trailing or double `_`.
pub fn is_code(code: &str) -> bool {
    let b = code.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && !code.ends_with('_')
        && !code.contains("__")
}

pub(super) fn validate(c: &Catalog) -> Result<(), CatalogError> {
    let mut p: Vec<String> = Vec::new();

    // Codes: well formed and unique per table.
    let tables: [(&str, Vec<&str>, usize); 8] = [
        (
            "faction",
            c.factions().iter().map(|x| x.code.as_str()).collect(),
            c.factions.duplicates(),
        ),
        (
            "background",
            c.backgrounds().iter().map(|x| x.code.as_str()).collect(),
            c.backgrounds.duplicates(),
        ),
        (
            "skill tree",
            c.skill_trees().iter().map(|x| x.code.as_str()).collect(),
            c.skill_trees.duplicates(),
        ),
        (
            "skill",
            c.skills().iter().map(|x| x.code.as_str()).collect(),
            c.skills.duplicates(),
        ),
        (
            "item",
            c.items().iter().map(|x| x.code.as_str()).collect(),
            c.items.duplicates(),
        ),
        (
            "crew archetype",
            c.crew_archetypes()
                .iter()
                .map(|x| x.code.as_str())
                .collect(),
            c.crew.duplicates(),
        ),
        (
            "good",
            c.goods().iter().map(|x| x.code.as_str()).collect(),
            c.goods.duplicates(),
        ),
        (
            "trade node",
            c.nodes().iter().map(|x| x.code.as_str()).collect(),
            c.nodes.duplicates(),
        ),
    ];
    for (what, codes, duplicates) in &tables {
        for code in codes {
            if !is_code(code) {
                p.push(format!("{what} code `{code}` is not lowercase snake_case"));
            }
        }
        if *duplicates > 0 {
            p.push(format!("{duplicates} duplicate {what} code(s)"));
        }
    }
    for (what, empty) in [
        ("faction", c.factions().is_empty()),
        ("background", c.backgrounds().is_empty()),
        ("good", c.goods().is_empty()),
        ("trade node", c.nodes().is_empty()),
    ] {
        if empty {
            p.push(format!("no {what}: the world is not playable"));
        }
    }

    for f in c.factions() {
        if c.node(&f.home_node).is_none() {
            p.push(format!(
                "faction `{}` has unknown home node `{}`",
                f.code, f.home_node
            ));
        }
    }
    for n in c.nodes() {
        if let Some(f) = &n.faction {
            if c.faction(f).is_none() {
                p.push(format!(
                    "trade node `{}` belongs to unknown faction `{f}`",
                    n.code
                ));
            }
        }
    }
    for b in c.backgrounds() {
        if b.starting_gold < 0 {
            p.push(format!(
                "background `{}` has negative starting gold",
                b.code
            ));
        }
        if [b.strength, b.cunning, b.charisma, b.endurance]
            .iter()
            .any(|a| *a < 0)
        {
            p.push(format!("background `{}` has a negative attribute", b.code));
        }
    }

    for s in c.skills() {
        if c.skill_tree(&s.tree).is_none() {
            p.push(format!(
                "skill `{}` is in unknown tree `{}`",
                s.code, s.tree
            ));
        }
        if s.tier < 1 || s.cost < 0 || s.cooldown < 0 {
            p.push(format!(
                "skill `{}` needs tier >= 1, cost >= 0 and cooldown >= 0",
                s.code
            ));
        }
        if let Some(req) = &s.requires {
            match c.skill(req) {
                None => p.push(format!("skill `{}` requires unknown skill `{req}`", s.code)),
                // A prerequisite sits on a lower tier, which also rules out cycles.
                Some(r) if r.tier >= s.tier => p.push(format!(
                    "skill `{}` requires `{req}` of the same or a higher tier",
                    s.code
                )),
                Some(_) => {}
            }
        }
    }
    for i in c.items() {
        if i.value < 0 || i.weight < 0 {
            p.push(format!("item `{}` has a negative value or weight", i.code));
        }
    }
    for k in c.crew_archetypes() {
        if k.hp <= 0 || k.hire_cost < 0 || k.upkeep < 0 || k.capacity < 0 {
            p.push(format!(
                "crew archetype `{}` needs hp > 0 and non-negative costs and capacity",
                k.code
            ));
        }
    }
    for g in c.goods() {
        if g.base_price <= 0 || g.weight < 0 {
            p.push(format!(
                "good `{}` needs a positive base price and a non-negative weight",
                g.code
            ));
        }
    }

    let mut seen_routes = HashSet::new();
    for r in c.routes() {
        let name = format!("route `{}` -> `{}`", r.from_node, r.to_node);
        if !seen_routes.insert((r.from_node.as_str(), r.to_node.as_str())) {
            p.push(format!("{name} is listed twice"));
        }
        for end in [&r.from_node, &r.to_node] {
            if c.node(end).is_none() {
                p.push(format!("{name} names unknown node `{end}`"));
            }
        }
        if r.from_node == r.to_node {
            p.push(format!("{name} leads nowhere"));
        }
        if r.distance <= 0 {
            p.push(format!("{name} needs a positive distance"));
        }
        if !(0..=100).contains(&r.danger) {
            p.push(format!("{name} has danger {} outside 0..=100", r.danger));
        }
        if c.route(&r.to_node, &r.from_node).is_none() {
            p.push(format!("{name} has no way back"));
        }
    }

    let mut seen_stock = HashSet::new();
    for s in c.all_stock() {
        let name = format!("stock `{}`/`{}`", s.node, s.good);
        if !seen_stock.insert((s.node.as_str(), s.good.as_str())) {
            p.push(format!("{name} is listed twice"));
        }
        if c.node(&s.node).is_none() {
            p.push(format!("{name} names unknown node `{}`", s.node));
        }
        if c.good(&s.good).is_none() {
            p.push(format!("{name} names unknown good `{}`", s.good));
        }
        if s.base_price <= 0 || s.base_quota < 0 || s.restock_per_min < 0 {
            p.push(format!(
                "{name} needs a positive price and a non-negative quota and restock"
            ));
        }
    }

    let unreachable = unreachable_nodes(c);
    if !unreachable.is_empty() {
        p.push(format!(
            "the route graph is not connected: cannot reach {}",
            unreachable.join(", ")
        ));
    }

    if p.is_empty() {
        Ok(())
    } else {
        Err(CatalogError { problems: p })
    }
}

/// Nodes that cannot be reached from the first node by following routes.
fn unreachable_nodes(c: &Catalog) -> Vec<String> {
    let Some(start) = c.nodes().first() else {
        return Vec::new();
    };
    let mut reached: HashSet<&str> = HashSet::from([start.code.as_str()]);
    let mut queue = VecDeque::from([start.code.as_str()]);
    while let Some(node) = queue.pop_front() {
        for r in c.routes_from(node) {
            if reached.insert(r.to_node.as_str()) {
                queue.push_back(r.to_node.as_str());
            }
        }
    }
    c.nodes()
        .iter()
        .filter(|n| !reached.contains(n.code.as_str()))
        .map(|n| n.code.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{CatalogData, Route, Stock, TradeNode};
    use crate::persistence::default_catalog::default_catalog;

    fn data() -> CatalogData {
        let c = default_catalog();
        CatalogData {
            version: c.version,
            factions: c.factions().to_vec(),
            backgrounds: c.backgrounds().to_vec(),
            skill_trees: c.skill_trees().to_vec(),
            skills: c.skills().to_vec(),
            items: c.items().to_vec(),
            crew: c.crew_archetypes().to_vec(),
            goods: c.goods().to_vec(),
            nodes: c.nodes().to_vec(),
            routes: c.routes().to_vec(),
            stock: c.all_stock().to_vec(),
        }
    }

    fn problems(d: CatalogData) -> Vec<String> {
        Catalog::from_data(d)
            .validate()
            .expect_err("should be invalid")
            .problems
    }

    fn has(problems: &[String], needle: &str) -> bool {
        problems.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn the_default_world_is_valid() {
        default_catalog().validate().unwrap();
    }

    #[test]
    fn codes_must_be_snake_case() {
        assert!(is_code("iron_ore") && is_code("a1"));
        for bad in ["", "Iron", "iron-ore", "_x", "x_", "a__b", "1a", "ünicode"] {
            assert!(!is_code(bad), "{bad}");
        }
        let mut d = data();
        d.goods[0].code = "Bad Code".into();
        assert!(has(&problems(d), "not lowercase snake_case"));
    }

    #[test]
    fn dangling_references_are_named() {
        let mut d = data();
        d.factions[0].home_node = "atlantis".into();
        d.stock[0].good = "unobtainium".into();
        d.skills[0].tree = "magic".into();
        d.skills[1].requires = Some("flight".into());
        let p = problems(d);
        assert!(has(&p, "unknown home node `atlantis`"));
        assert!(has(&p, "unknown good `unobtainium`"));
        assert!(has(&p, "unknown tree `magic`"));
        assert!(has(&p, "unknown skill `flight`"));
    }

    #[test]
    fn a_one_way_road_and_bad_numbers_are_refused() {
        let mut d = data();
        let r = d
            .routes
            .iter()
            .position(|r| r.from_node == "port_azul" && r.to_node == "saltspire")
            .unwrap();
        d.routes.remove(r);
        d.routes[0].danger = 101;
        d.goods[0].base_price = 0;
        let p = problems(d);
        assert!(has(&p, "`saltspire` -> `port_azul` has no way back"));
        assert!(has(&p, "outside 0..=100"));
        assert!(has(&p, "positive base price"));
    }

    #[test]
    fn an_island_makes_the_graph_disconnected() {
        let mut d = data();
        d.nodes.push(TradeNode {
            code: "lonely_isle".into(),
            name: "Lonely Isle".into(),
            region: "sea".into(),
            faction: None,
        });
        let p = problems(d.clone());
        assert!(has(&p, "not connected: cannot reach lonely_isle"));
        for (a, b) in [("lonely_isle", "port_azul"), ("port_azul", "lonely_isle")] {
            d.routes.push(Route {
                from_node: a.into(),
                to_node: b.into(),
                distance: 10,
                danger: 0,
            });
        }
        Catalog::from_data(d).validate().unwrap();
    }

    #[test]
    fn duplicates_and_prerequisite_tiers_are_caught() {
        let mut d = data();
        d.goods.push(d.goods[0].clone());
        d.stock.push(Stock {
            ..d.stock[0].clone()
        });
        let tier1 = d.skills.iter().position(|s| s.code == "haggling").unwrap();
        d.skills[tier1].requires = Some("trade_empire".into());
        let p = problems(d);
        assert!(has(&p, "1 duplicate good code(s)"));
        assert!(has(&p, "is listed twice"));
        assert!(has(&p, "same or a higher tier"));
    }

    #[test]
    fn an_empty_catalog_is_not_playable() {
        let p = problems(CatalogData::default());
        assert!(has(&p, "no trade node"));
        assert!(has(&p, "no faction"));
    }
}
