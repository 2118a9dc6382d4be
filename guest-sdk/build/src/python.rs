//! Python tools.
