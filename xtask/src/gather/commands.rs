//! The lint and test commands.
