//! The shipped default catalog (`schema/default_catalog.sql`), read without a database.
//!
//! The file is the single source of the default world: `serai migrate` inserts it, and pure
//! tests of game rules use [`default_catalog`] to get the same records. Only the simple form
//! the file uses is understood: `INSERT INTO table (columns) VALUES (row), (row) ON CONFLICT …`
//! with string literals (`''` escapes a quote), integers, `NULL` and `now()`. Other statements (the
//! market snapshot seeding) are skipped; `catalog_meta` gives the version.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::domain::catalog::model::*;
use crate::domain::catalog::Catalog;
use crate::persistence::migrate::{split_statements, DEFAULT_CATALOG};

/// The default world as a [`Catalog`]. Parsed once per process; panics only if the embedded
/// file is malformed, which the crate's tests rule out.
pub fn default_catalog() -> Catalog {
    static PARSED: OnceLock<Catalog> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            Catalog::from_data(
                parse(DEFAULT_CATALOG).unwrap_or_else(|e| panic!("default catalog: {e}")),
            )
        })
        .clone()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Int(i64),
    Null,
}

/// One row: column name to value.
type Record = HashMap<String, Value>;

/// Parses the catalog file's INSERT statements into [`CatalogData`].
pub(crate) fn parse(sql: &str) -> Result<CatalogData, String> {
    let mut data = CatalogData::default();
    for statement in split_statements(sql) {
        let Some((table, records)) = parse_insert(&statement)? else {
            continue;
        };
        for rec in &records {
            let f = Fields { table: &table, rec };
            match table.as_str() {
                "catalog_meta" => data.version = f.int("version")?,
                "faction" => data.factions.push(Faction {
                    code: f.text("code")?,
                    name: f.text("name")?,
                    description: f.text_or_empty("description")?,
                    home_node: f.text("home_node")?,
                }),
                "background_archetype" => data.backgrounds.push(Background {
                    code: f.text("code")?,
                    name: f.text("name")?,
                    description: f.text_or_empty("description")?,
                    starting_gold: f.int("starting_gold")?,
                    strength: f.int32("strength")?,
                    cunning: f.int32("cunning")?,
                    charisma: f.int32("charisma")?,
                    endurance: f.int32("endurance")?,
                }),
                "skill_tree" => data.skill_trees.push(SkillTree {
                    code: f.text("code")?,
                    name: f.text("name")?,
                    description: f.text_or_empty("description")?,
                }),
                "skill_definition" => data.skills.push(Skill {
                    code: f.text("code")?,
                    tree: f.text("tree")?,
                    name: f.text("name")?,
                    description: f.text_or_empty("description")?,
                    tier: f.int32("tier")?,
                    requires: f.opt_text("requires")?,
                    cost: f.int32("cost")?,
                    kind: f.text("kind")?,
                    power: f.int32_or_zero("power")?,
                    cooldown: f.int32_or_zero("cooldown")?,
                }),
                "item_template" => data.items.push(ItemTemplate {
                    code: f.text("code")?,
                    name: f.text("name")?,
                    kind: f.text("kind")?,
                    rarity: f.text("rarity")?,
                    value: f.int("value")?,
                    attack: f.int32_or_zero("attack")?,
                    defense: f.int32_or_zero("defense")?,
                    weight: f.int32_or_zero("weight")?,
                }),
                "crew_archetype" => data.crew.push(CrewArchetype {
                    code: f.text("code")?,
                    name: f.text("name")?,
                    description: f.text_or_empty("description")?,
                    hire_cost: f.int("hire_cost")?,
                    upkeep: f.int("upkeep")?,
                    hp: f.int32("hp")?,
                    attack: f.int32("attack")?,
                    defense: f.int32("defense")?,
                    capacity: f.int_or_zero("capacity")?,
                    speed: f.int32_or_zero("speed")?,
                }),
                "trade_good" => data.goods.push(Good {
                    code: f.text("code")?,
                    name: f.text("name")?,
                    category: f.text("category")?,
                    base_price: f.int("base_price")?,
                    weight: f.int32("weight")?,
                }),
                "trade_node" => data.nodes.push(TradeNode {
                    code: f.text("code")?,
                    name: f.text("name")?,
                    region: f.text("region")?,
                    faction: f.opt_text("faction")?,
                }),
                "trade_route" => data.routes.push(Route {
                    from_node: f.text("from_node")?,
                    to_node: f.text("to_node")?,
                    distance: f.int32("distance")?,
                    danger: f.int32("danger")?,
                }),
                "trade_node_stock" => data.stock.push(Stock {
                    node: f.text("node")?,
                    good: f.text("good")?,
                    base_price: f.int("base_price")?,
                    base_quota: f.int("base_quota")?,
                    restock_per_min: f.int("restock_per_min")?,
                }),
                other => return Err(format!("unexpected table `{other}`")),
            }
        }
    }
    Ok(data)
}

struct Fields<'a> {
    table: &'a str,
    rec: &'a Record,
}

