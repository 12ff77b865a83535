//! placeholder
use suanwang_sim::placement::PolicyResult;
/// placeholder
pub fn placement_report(_title: &str, _results: &[PolicyResult]) -> String {
    String::new()
}
