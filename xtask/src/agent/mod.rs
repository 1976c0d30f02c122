//! The agent stage of `backend-stage`: the prompt, the codex run and its events, the
//! snapshot that tells the agent's changes from the user's, and the fix-round prompt.

pub mod codex;
pub mod conventions;
pub mod events;
pub mod fix;
pub mod live;
pub mod prompt;
pub mod snapshot;
pub mod stack;
