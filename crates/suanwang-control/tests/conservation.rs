//! Conservation: a pool never promises or hands out more cards than it has. A property test over
//! random sell and buy orders, call auctions, jobs of tenants with and without contracts, job
//! ends and the passing of time, driving the same books (`suanwang-billing`) and scheduler
//! (`suanwang-sched`) the platform runs, glued by the control plane's own `market::holds`:
//!
//! - at every instant, a pool's contracts and resting sell orders hold at most its cards (sell
//!   orders that would break this are refused, `oversold`);
//! - every job the scheduler starts goes only into cards that are neither allocated nor held for
//!   another tenant's contract: after each pass, for each tenant that started a job in a pool,
//!   allocated + the unused cards held for the other tenants ≤ the pool's cards.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeMap;

use proptest::prelude::*;
use suanwang_billing::Books;
use suanwang_billing::market::{NewOrder, Owner, promised_at_peak};
use suanwang_market::Side;
use suanwang_model::catalog::AcceleratorSet;
use suanwang_model::federation::{Federation, PoolId};
use suanwang_model::job::{AcceleratorRequest, JobSpec, TaskSpec};
use suanwang_placement::profile::WorkloadProfile;
use suanwang_sched::job::Job;
use suanwang_sched::scheduler::{Decision, Scheduler, SchedulerConfig};

const FEDERATION: &str = r#"
name = "two pools"
[[site]]
name = "here"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.5
longitude_deg = 113.9
[[pool]]
name = "p0"
site = "here"
provider = "a"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800-SXM4-80GB" = 1000 }
[[pool.nodes]]
count = 2
accelerator = "A800-SXM4-80GB"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576
[[pool]]
name = "p1"
site = "here"
provider = "b"
backend = "sim"
pue = 1.2
card_hour_fen = { "A800-SXM4-80GB" = 1200 }
[[pool.nodes]]
count = 1
accelerator = "A800-SXM4-80GB"
accelerators_per_node = 8
cpu_milli = 128000
memory_mib = 1048576
"#;

const TENANTS: u32 = 3;
const T0_S: u64 = 1_800_000_000;

#[derive(Clone, Debug)]
enum Op {
    Sell { pool: usize, start: u64, len: u64, cards: u32, price: i64 },
    Buy { tenant: u32, start: u64, len: u64, cards: u32, price: i64 },
    Auction,
    Submit { tenant: u32, cards: u8 },
    Finish { pick: usize },
    Wait { s: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, 0..7_200u64, 600..14_400u64, 1..17u32, 500..1_500i64)
            .prop_map(|(pool, start, len, cards, price)| Op::Sell { pool, start, len, cards, price }),
        (0..TENANTS, 0..7_200u64, 600..14_400u64, 1..17u32, 500..1_500i64)
            .prop_map(|(tenant, start, len, cards, price)| Op::Buy { tenant, start, len, cards, price }),
        Just(Op::Auction),
        (0..TENANTS, 1..9u8).prop_map(|(tenant, cards)| Op::Submit { tenant, cards }),
        (0..64usize).prop_map(|pick| Op::Finish { pick }),
        (1..3_600u64).prop_map(|s| Op::Wait { s }),
    ]
}

fn federation() -> Federation {
    suanwang_formats::federation::parse("conservation", FEDERATION, &suanwang_formats::catalog::builtin()).unwrap()
}

fn job(tenant: u32, cards: u8, now: u64) -> Job {
    let task = TaskSpec::new(1_000, 1_024, AcceleratorRequest::whole(cards).unwrap(), AcceleratorSet::ANY).unwrap();
    let spec = JobSpec {
        name: "j".to_owned(),
        tenant,
        task,
        gang_size: 1,
        priority: 0,
        preemptible: false,
        dataset: None,
        residency_region: None,
        latency: None,
        price_fen_per_card_hour_max: None,
        deadline_unix_s: None,
        runtime_estimate_s: Some(3_600),
        speeds: Vec::new(),
    };
    Job { spec, submit_s: now, green: false, oracle_duration_s: None, pool: None }
}