impl Fields<'_> {
    fn get(&self, col: &str) -> Option<&Value> {
        self.rec.get(col)
    }

    fn err(&self, col: &str, what: &str) -> String {
        format!("{}.{col}: {what}", self.table)
    }

    fn text(&self, col: &str) -> Result<String, String> {
        match self.get(col) {
            Some(Value::Text(s)) => Ok(s.clone()),
            _ => Err(self.err(col, "expected a string")),
        }
    }

    fn opt_text(&self, col: &str) -> Result<Option<String>, String> {
        match self.get(col) {
            Some(Value::Text(s)) => Ok(Some(s.clone())),
            Some(Value::Null) | None => Ok(None),
            _ => Err(self.err(col, "expected a string or NULL")),
        }
    }

    fn text_or_empty(&self, col: &str) -> Result<String, String> {
        Ok(self.opt_text(col)?.unwrap_or_default())
    }

    fn int(&self, col: &str) -> Result<i64, String> {
        match self.get(col) {
            Some(Value::Int(v)) => Ok(*v),
            _ => Err(self.err(col, "expected an integer")),
        }
    }

    fn int_or_zero(&self, col: &str) -> Result<i64, String> {
        match self.get(col) {
            None => Ok(0),
            Some(_) => self.int(col),
        }
    }

    fn int32(&self, col: &str) -> Result<i32, String> {
        i32::try_from(self.int(col)?).map_err(|_| self.err(col, "out of INT4 range"))
    }

    fn int32_or_zero(&self, col: &str) -> Result<i32, String> {
        i32::try_from(self.int_or_zero(col)?).map_err(|_| self.err(col, "out of INT4 range"))
    }
}

/// `INSERT INTO t (a, b) VALUES (…), (…) ON CONFLICT …` → (t, rows). Other statements → None.
fn parse_insert(statement: &str) -> Result<Option<(String, Vec<Record>)>, String> {
    let Some(rest) = statement.strip_prefix("INSERT INTO ") else {
        return Err(format!("not an INSERT: {statement}"));
    };
    let (table, rest) = rest.split_once(' ').ok_or("INSERT without a column list")?;
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix('(')
        .ok_or_else(|| format!("{table}: expected a column list"))?;
    let (cols, rest) = rest
        .split_once(')')
        .ok_or_else(|| format!("{table}: unterminated column list"))?;
    let columns: Vec<String> = cols.split(',').map(|c| c.trim().to_string()).collect();
    let rest = rest.trim_start();
    let Some(mut rest) = rest.strip_prefix("VALUES") else {
        return Ok(None); // INSERT … SELECT: derived data, not catalog records.
    };
    let mut records = Vec::new();
    loop {
        rest = rest.trim_start();
        let Some(after) = rest.strip_prefix('(') else {
            break;
        };
        let (values, after) = parse_tuple(after).map_err(|e| format!("{table}: {e}"))?;
        if values.len() != columns.len() {
            return Err(format!(
                "{table}: {} values for {} columns",
                values.len(),
                columns.len()
            ));
        }
        records.push(columns.iter().cloned().zip(values).collect());
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => break,
        }
    }
    if !rest.starts_with("ON CONFLICT") {
        return Err(format!(
            "{table}: expected ON CONFLICT after the rows, found `{}`",
            rest.lines().next().unwrap_or("")
        ));
    }
    Ok(Some((table.to_string(), records)))
}

/// Parses values up to the closing `)`; returns them and the text after it.
fn parse_tuple(mut s: &str) -> Result<(Vec<Value>, &str), String> {
    let mut values = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('\'') {
            let mut text = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '\'')) => {
                        if after[i + 1..].starts_with('\'') {
                            text.push('\'');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => text.push(c),
                    None => return Err("unterminated string".into()),
                }
            };
            values.push(Value::Text(text));
            s = &after[end..];
        } else if let Some(after) = s.strip_prefix("now()") {
            values.push(Value::Null); // a timestamp the database fills in: not catalog data
            s = after;
        } else {
            let end = s.find([',', ')']).ok_or("unterminated row")?;
            let token = s[..end].trim();
            let value = if token.eq_ignore_ascii_case("NULL") {
                Value::Null
            } else {
                Value::Int(
                    token
                        .parse()
                        .map_err(|_| format!("`{token}` is not an integer, string or NULL"))?,
                )
            };
            values.push(value);
            s = &s[end..];
        }
        s = s.trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if let Some(after) = s.strip_prefix(')') {
            return Ok((values, after));
        } else {
            return Err(format!(
                "expected `,` or `)` at `{}`",
                s.chars().take(20).collect::<String>()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strings_numbers_and_null() {
        let sql = "INSERT INTO trade_node (code, name, region, faction) VALUES\n    ('a', 'It''s A', 'r', NULL),\n    ('b', 'B, (b)', 'r', 'f')\nON CONFLICT (code) DO NOTHING;\nINSERT INTO catalog_meta (id, version) VALUES (1, -7) ON CONFLICT (id) DO NOTHING;\nINSERT INTO x (a) SELECT 1 ON CONFLICT DO NOTHING;";
        let d = parse(sql).unwrap();
        assert_eq!(d.version, -7);
        assert_eq!(d.nodes.len(), 2);
        assert_eq!(d.nodes[0].name, "It's A");
        assert_eq!(d.nodes[0].faction, None);
        assert_eq!(d.nodes[1].name, "B, (b)");
        assert_eq!(d.nodes[1].faction.as_deref(), Some("f"));
    }

    #[test]
    fn malformed_rows_are_errors() {
        assert!(
            parse("INSERT INTO trade_node (code, name) VALUES ('a') ON CONFLICT DO NOTHING;")
                .is_err()
        );
        assert!(parse("INSERT INTO trade_good (code) VALUES ('a ON CONFLICT DO NOTHING;").is_err());
        assert!(parse("INSERT INTO nonsense (code) VALUES ('a') ON CONFLICT DO NOTHING;").is_err());
        assert!(parse(
            "INSERT INTO trade_good (code, base_price) VALUES ('a', 1.5) ON CONFLICT DO NOTHING;"
        )
        .is_err());
    }

    #[test]
    fn the_shipped_file_parses_completely() {
        let d = parse(DEFAULT_CATALOG).unwrap();
        assert_eq!(d.version, 1);
        assert!(
            d.goods.len() >= 10
                && d.nodes.len() >= 8
                && !d.stock.is_empty()
                && !d.routes.is_empty()
        );
    }
}
