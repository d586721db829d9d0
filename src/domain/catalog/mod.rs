//! The static world: factions, backgrounds, goods, trade nodes, routes, stock, skills, items
//! and crew, loaded from the catalog tables into read-only, indexed records stamped with the
//! catalog version (`catalog_meta.version`).
//!
//! - [`Catalog`] answers lookups by code; share it as `Arc<Catalog>`.
//! - [`CurrentCatalog`] is the catalog a node serves now, swapped whole on a reload.
//! - [`Catalog::validate`] checks references and the route graph; a node refuses to run with
//!   a catalog that fails it.

mod current;
pub mod model;
mod validate;

use std::collections::HashMap;

use serde::Serialize;

pub use current::CurrentCatalog;
pub use model::{
    skill_kind, Background, CatalogData, CrewArchetype, Faction, Good, ItemTemplate, Route, Skill,
    SkillTree, Stock, TradeNode,
};
pub use validate::CatalogError;

/// Records of one kind, in code order, with an index by code.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Table<T> {
    items: Vec<T>,
    #[serde(skip)]
    by_code: HashMap<String, usize>,
}

impl<T> Table<T> {
    fn new(mut items: Vec<T>, code: impl Fn(&T) -> &str) -> Table<T> {
        items.sort_by(|a, b| code(a).cmp(code(b)));
        let by_code = items
            .iter()
            .enumerate()
            .map(|(i, t)| (code(t).to_string(), i))
            .collect();
        Table { items, by_code }
    }

    pub fn get(&self, code: &str) -> Option<&T> {
        self.by_code.get(code).map(|&i| &self.items[i])
    }

    /// All records, ordered by code.
    pub fn all(&self) -> &[T] {
        &self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many records share a code with another (0 in a valid catalog).
    fn duplicates(&self) -> usize {
        self.items.len() - self.by_code.len()
    }
}

/// The loaded catalog. Cheap lookups by code; never changes after it is built.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    pub version: i64,
    factions: Table<Faction>,
    backgrounds: Table<Background>,
    skill_trees: Table<SkillTree>,
    skills: Table<Skill>,
    items: Table<ItemTemplate>,
    crew: Table<CrewArchetype>,
    goods: Table<Good>,
    nodes: Table<TradeNode>,
    /// Ordered by (from_node, to_node).
    routes: Vec<Route>,
    /// Ordered by (node, good).
    stock: Vec<Stock>,
    #[serde(skip)]
    routes_by_from: HashMap<String, Vec<usize>>,
    #[serde(skip)]
    stock_by_node: HashMap<String, Vec<usize>>,
}

impl Catalog {
    /// Indexes the rows. Never fails: problems such as duplicate codes or dangling references
    /// are reported by [`Catalog::validate`].
    pub fn from_data(data: CatalogData) -> Catalog {
        let mut routes = data.routes;
        routes.sort_by(|a, b| (&a.from_node, &a.to_node).cmp(&(&b.from_node, &b.to_node)));
        let mut routes_by_from: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in routes.iter().enumerate() {
            routes_by_from
                .entry(r.from_node.clone())
                .or_default()
                .push(i);
        }
        let mut stock = data.stock;
        stock.sort_by(|a, b| (&a.node, &a.good).cmp(&(&b.node, &b.good)));
        let mut stock_by_node: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in stock.iter().enumerate() {
            stock_by_node.entry(s.node.clone()).or_default().push(i);
        }
        Catalog {
            version: data.version,
            factions: Table::new(data.factions, |f| &f.code),
            backgrounds: Table::new(data.backgrounds, |b| &b.code),
            skill_trees: Table::new(data.skill_trees, |t| &t.code),
            skills: Table::new(data.skills, |s| &s.code),
            items: Table::new(data.items, |i| &i.code),
            crew: Table::new(data.crew, |c| &c.code),
            goods: Table::new(data.goods, |g| &g.code),
            nodes: Table::new(data.nodes, |n| &n.code),
            routes,
            stock,
            routes_by_from,
            stock_by_node,
        }
    }

    pub fn faction(&self, code: &str) -> Option<&Faction> {
        self.factions.get(code)
    }

    pub fn background(&self, code: &str) -> Option<&Background> {
        self.backgrounds.get(code)
    }

    pub fn skill_tree(&self, code: &str) -> Option<&SkillTree> {
        self.skill_trees.get(code)
    }

