//! Tenants and the work they submit: jobs made of identical tasks (a gang), with resource,
//! placement and money constraints.

use crate::catalog::{AcceleratorId, AcceleratorSet};
use crate::error::ModelError;
use crate::federation::{SiteId, limits::ACCELERATORS_PER_NODE_MAX};

/// Thousandths of one accelerator device: a whole device is this many.
pub const MILLI_PER_DEVICE: u16 = 1000;

/// Limits on one job.
pub mod limits {
    /// CPU of one task: 1,024 cores.
    pub const TASK_CPU_MILLI_MAX: u32 = 1_024_000;
    /// Memory of one task: 16 TiB.
    pub const TASK_MEMORY_MIB_MAX: u32 = 16 * 1024 * 1024;
    /// Tasks in one gang.
    pub const GANG_SIZE_MAX: u16 = 4096;
    /// Data set size: 10 PiB.
    pub const DATASET_BYTES_MAX: u64 = 10 << 50;
    /// The slowest speed factor a job may give for a model: 0.001 of the reference.
    pub const SPEED_MILLI_MIN: u32 = 1;
    /// The fastest: 100 times the reference.
    pub const SPEED_MILLI_MAX: u32 = 100_000;
}

/// What kind of organisation a tenant is (voucher programmes select on this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TenantKind {
    /// A young firm (programmes often give start-ups a higher subsidy ratio).
    Startup,
    /// A small or medium enterprise.
    Sme,
    /// A manufacturer.
    Manufacturer,
    /// A research institute.
    ResearchInstitute,
    /// A university.
    University,
    /// A government department.
    Government,
    /// Any other enterprise.
    Enterprise,
}

impl TenantKind {
    /// Every kind, in a fixed order.
    pub const ALL: [TenantKind; 7] = [
        TenantKind::Startup,
        TenantKind::Sme,
        TenantKind::Manufacturer,
        TenantKind::ResearchInstitute,
        TenantKind::University,
        TenantKind::Government,
        TenantKind::Enterprise,
    ];

    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantKind::Startup => "startup",
            TenantKind::Sme => "sme",
            TenantKind::Manufacturer => "manufacturer",
            TenantKind::ResearchInstitute => "research-institute",
            TenantKind::University => "university",
            TenantKind::Government => "government",
            TenantKind::Enterprise => "enterprise",
        }
    }

    /// Parses [`as_str`](Self::as_str) names.
    pub fn parse(name: &str) -> Option<TenantKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// An organisation that submits work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Unique name.
    pub name: String,
    /// What kind of organisation it is.
    pub kind: TenantKind,
    /// City of registration (voucher programmes select on this).
    pub registration_city: String,
    /// Where its users are, for latency requirements; `None` if anywhere.
    pub home_site: Option<SiteId>,
}

/// How much accelerator a task needs: `count` devices with `milli_per_device` of each.
///
/// Either whole devices (`milli_per_device == 1000`, any count), or a fraction of one device
/// (`count == 1`, `milli_per_device < 1000`), or none (`count == 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AcceleratorRequest {
    count: u8,
    milli_per_device: u16,
}

impl AcceleratorRequest {
    /// No accelerator.
    pub const NONE: AcceleratorRequest = AcceleratorRequest { count: 0, milli_per_device: 0 };

    /// `count` whole devices.
    pub fn whole(count: u8) -> Result<Self, ModelError> {
        Self::new(count, if count == 0 { 0 } else { MILLI_PER_DEVICE })
    }

    /// A share of one device, in thousandths (1..=1000).
    pub fn fraction(milli: u16) -> Result<Self, ModelError> {
        Self::new(1, milli)
    }

    /// Checks the combination; see the type's documentation.
    pub fn new(count: u8, milli_per_device: u16) -> Result<Self, ModelError> {
        if count > ACCELERATORS_PER_NODE_MAX {
            return Err(ModelError::out_of_range(
                "accelerators per task",
                format!("at most {ACCELERATORS_PER_NODE_MAX}"),
                count,
            ));
        }
        let valid = match count {
            0 => milli_per_device == 0,
            1 => (1..=MILLI_PER_DEVICE).contains(&milli_per_device),
            _ => milli_per_device == MILLI_PER_DEVICE,
        };
        if !valid {
            return Err(ModelError::out_of_range(
                "accelerator share",
                "0 with no devices, 1..=1000 with one device, 1000 with several",
                format!("{count} × {milli_per_device}"),
            ));
        }
        Ok(AcceleratorRequest { count, milli_per_device })
    }

