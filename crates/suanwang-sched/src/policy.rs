//! Queue policies: a discipline that orders the queue, optionally with backfilling.

use std::fmt;
use std::str::FromStr;

/// How the queue is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Discipline {
    /// First come, first served.
    Fifo,
    /// Higher priority first, then first come; may preempt lower-priority preemptible jobs.
    Priority,
    /// Shortest job first by the **true** duration: an oracle, a bound to compare with; never
    /// the default.
    Sjf,
    /// Least attained service (Tiresias' discretised 2D-LAS): jobs that have used fewer GPU-seconds
    /// go first; a job that passes the threshold drops to the lower queue, where it may be
    /// preempted by jobs of the upper one.
    Las,
    /// Weighted dominant-resource fairness between tenants; first come within a tenant.
    Drf,
}

impl Discipline {
    /// Every discipline.
    pub const ALL: [Discipline; 5] =
        [Discipline::Fifo, Discipline::Priority, Discipline::Sjf, Discipline::Las, Discipline::Drf];

    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Discipline::Fifo => "fifo",
            Discipline::Priority => "priority",
            Discipline::Sjf => "sjf",
            Discipline::Las => "las",
            Discipline::Drf => "drf",
        }
    }

    /// Whether jobs of this discipline may preempt running ones.
    pub fn preempts(self) -> bool {
        matches!(self, Discipline::Priority | Discipline::Las)
    }
}

/// A discipline, with or without backfilling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueuePolicy {
    /// The order.
    pub discipline: Discipline,
    /// When the job at the head cannot start, later jobs may: EASY backfilling when run-time
    /// estimates are known (they must not delay the head's reserved start), greedy otherwise.
    pub backfill: bool,
}

impl QueuePolicy {
    /// The default: the best combination measured on the Philly trace (BENCHMARKS.md). It reads
    /// no true durations.
    pub const DEFAULT: QueuePolicy = QueuePolicy { discipline: Discipline::Las, backfill: true };

    /// Every discipline, without and with backfilling.
    pub fn all() -> Vec<QueuePolicy> {
        Discipline::ALL
            .iter()
            .flat_map(|&d| [false, true].map(|backfill| QueuePolicy { discipline: d, backfill }))
            .collect()
    }
}

impl fmt::Display for QueuePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.discipline.as_str())?;
        if self.backfill {
            f.write_str("+backfill")?;
        }
        Ok(())
    }
}

/// A policy name that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown queue policy {name:?}; use one of fifo, priority, sjf, las, drf, optionally with +backfill (e.g. las+backfill)"
)]
pub struct UnknownQueuePolicy {
    /// What was asked for.
    pub name: String,
}

impl FromStr for QueuePolicy {
    type Err = UnknownQueuePolicy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownQueuePolicy { name: text.to_owned() };
        let lower = text.trim().to_ascii_lowercase();
        let (name, backfill) = match lower.split_once('+') {
            Some((name, "backfill")) => (name, true),
            Some(_) => return Err(unknown()),
            None => (lower.as_str(), false),
        };
        let discipline = Discipline::ALL.into_iter().find(|d| d.as_str() == name).ok_or_else(unknown)?;
        Ok(QueuePolicy { discipline, backfill })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for policy in QueuePolicy::all() {
            assert_eq!(policy.to_string().parse::<QueuePolicy>(), Ok(policy));
        }
        assert_eq!(QueuePolicy::all().len(), 10);
        assert!("las+preempt".parse::<QueuePolicy>().is_err());
        assert!("worst".parse::<QueuePolicy>().unwrap_err().to_string().contains("las+backfill"));
        assert_eq!(QueuePolicy::DEFAULT.to_string(), "las+backfill");
    }
}
