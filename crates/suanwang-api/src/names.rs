//! The model's vocabulary on the wire: job states and roles as their names.

/// `suanwang_model::platform::JobState` as `"queued"`, `"running"`, …
pub mod job_state {
    use serde::{Deserialize, Deserializer, Serializer};
    use suanwang_model::platform::JobState;

    /// Writes the state's name.
    pub fn serialize<S: Serializer>(state: &JobState, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(state.as_str())
    }

    /// Reads a state's name.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<JobState, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `suanwang_model::platform::Role` as `"tenant"`, `"program-admin"`, …
pub mod role {
    use serde::{Deserialize, Deserializer, Serializer};
    use suanwang_model::platform::Role;

    /// Writes the role's name.
    pub fn serialize<S: Serializer>(role: &Role, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(role.as_str())
    }

    /// Reads a role's name.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Role, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}
