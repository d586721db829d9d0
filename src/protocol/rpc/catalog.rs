//! The catalog as clients see it (`get_catalog`).

use super::*;

#[derive(Debug, Serialize)]
pub struct FactionView {
    pub code: String,
    pub name: String,
    pub description: String,
    pub home_node: String,
}

#[derive(Debug, Serialize)]
pub struct BackgroundView {
    pub code: String,
    pub name: String,
    pub description: String,
    pub starting_gold: i64,
}

#[derive(Debug, Serialize)]
pub struct GoodView {
    pub code: String,
    pub name: String,
    pub category: String,
    pub base_price: i64,
    pub weight: i32,
}

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub code: String,
    pub name: String,
    pub region: String,
}

#[derive(Debug, Serialize)]
pub struct RouteView {
    pub from: String,
    pub to: String,
    pub distance: i32,
    pub danger: i32,
}

/// `get_catalog`: everything a client needs to show choices. Skills, crew archetypes and item
/// templates are sent in their catalog form.
#[derive(Debug, Serialize)]
pub struct CatalogView<'a> {
    pub version: i64,
    pub factions: Vec<FactionView>,
    pub backgrounds: Vec<BackgroundView>,
    pub goods: Vec<GoodView>,
    pub nodes: Vec<NodeView>,
    pub routes: Vec<RouteView>,
    pub skill_trees: &'a [crate::domain::catalog::SkillTree],
    pub skills: &'a [crate::domain::catalog::Skill],
    pub crew_archetypes: &'a [crate::domain::catalog::CrewArchetype],
    pub items: &'a [crate::domain::catalog::ItemTemplate],
}

impl<'a> CatalogView<'a> {
    pub fn new(c: &'a Catalog) -> Self {
        CatalogView {
            version: c.version,
            factions: c
                .factions()
                .iter()
                .map(|f| FactionView {
                    code: f.code.clone(),
                    name: f.name.clone(),
                    description: f.description.clone(),
                    home_node: f.home_node.clone(),
                })
                .collect(),
            backgrounds: c
                .backgrounds()
                .iter()
                .map(|b| BackgroundView {
                    code: b.code.clone(),
                    name: b.name.clone(),
                    description: b.description.clone(),
                    starting_gold: b.starting_gold,
                })
                .collect(),
            goods: c
                .goods()
                .iter()
                .map(|g| GoodView {
                    code: g.code.clone(),
                    name: g.name.clone(),
                    category: g.category.clone(),
                    base_price: g.base_price,
                    weight: g.weight,
                })
                .collect(),
            nodes: c
                .nodes()
                .iter()
                .map(|n| NodeView {
                    code: n.code.clone(),
                    name: n.name.clone(),
                    region: n.region.clone(),
                })
                .collect(),
            routes: c
                .routes()
                .iter()
                .map(|r| RouteView {
                    from: r.from_node.clone(),
                    to: r.to_node.clone(),
                    distance: r.distance,
                    danger: r.danger,
                })
                .collect(),
            skill_trees: c.skill_trees(),
            skills: c.skills(),
            crew_archetypes: c.crew_archetypes(),
            items: c.items(),
        }
    }
}
