//! `frag-plus`: Suanwang's own policy (work in progress: starts as exact-gradient FGD).

use suanwang_model::job::TaskSpec;

use super::fgd::candidates;
use super::{Policy, PolicyContext, PolicyName, select_by_score};
use crate::cluster::{Assignment, Cluster, DeviceMask, NodeIdx};
use crate::frag::FragMeter;

/// Tuning knobs of `frag-plus`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FragPlusConfig {}

impl Default for FragPlusConfig {
    fn default() -> Self {
        FragPlusConfig {}
    }
}

pub(super) struct FragPlusPolicy {
    meter: FragMeter,
}

impl FragPlusPolicy {
    pub(super) fn new(context: &PolicyContext, _config: FragPlusConfig) -> Self {
        FragPlusPolicy { meter: FragMeter::new(context.typical.clone(), context.nodes) }
    }
}

impl Policy for FragPlusPolicy {
    fn name(&self) -> PolicyName {
        PolicyName::FragPlus
    }

    fn select(&mut self, cluster: &Cluster, order: &[NodeIdx], task: &TaskSpec) -> Option<Assignment> {
        let meter = &mut self.meter;
        select_by_score(cluster, order, task, |node, idx| {
            let before = meter.node(cluster, idx);
            let mut best: Option<(i64, DeviceMask)> = None;
            candidates(meter, node, task, |devices, after| {
                let score = ((before - after) * 1000.0).round() as i64;
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, devices));
                }
            });
            best.unwrap_or((0, DeviceMask::EMPTY))
        })
    }
}
