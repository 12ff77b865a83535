//! Utilisation and queue length over time, for the overview's charts: the leading scheduler's
//! view sampled at a fixed interval into a bounded ring in memory. A server that does not lead
//! samples nothing; a restarted server starts a new history. Long-term series are Prometheus's
//! job (`/metrics` exports the same gauges).

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::Control;

/// Samples kept (a day at one a minute).
pub const SAMPLES_MAX: usize = 1440;

/// One sample of the federation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// When (ms since 1970).
    pub at_ms: i64,
    /// Jobs waiting.
    pub queued: u64,
    /// Accelerators allocated, milli-cards.
    pub allocated_milli: u64,
    /// Accelerator capacity, milli-cards.
    pub cards_milli: u64,
}

/// The ring of samples.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// Adds a sample, dropping the oldest beyond [`SAMPLES_MAX`].
    pub fn push(&self, sample: Sample) {
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() >= SAMPLES_MAX {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().map(|s| s.iter().copied().collect()).unwrap_or_default()
    }
}

/// Samples the scheduler's published view every `config.sample_interval` while this server leads.
pub async fn run(ctl: Control) {
    loop {
        tokio::time::sleep(ctl.config.sample_interval).await;
        let view = ctl.metrics.view.lock().ok().and_then(|v| v.clone());
        if let Some(view) = view {
            let (allocated_milli, cards_milli) =
                view.pools.iter().fold((0, 0), |(a, c), p| (a + p.gpu_milli_allocated, c + p.gpu_milli_capacity));
            ctl.history.push(Sample { at_ms: ctl.now_ms(), queued: view.queued, allocated_milli, cards_milli });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_bounded() {
        let history = History::default();
        for i in 0..(SAMPLES_MAX as i64 + 10) {
            history.push(Sample { at_ms: i, queued: 0, allocated_milli: 0, cards_milli: 1 });
        }
        let samples = history.samples();
        assert_eq!(samples.len(), SAMPLES_MAX);
        assert_eq!(samples[0].at_ms, 10);
    }
}