/// The market's promise: at every instant, a pool's contracts and resting sells ≤ its cards.
fn check_market(books: &Books, cards: &BTreeMap<String, u32>) -> Result<(), TestCaseError> {
    for (pool, &have) in cards {
        let mut spans: Vec<(u64, u64, u32)> =
            books.contracts().iter().filter(|c| &c.pool == pool).map(|c| (c.start_s, c.end_s, c.cards)).collect();
        spans.extend(
            books
                .book()
                .filter(|o| o.side == "sell" && o.owner == Owner::Pool(pool.clone()))
                .map(|o| (o.start_s, o.end_s, o.cards)),
        );
        let peak = promised_at_peak(&spans, 0, u64::MAX);
        prop_assert!(peak <= have, "pool {pool} promises {peak} of its {have} cards: {spans:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_pool_promises_or_hands_out_more_than_it_has(ops in proptest::collection::vec(op(), 1..120)) {
        let federation = federation();
        let cards: BTreeMap<String, u32> = federation
            .pools()
            .map(|(_, p)| (p.name.clone(), p.nodes.iter().map(|n| u32::from(n.accelerators)).sum()))
            .collect();
        let mut books = Books::new();
        let config = SchedulerConfig { policy: "fifo+backfill".parse().unwrap(), ..SchedulerConfig::default() };
        let mut scheduler = Scheduler::new(&federation, TENANTS as usize, config, &WorkloadProfile::default());
        let mut now = T0_S;
        let mut running = Vec::new();
        for (n, op) in ops.into_iter().enumerate() {
            let now_ms = i64::try_from(now * 1000).unwrap();
            match op {
                Op::Sell { pool, start, len, cards: n_cards, price } => {
                    let name = federation.pool(PoolId::from_index(pool)).name.clone();
                    let order = NewOrder {
                        owner: Owner::Pool(name.clone()),
                        side: Side::Sell,
                        model: "A800-SXM4-80GB".to_owned(),
                        region: "CN-GD".to_owned(),
                        start_s: now + 1 + start,
                        end_s: now + 1 + start + len,
                        cards: n_cards,
                        limit_fen_per_card_hour: price,
                        all_or_none: false,
                        standing: true,
                        key: format!("s{n}"),
                        pool_cards: cards.get(&name).copied(),
                    };
                    if let Err(e) = books.place_order(order, now_ms) {
                        prop_assert!(["oversold", "window_past"].contains(&e.code), "{}", e.message);
                    }
                }
                Op::Buy { tenant, start, len, cards: n_cards, price } => {
                    let order = NewOrder {
                        owner: Owner::Tenant(i64::from(tenant)),
                        side: Side::Buy,
                        model: "A800-SXM4-80GB".to_owned(),
                        region: "CN-GD".to_owned(),
                        start_s: now + 1 + start,
                        end_s: now + 1 + start + len,
                        cards: n_cards,
                        limit_fen_per_card_hour: price,
                        all_or_none: false,
                        standing: true,
                        key: format!("b{n}"),
                        pool_cards: None,
                    };
                    let _ = books.place_order(order, now_ms);
                }
                Op::Auction => {
                    books.run_auction(now_ms, &cards);
                }
                Op::Submit { tenant, cards: n_cards } => {
                    scheduler.submit(job(tenant, n_cards, now), now).unwrap();
                }
                Op::Finish { pick } => {
                    if !running.is_empty() {
                        let id = running.swap_remove(pick % running.len());
                        scheduler.finish(id, now);
                    }
                }
                Op::Wait { s } => now += s,
            }
            check_market(&books, &cards)?;
            // The control plane's glue: contracts become holds; then a pass.
            let active: Vec<_> = books.contracts().iter().filter(|c| c.end_s > now).cloned().collect();
            for (i, holds) in suanwang_control::market::holds(&federation, &active).into_iter().enumerate() {
                scheduler.set_holds(PoolId::from_index(i), holds);
            }
            let mut started: BTreeMap<PoolId, Vec<u32>> = BTreeMap::new();
            for decision in scheduler.schedule(now) {
                if let Decision::Start { job, pool, .. } = decision {
                    running.push(job);
                    started.entry(pool).or_default().push(scheduler.job(job).spec.tenant);
                }
            }
            for (pool, tenants) in started {
                let cluster = &scheduler.pool(pool).cluster;
                for tenant in tenants {
                    let held = scheduler.held_for_others(pool, tenant, now);
                    prop_assert!(
                        cluster.gpu_milli_allocated() + held <= cluster.gpu_milli_capacity(),
                        "pool {pool:?}: {} allocated and {held} held for others of {} (tenant {tenant})",
                        cluster.gpu_milli_allocated(),
                        cluster.gpu_milli_capacity()
                    );
                }
            }
        }
    }
}
