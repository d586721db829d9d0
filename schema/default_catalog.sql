-- The default catalog: a small trade-caravan world, applied by `serai migrate` once, when
-- catalog_meta has no row yet. Every statement is INSERT ... ON CONFLICT DO NOTHING so a
-- repeated or concurrent run changes nothing. The catalog_meta row is written last.
-- Codes are lowercase snake_case. No semicolon may appear except at the end of a statement.
-- Stock: a node sells the goods it produces below their base price with a large quota, and
-- buys the goods it lacks above it with a small quota, so hauling between them pays.

INSERT INTO trade_node (code, name, region, faction) VALUES
    ('port_azul', 'Port Azul', 'coast', 'merchant_league'),
    ('saltspire', 'Saltspire', 'coast', 'merchant_league'),
    ('kings_crossing', 'Kings Crossing', 'heartland', NULL),
    ('amber_vale', 'Amber Vale', 'heartland', NULL),
    ('greenmarsh', 'Greenmarsh', 'wetlands', 'marsh_wardens'),
    ('ironhold', 'Ironhold', 'highlands', 'iron_covenant'),
    ('emberforge', 'Emberforge', 'highlands', 'iron_covenant'),
    ('frostgate', 'Frostgate', 'north', 'iron_covenant'),
    ('dune_oasis', 'Dune Oasis', 'desert', 'sand_nomads'),
    ('silkwind_bazaar', 'Silkwind Bazaar', 'desert', 'sand_nomads')
ON CONFLICT (code) DO NOTHING;

INSERT INTO faction (code, name, description, home_node) VALUES
    ('merchant_league', 'Merchant League', 'Guild houses of the coast who hold that every road ends at a ledger.', 'port_azul'),
    ('iron_covenant', 'Iron Covenant', 'Mountain clans sworn to the forge and to the passes they guard.', 'ironhold'),
    ('sand_nomads', 'Sand Nomads', 'Desert caravaneers who know every well between the dunes.', 'dune_oasis'),
    ('marsh_wardens', 'Marsh Wardens', 'Herbalists and boatmen who keep the fen paths open.', 'greenmarsh')
ON CONFLICT (code) DO NOTHING;

INSERT INTO background_archetype (code, name, description, starting_gold, strength, cunning, charisma, endurance) VALUES
    ('merchant_heir', 'Merchant Heir', 'Raised over a counting table, with a purse to prove it.', 500, 3, 5, 7, 4),
    ('sellsword', 'Sellsword', 'Fought for whoever paid and kept little of it.', 150, 8, 4, 3, 7),
    ('smuggler', 'Smuggler', 'Knows the paths the tax collectors do not.', 250, 4, 8, 5, 4),
    ('noble_exile', 'Noble Exile', 'Lost a title, kept the manners and a few coins.', 400, 4, 5, 8, 3),
    ('caravan_hand', 'Caravan Hand', 'Grew up walking beside the wagons.', 200, 6, 4, 4, 8)
ON CONFLICT (code) DO NOTHING;

INSERT INTO skill_tree (code, name, description) VALUES
    ('commerce', 'Commerce', 'Better prices, bigger caravans, safer roads.'),
    ('combat', 'Combat', 'Surviving the road when bandits block it.')
ON CONFLICT (code) DO NOTHING;

INSERT INTO skill_definition (code, tree, name, description, tier, requires, cost, kind, power, cooldown) VALUES
    ('haggling', 'commerce', 'Haggling', 'Buy a little cheaper and sell a little dearer.', 1, NULL, 1, 'trade', 5, 0),
    ('appraisal', 'commerce', 'Appraisal', 'See what a market will pay before you unload.', 1, NULL, 1, 'trade', 10, 0),
    ('caravan_logistics', 'commerce', 'Caravan Logistics', 'Pack the wagons tighter: more cargo capacity.', 2, 'haggling', 2, 'trade', 15, 0),
    ('smugglers_paths', 'commerce', 'Smugglers Paths', 'Take the quiet roads: less danger on every route.', 2, 'appraisal', 2, 'travel', 20, 0),
    ('trade_empire', 'commerce', 'Trade Empire', 'Every market knows your name: better prices again.', 3, 'caravan_logistics', 3, 'trade', 10, 0),
    ('power_strike', 'combat', 'Power Strike', 'A heavy blow that staggers the enemy.', 1, NULL, 1, 'attack', 12, 1),
    ('field_medicine', 'combat', 'Field Medicine', 'Bind wounds in the middle of a fight.', 1, NULL, 1, 'heal', 15, 3),
    ('cleave', 'combat', 'Cleave', 'A sweeping strike that hits harder.', 2, 'power_strike', 2, 'attack', 18, 2),
    ('battle_cry', 'combat', 'Battle Cry', 'Rally the crew: attack rises for a few turns.', 2, 'power_strike', 2, 'buff', 20, 4),
    ('shield_wall', 'combat', 'Shield Wall', 'Close ranks: defense rises for a few turns.', 2, 'field_medicine', 2, 'buff', 25, 5),
    ('last_stand', 'combat', 'Last Stand', 'A desperate strike with everything left.', 3, 'cleave', 3, 'attack', 35, 6)
