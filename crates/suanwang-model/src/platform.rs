//! The platform's vocabulary, defined once: where a job is in its life, what a token may be, and
//! whose a thing is. The store keeps these names, the API shows them, and every rule speaks them.

use std::fmt;
use std::str::FromStr;

/// A tenant's id on the platform (the store's key; `tenant:ID` in the audit log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a job is in its life on the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Accepted, waiting to be placed.
    Queued,
    /// Assigned to a pool; its agent has not started it yet.
    Placed,
    /// Running in its pool.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully.
    Failed,
    /// Cancelled by its tenant or an operator.
    Cancelled,
    /// Stopped to make room; it will be queued again.
    Preempted,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Placed,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Preempted,
    ];

    /// The states a job may still leave (the scheduler must know about them after a restart).
    pub const OPEN: [JobState; 4] = [JobState::Queued, JobState::Placed, JobState::Running, JobState::Preempted];

    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Placed => "placed",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Preempted => "preempted",
        }
    }

    /// A job in a terminal state never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    /// Whether `self → next` is a legal transition.
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Queued, Placed | Cancelled | Failed)
                | (Placed, Running | Queued | Cancelled | Failed | Succeeded)
                | (Running, Succeeded | Failed | Cancelled | Preempted | Queued)
                | (Preempted, Queued | Placed | Cancelled)
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL.into_iter().find(|j| j.as_str() == s).ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// What a token may be: every caller of the platform has exactly one role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Runs the platform: everything.
    Operator,
    /// A data centre: its own pool (agents use provider tokens scoped to one pool).
    Provider,
    /// A firm or institute: its own jobs, money and vouchers.
    Tenant,
    /// A bureau running a voucher programme: that programme.
    ProgramAdmin,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [Role::Operator, Role::Provider, Role::Tenant, Role::ProgramAdmin, Role::Auditor];

    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Provider => "provider",
            Role::Tenant => "tenant",
            Role::ProgramAdmin => "program-admin",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; roles are operator, provider, tenant, program-admin, auditor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().unwrap_err().contains("program-admin"));
    }

    #[test]
    fn terminal_states_go_nowhere_and_open_states_are_the_rest() {
        for from in JobState::ALL {
            if from.is_terminal() {
                assert!(JobState::ALL.iter().all(|&to| !from.can_become(to)), "{from}");
            }
            assert_eq!(JobState::OPEN.contains(&from), !from.is_terminal(), "{from}");
        }
    }
}