    pub fn skill(&self, code: &str) -> Option<&Skill> {
        self.skills.get(code)
    }

    pub fn item(&self, code: &str) -> Option<&ItemTemplate> {
        self.items.get(code)
    }

    pub fn crew(&self, code: &str) -> Option<&CrewArchetype> {
        self.crew.get(code)
    }

    pub fn good(&self, code: &str) -> Option<&Good> {
        self.goods.get(code)
    }

    pub fn node(&self, code: &str) -> Option<&TradeNode> {
        self.nodes.get(code)
    }

    /// The direct route from `from` to `to`, if there is one.
    pub fn route(&self, from: &str, to: &str) -> Option<&Route> {
        self.routes_from(from).find(|r| r.to_node == to)
    }

    /// Every route leaving `node`, ordered by destination code.
    pub fn routes_from<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Route> + 'a {
        let indices = self
            .routes_by_from
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        indices.iter().map(move |&i| &self.routes[i])
    }

    /// What `node` trades in `good`, if it trades it at all.
    pub fn stock(&self, node: &str, good: &str) -> Option<&Stock> {
        self.stock_at(node).find(|s| s.good == good)
    }

    /// Every good traded at `node`, ordered by good code.
    pub fn stock_at<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Stock> + 'a {
        let indices = self
            .stock_by_node
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        indices.iter().map(move |&i| &self.stock[i])
    }

    pub fn factions(&self) -> &[Faction] {
        self.factions.all()
    }

    pub fn backgrounds(&self) -> &[Background] {
        self.backgrounds.all()
    }

    pub fn skill_trees(&self) -> &[SkillTree] {
        self.skill_trees.all()
    }

    pub fn skills(&self) -> &[Skill] {
        self.skills.all()
    }

    pub fn items(&self) -> &[ItemTemplate] {
        self.items.all()
    }

    pub fn crew_archetypes(&self) -> &[CrewArchetype] {
        self.crew.all()
    }

    pub fn goods(&self) -> &[Good] {
        self.goods.all()
    }

    pub fn nodes(&self) -> &[TradeNode] {
        self.nodes.all()
    }

    /// Every route (both directions), ordered by (from, to).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every stock row, ordered by (node, good).
    pub fn all_stock(&self) -> &[Stock] {
        &self.stock
    }

    /// Checks that the catalog describes a playable world; see [`CatalogError`].
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate::validate(self)
    }
}

#[cfg(test)]
mod tests {
    use crate::persistence::default_catalog::default_catalog;

    #[test]
    fn lookups_find_what_the_default_world_holds() {
        let c = default_catalog();
        assert_eq!(c.version, 1);
        assert!(c.faction("merchant_league").is_some());
        assert!(c.faction("nobody").is_none());
        let home = &c.faction("iron_covenant").unwrap().home_node;
        assert!(c.node(home).is_some());
        let r = c.route("port_azul", "saltspire").unwrap();
        assert_eq!(
            c.route("saltspire", "port_azul").unwrap().distance,
            r.distance
        );
        assert!(c.route("port_azul", "dune_oasis").is_none());
        let from: Vec<&str> = c
            .routes_from("kings_crossing")
            .map(|r| r.to_node.as_str())
            .collect();
        let mut sorted = from.clone();
        sorted.sort();
        assert_eq!(from, sorted);
        assert!(from.len() >= 2);
        assert_eq!(c.routes_from("nowhere").count(), 0);
        let s = c.stock("ironhold", "iron_ore").unwrap();
        assert!(s.base_price < c.good("iron_ore").unwrap().base_price);
        assert!(c.stock("ironhold", "silk").is_none());
        assert!(c.skill("power_strike").unwrap().cooldown > 0);
        assert!(c.item("iron_sword").is_some());
        assert!(c.crew("porter").is_some());
        assert!(c.background("sellsword").is_some());
        assert_eq!(
            ["commerce", "combat"]
                .iter()
                .map(|t| c.skills().iter().filter(|s| s.tree == *t).count())
                .sum::<usize>(),
            c.skills().len()
        );
    }

    #[test]
    fn serializes_records_without_indexes() {
        let c = default_catalog();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["goods"].as_array().unwrap().len(), c.goods().len());
        assert!(json.get("routes_by_from").is_none());
        assert_eq!(json["factions"][0]["code"], c.factions()[0].code.as_str());
    }
}