ON CONFLICT (code) DO NOTHING;

INSERT INTO item_template (code, name, kind, rarity, value, attack, defense, weight) VALUES
    ('rusty_sword', 'Rusty Sword', 'weapon', 'common', 8, 3, 0, 3),
    ('iron_sword', 'Iron Sword', 'weapon', 'common', 40, 6, 0, 3),
    ('hunting_bow', 'Hunting Bow', 'weapon', 'common', 35, 5, 0, 2),
    ('steel_saber', 'Steel Saber', 'weapon', 'uncommon', 120, 10, 0, 3),
    ('war_axe', 'War Axe', 'weapon', 'rare', 260, 15, 0, 5),
    ('leather_armor', 'Leather Armor', 'armor', 'common', 30, 0, 3, 4),
    ('chainmail', 'Chainmail', 'armor', 'uncommon', 140, 0, 7, 8),
    ('plate_armor', 'Plate Armor', 'armor', 'rare', 380, 0, 12, 12),
    ('wooden_shield', 'Wooden Shield', 'shield', 'common', 15, 0, 2, 3),
    ('tower_shield', 'Tower Shield', 'shield', 'uncommon', 110, 0, 5, 6),
    ('healing_salve', 'Healing Salve', 'consumable', 'common', 12, 0, 0, 1),
    ('travel_rations', 'Travel Rations', 'consumable', 'common', 5, 0, 0, 1),
    ('lucky_charm', 'Lucky Charm', 'trinket', 'rare', 200, 1, 1, 0)
ON CONFLICT (code) DO NOTHING;

INSERT INTO crew_archetype (code, name, description, hire_cost, upkeep, hp, attack, defense, capacity, speed) VALUES
    ('porter', 'Porter', 'Carries what the wagons cannot.', 40, 2, 20, 1, 1, 40, 0),
    ('guard', 'Guard', 'A steady blade at the wagon side.', 90, 5, 45, 6, 5, 10, 0),
    ('scout', 'Scout', 'Rides ahead and finds the faster road.', 70, 4, 25, 3, 2, 5, 2),
    ('mercenary', 'Mercenary', 'Expensive, and worth it when the road turns bad.', 160, 9, 60, 10, 6, 10, 0),
    ('quartermaster', 'Quartermaster', 'Keeps the loads balanced and the wheels greased.', 120, 6, 25, 1, 2, 60, 1)
ON CONFLICT (code) DO NOTHING;

INSERT INTO trade_good (code, name, category, base_price, weight) VALUES
    ('grain', 'Grain', 'food', 10, 2),
    ('dates', 'Dates', 'food', 18, 1),
    ('salt', 'Salt', 'staple', 15, 2),
    ('timber', 'Timber', 'material', 20, 4),
    ('iron_ore', 'Iron Ore', 'material', 25, 5),
    ('steel_ingot', 'Steel Ingot', 'material', 70, 4),
    ('wool', 'Wool', 'textile', 22, 2),
    ('furs', 'Furs', 'textile', 60, 2),
    ('silk', 'Silk', 'luxury', 120, 1),
    ('spices', 'Spices', 'luxury', 95, 1),
    ('wine', 'Wine', 'luxury', 45, 2),
    ('glassware', 'Glassware', 'craft', 55, 2),
    ('medicine', 'Medicine', 'craft', 80, 1),
    ('gemstones', 'Gemstones', 'luxury', 200, 1)
ON CONFLICT (code) DO NOTHING;

-- Routes are stored in both directions. distance is in leagues, danger in 0..=100.
INSERT INTO trade_route (from_node, to_node, distance, danger) VALUES
    ('port_azul', 'saltspire', 40, 10),
    ('saltspire', 'port_azul', 40, 10),
    ('port_azul', 'kings_crossing', 60, 15),
    ('kings_crossing', 'port_azul', 60, 15),
    ('saltspire', 'greenmarsh', 55, 35),
    ('greenmarsh', 'saltspire', 55, 35),
    ('kings_crossing', 'amber_vale', 35, 5),
    ('amber_vale', 'kings_crossing', 35, 5),
    ('kings_crossing', 'greenmarsh', 50, 30),
    ('greenmarsh', 'kings_crossing', 50, 30),
    ('kings_crossing', 'ironhold', 80, 25),
    ('ironhold', 'kings_crossing', 80, 25),
    ('amber_vale', 'silkwind_bazaar', 90, 40),
    ('silkwind_bazaar', 'amber_vale', 90, 40),
    ('ironhold', 'emberforge', 30, 20),
    ('emberforge', 'ironhold', 30, 20),
    ('ironhold', 'frostgate', 70, 45),
    ('frostgate', 'ironhold', 70, 45),
    ('emberforge', 'dune_oasis', 100, 55),
    ('dune_oasis', 'emberforge', 100, 55),
    ('dune_oasis', 'silkwind_bazaar', 45, 30),
    ('silkwind_bazaar', 'dune_oasis', 45, 30),
    ('frostgate', 'greenmarsh', 110, 60),
    ('greenmarsh', 'frostgate', 110, 60)
