//! A board's sort order, and Nakama's names and numbers for it.

/// A board's sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortOrder {
    Ascending,
    Descending,
}

impl SortOrder {
    /// Nakama's numbers: 0 ascending, 1 descending.
    pub fn from_nakama(n: i64) -> Option<SortOrder> {
        match n {
            0 => Some(SortOrder::Ascending),
            1 => Some(SortOrder::Descending),
            _ => None,
        }
    }

    pub fn nakama_number(self) -> i64 {
        match self {
            SortOrder::Ascending => 0,
            SortOrder::Descending => 1,
        }
    }

    /// `"asc"`/`"ascending"` or `"desc"`/`"descending"` (case-insensitive).
    pub fn parse(s: &str) -> Option<SortOrder> {
        match s.to_ascii_lowercase().as_str() {
            "asc" | "ascending" => Some(SortOrder::Ascending),
            "desc" | "descending" => Some(SortOrder::Descending),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Ascending => "asc",
            SortOrder::Descending => "desc",
        }
    }
}
