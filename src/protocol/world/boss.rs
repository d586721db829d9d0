//! `get_world_event`, `attack_world_boss`, the `world_event` notification, `/admin/world/events`.