ON CONFLICT (from_node, to_node) DO NOTHING;

-- restock_per_min: units a node's quota recovers per minute, up to base_quota.
INSERT INTO trade_node_stock (node, good, base_price, base_quota, restock_per_min) VALUES
    ('port_azul', 'salt', 10, 200, 6),
    ('port_azul', 'glassware', 44, 54, 1),
    ('port_azul', 'wine', 50, 49, 1),
    ('port_azul', 'spices', 124, 15, 1),
    ('port_azul', 'furs', 78, 25, 1),
    ('port_azul', 'grain', 12, 150, 5),
    ('port_azul', 'timber', 24, 75, 2),
    ('saltspire', 'salt', 8, 200, 6),
    ('saltspire', 'glassware', 38, 54, 1),
    ('saltspire', 'timber', 28, 75, 2),
    ('saltspire', 'iron_ore', 30, 60, 2),
    ('saltspire', 'wine', 58, 33, 1),
    ('saltspire', 'medicine', 96, 18, 1),
    ('kings_crossing', 'grain', 9, 300, 10),
    ('kings_crossing', 'wool', 22, 102, 3),
    ('kings_crossing', 'wine', 45, 49, 1),
    ('kings_crossing', 'steel_ingot', 77, 31, 1),
    ('kings_crossing', 'spices', 109, 15, 1),
    ('kings_crossing', 'medicine', 80, 27, 1),
    ('kings_crossing', 'salt', 16, 150, 5),
    ('amber_vale', 'grain', 6, 300, 10),
    ('amber_vale', 'wine', 29, 66, 2),
    ('amber_vale', 'wool', 18, 136, 4),
    ('amber_vale', 'steel_ingot', 91, 21, 1),
    ('amber_vale', 'salt', 20, 100, 3),
    ('amber_vale', 'glassware', 69, 27, 1),
    ('greenmarsh', 'medicine', 48, 37, 1),
    ('greenmarsh', 'timber', 12, 150, 5),
    ('greenmarsh', 'grain', 8, 300, 10),
    ('greenmarsh', 'salt', 20, 100, 3),
    ('greenmarsh', 'steel_ingot', 91, 21, 1),
    ('greenmarsh', 'silk', 144, 12, 1),
    ('ironhold', 'iron_ore', 12, 120, 4),
    ('ironhold', 'steel_ingot', 52, 42, 1),
    ('ironhold', 'gemstones', 160, 20, 1),
    ('ironhold', 'grain', 15, 150, 5),
    ('ironhold', 'wine', 63, 33, 1),
    ('ironhold', 'medicine', 104, 18, 1),
    ('emberforge', 'steel_ingot', 42, 42, 1),
    ('emberforge', 'glassware', 47, 54, 1),
    ('emberforge', 'iron_ore', 35, 60, 2),
    ('emberforge', 'timber', 27, 75, 2),
    ('emberforge', 'dates', 23, 83, 2),
    ('frostgate', 'furs', 30, 50, 1),
    ('frostgate', 'timber', 14, 150, 5),
    ('frostgate', 'wool', 16, 136, 4),
    ('frostgate', 'spices', 152, 15, 1),
    ('frostgate', 'wine', 68, 33, 1),
    ('frostgate', 'grain', 14, 150, 5),
    ('frostgate', 'salt', 20, 100, 3),
    ('dune_oasis', 'dates', 9, 166, 5),
    ('dune_oasis', 'spices', 66, 31, 1),
    ('dune_oasis', 'gemstones', 180, 20, 1),
    ('dune_oasis', 'timber', 32, 75, 2),
    ('dune_oasis', 'steel_ingot', 94, 21, 1),
    ('dune_oasis', 'wool', 29, 68, 2),
    ('dune_oasis', 'medicine', 112, 18, 1),
    ('silkwind_bazaar', 'silk', 72, 25, 1),
    ('silkwind_bazaar', 'spices', 71, 31, 1),
    ('silkwind_bazaar', 'dates', 14, 166, 5),
    ('silkwind_bazaar', 'glassware', 77, 27, 1),
    ('silkwind_bazaar', 'furs', 90, 25, 1),
    ('silkwind_bazaar', 'salt', 20, 100, 3),
    ('silkwind_bazaar', 'wine', 56, 33, 1),
    ('silkwind_bazaar', 'gemstones', 240, 10, 1)
ON CONFLICT (node, good) DO NOTHING;

-- The live market starts at the base price with a full quota.
INSERT INTO market_price_snapshot (node, good, price, quota, updated_at)
SELECT node, good, base_price, base_quota, now() FROM trade_node_stock
ON CONFLICT (node, good) DO NOTHING;

INSERT INTO catalog_meta (id, version, updated_at) VALUES (1, 1, now())
ON CONFLICT (id) DO NOTHING;