    /// Number of devices.
    pub fn count(self) -> u8 {
        self.count
    }

    /// Thousandths of each device.
    pub fn milli_per_device(self) -> u16 {
        self.milli_per_device
    }

    /// Total thousandths of a device: `count × milli_per_device`.
    pub fn total_milli(self) -> u32 {
        u32::from(self.count) * u32::from(self.milli_per_device)
    }

    /// True for a share of one device.
    pub fn is_fractional(self) -> bool {
        self.count == 1 && self.milli_per_device < MILLI_PER_DEVICE
    }
}

/// What one task of a job needs on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskSpec {
    cpu_milli: u32,
    memory_mib: u32,
    accelerators: AcceleratorRequest,
    accepted_models: AcceleratorSet,
}

impl TaskSpec {
    /// Validates a task's needs. `accepted_models` must not be empty (use [`AcceleratorSet::ANY`]).
    pub fn new(
        cpu_milli: u32,
        memory_mib: u32,
        accelerators: AcceleratorRequest,
        accepted_models: AcceleratorSet,
    ) -> Result<Self, ModelError> {
        if cpu_milli > limits::TASK_CPU_MILLI_MAX {
            return Err(ModelError::out_of_range(
                "task cpu_milli",
                format!("at most {}", limits::TASK_CPU_MILLI_MAX),
                cpu_milli,
            ));
        }
        if memory_mib > limits::TASK_MEMORY_MIB_MAX {
            return Err(ModelError::out_of_range(
                "task memory_mib",
                format!("at most {}", limits::TASK_MEMORY_MIB_MAX),
                memory_mib,
            ));
        }
        if cpu_milli == 0 && memory_mib == 0 && accelerators.count == 0 {
            return Err(ModelError::out_of_range("task", "a request for some resource", "nothing"));
        }
        if accepted_models.is_empty() {
            return Err(ModelError::out_of_range("accepted accelerator models", "at least one", "none"));
        }
        Ok(TaskSpec { cpu_milli, memory_mib, accelerators, accepted_models })
    }

    /// CPU in thousandths of a core.
    pub fn cpu_milli(&self) -> u32 {
        self.cpu_milli
    }

    /// Memory.
    pub fn memory_mib(&self) -> u32 {
        self.memory_mib
    }

    /// Accelerator devices and shares.
    pub fn accelerators(&self) -> AcceleratorRequest {
        self.accelerators
    }

    /// Models the task can run on.
    pub fn accepted_models(&self) -> AcceleratorSet {
        self.accepted_models
    }
}

/// A data set a job reads, where it lives and how big it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetRef {
    /// Where the data is stored.
    pub site: SiteId,
    /// Its size.
    pub size_bytes: u64,
}

/// A job's users must be within `latency_us_max` of `site`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyRequirement {
    /// Where the users (or the data source) are.
    pub site: SiteId,
    /// The most one-way latency they accept.
    pub latency_us_max: u32,
}

/// A unit of work: `gang_size` identical tasks that start together or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// A label for people.
    pub name: String,
    /// Index of the submitting tenant.
    pub tenant: u32,
    /// What each task needs.
    pub task: TaskSpec,
    /// Number of tasks (1 for a single-node job).
    pub gang_size: u16,
    /// Higher runs first under priority queues.
    pub priority: i32,
    /// May be stopped and requeued to make room for others.
    pub preemptible: bool,
    /// Input data, counted in placement (transfer time and egress).
    pub dataset: Option<DatasetRef>,
    /// The job's data must stay in this region (e.g. `CN-GD`).
    pub residency_region: Option<String>,
    /// Latency bound to the job's users.
    pub latency: Option<LatencyRequirement>,
    /// The most the tenant pays for one card for one hour.
    pub price_fen_per_card_hour_max: Option<i64>,
    /// When the job must be done by (Unix seconds, UTC).
    pub deadline_unix_s: Option<i64>,
    /// The user's estimate of its run time; schedulers may read this, never the true duration.
    pub runtime_estimate_s: Option<u64>,
    /// The job's own speed on some of its accepted models, in thousandths of the reference
    /// speed (1000: as fast as on the reference card, 500: half as fast), at most one entry per
    /// model. Models not listed run at the scheduler's default speed (published TFLOPS over the
    /// reference's).
    pub speeds: Vec<(AcceleratorId, u32)>,
}

