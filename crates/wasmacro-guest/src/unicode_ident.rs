//! Unicode XID tables (being written).