impl JobSpec {
    /// Checks what [`TaskSpec`] cannot check alone.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.gang_size == 0 || self.gang_size > limits::GANG_SIZE_MAX {
            return Err(ModelError::out_of_range(
                "gang_size",
                format!("in 1..={}", limits::GANG_SIZE_MAX),
                self.gang_size,
            ));
        }
        if self.gang_size > 1 && self.task.accelerators().is_fractional() {
            return Err(ModelError::Inconsistent("a gang of fractional-accelerator tasks is not supported".to_owned()));
        }
        if let Some(dataset) = &self.dataset
            && dataset.size_bytes > limits::DATASET_BYTES_MAX
        {
            return Err(ModelError::out_of_range("dataset size", "at most 10 PiB", dataset.size_bytes));
        }
        if let Some(price) = self.price_fen_per_card_hour_max
            && price < 0
        {
            return Err(ModelError::out_of_range("price_fen_per_card_hour_max", "at least 0", price));
        }
        for (i, &(model, milli)) in self.speeds.iter().enumerate() {
            if !(limits::SPEED_MILLI_MIN..=limits::SPEED_MILLI_MAX).contains(&milli) {
                return Err(ModelError::out_of_range(
                    "speed",
                    format!(
                        "between {} and {}",
                        limits::SPEED_MILLI_MIN as f64 / 1000.0,
                        limits::SPEED_MILLI_MAX / 1000
                    ),
                    milli as f64 / 1000.0,
                ));
            }
            if !self.task.accepted_models().contains(model) {
                return Err(ModelError::Inconsistent(
                    "a speed is given for a model the job does not accept".to_owned(),
                ));
            }
            if self.speeds[..i].iter().any(|(m, _)| *m == model) {
                return Err(ModelError::Inconsistent("a model's speed is given twice".to_owned()));
            }
        }
        Ok(())
    }

    /// The job's own speed on `model`, in thousandths of the reference, if it gave one.
    pub fn speed_milli(&self, model: AcceleratorId) -> Option<u32> {
        self.speeds.iter().find(|(m, _)| *m == model).map(|(_, s)| *s)
    }

    /// Accelerator thousandths the whole gang needs.
    pub fn total_accelerator_milli(&self) -> u64 {
        u64::from(self.task.accelerators().total_milli()) * u64::from(self.gang_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerator_requests_are_whole_or_one_fraction() {
        assert_eq!(AcceleratorRequest::whole(8).unwrap().total_milli(), 8000);
        assert!(AcceleratorRequest::fraction(250).unwrap().is_fractional());
        assert!(!AcceleratorRequest::fraction(1000).unwrap().is_fractional());
        assert_eq!(AcceleratorRequest::whole(0).unwrap(), AcceleratorRequest::NONE);
        for (count, milli) in [(2, 500), (1, 0), (1, 1001), (0, 5), (17, 1000)] {
            assert!(AcceleratorRequest::new(count, milli).is_err(), "{count} × {milli}");
        }
    }

    #[test]
    fn task_specs_reject_nothing_and_too_much() {
        let none = AcceleratorRequest::NONE;
        assert!(TaskSpec::new(0, 0, none, AcceleratorSet::ANY).is_err());
        assert!(TaskSpec::new(2_000_000, 0, none, AcceleratorSet::ANY).is_err());
        assert!(TaskSpec::new(1000, 0, none, AcceleratorSet::NONE).is_err());
        assert!(TaskSpec::new(1000, 1024, none, AcceleratorSet::ANY).is_ok());
    }

    #[test]
    fn gangs_of_fractions_are_rejected() {
        let task = TaskSpec::new(1000, 1024, AcceleratorRequest::fraction(500).unwrap(), AcceleratorSet::ANY).unwrap();
        let job = JobSpec {
            name: "j".to_owned(),
            tenant: 0,
            task,
            gang_size: 2,
            priority: 0,
            preemptible: false,
            dataset: None,
            residency_region: None,
            latency: None,
            price_fen_per_card_hour_max: None,
            deadline_unix_s: None,
            runtime_estimate_s: None,
            speeds: Vec::new(),
        };
        assert_eq!(job.validate().unwrap_err().code(), "inconsistent");
        assert!(JobSpec { gang_size: 1, ..job.clone() }.validate().is_ok());
        assert_eq!(JobSpec { gang_size: 1, ..job }.total_accelerator_milli(), 500);
    }
}
