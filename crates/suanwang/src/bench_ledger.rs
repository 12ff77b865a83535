//! `suanwang bench ledger`: applies N random transfers to the ledger in batches and makes each
//! batch durable in the store (SQLite by default, PostgreSQL with `--database-url`) before the next;
//! reports transfers per second, then replays the stored history and checks that it rebuilds the
//! same ledger with an exact trial balance.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;
use suanwang_ledger::{AccountId, AccountKind, AccountSpec, Event, Ledger, Limit, Transfer, TransferId, TransferKind};
use suanwang_store::store::Store;

use crate::args::{BenchLedgerArgs, Format};
use crate::error::CliError;
use crate::output::{Table, print};

/// What the bench measured.
#[derive(Debug, Serialize)]
pub struct LedgerBench {
    /// Store engine.
    pub store: &'static str,
    /// Transfers applied (accepted or refused).
    pub transfers: u64,
    /// Transfers per durable commit.
    pub batch: usize,
    /// Transfers per second of wall time, commits included.
    pub transfers_per_s: f64,
    /// Transfers refused (insufficient funds, posting an expired hold, …).
    pub refused: u64,
    /// History entries written.
    pub entries: u64,
    /// Debits equal credits, posted and pending, after the run.
    pub trial_balance_exact: bool,
    /// The history read back from the store rebuilds the same ledger.
    pub replay_matches: bool,
    /// Wall time of the timed part.
    pub seconds: f64,
}

const WORLD: AccountId = AccountId(1);
const FEE: AccountId = AccountId(2);
const TENANTS: u64 = 1_000;
const PROVIDERS: u64 = 50;

fn tenant(i: u64) -> AccountId {
    AccountId(1_000 + i)
}

fn provider(i: u64) -> AccountId {
    AccountId(100_000 + i)
}

/// Runs the bench.
pub fn run(args: &BenchLedgerArgs) -> Result<(), CliError> {
    let runtime = crate::serve_cmd::runtime()?;
    let scratch = std::env::temp_dir().join(format!("suanwang-bench-ledger-{}", std::process::id()));
    let result = runtime.block_on(async {
        let (store, engine) = match &args.database_url {
            Some(url) => (crate::serve_cmd::open_store(&scratch, Some(url)).await?, "postgresql"),
            None => {
                let dir = args.data_dir.clone().unwrap_or_else(|| scratch.clone());
                (crate::serve_cmd::open_store(&dir, None).await?, "sqlite")
            }
        };
        if !store.ledger_entries(0, 1).await.map_err(db)?.is_empty() {
            return Err(CliError::input("ledger_not_empty", "the bench needs a store whose ledger is empty"));
        }
        let outcome = bench(&store, args, engine).await;
        store.close().await;
        outcome
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let result = result?;
    print(&match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&result).unwrap_or_default()),
        Format::Table => {
            let mut table = Table::new(&[
                "store",
                "transfers",
                "batch",
                "transfers/s",
                "refused",
                "entries",
                "balanced",
                "replay ok",
                "seconds",
            ]);
            table.row(vec![
                result.store.to_owned(),
                result.transfers.to_string(),
                result.batch.to_string(),
                format!("{:.0}", result.transfers_per_s),
                result.refused.to_string(),
                result.entries.to_string(),
                result.trial_balance_exact.to_string(),
                result.replay_matches.to_string(),
                format!("{:.2}", result.seconds),
            ]);
            table.render()
        }
    })?;
    if result.trial_balance_exact && result.replay_matches {
        Ok(())
    } else {
        Err(CliError::internal("ledger_inconsistent", "the ledger did not balance or did not replay"))
    }
}

fn db(e: suanwang_store::error::StoreError) -> CliError {
    CliError::internal("database_unavailable", e.to_string())
}

async fn persist(store: &Store, ledger: &Ledger, written: &mut usize) -> Result<(), CliError> {
    let new: Vec<String> = ledger.events()[*written..].iter().map(Event::encode).collect();
    for chunk in new.chunks(suanwang_store::store::LEDGER_APPEND_MAX) {
        store
            .append_ledger(
                "bench",
                chunk,
                suanwang_control::clock::Clock::now_ms(&suanwang_control::clock::SystemClock),
            )
            .await
            .map_err(db)?;
    }
    *written = ledger.events().len();
    Ok(())
}

async fn bench(store: &Store, args: &BenchLedgerArgs, engine: &'static str) -> Result<LedgerBench, CliError> {
    let mut ledger = Ledger::new();
    let open = |ledger: &mut Ledger, id, kind, limit| {
        ledger.open(AccountSpec { id, kind, limit }).map_err(|e| CliError::internal("ledger", e.to_string()))
    };
    open(&mut ledger, WORLD, AccountKind::World, Limit::None)?;
    open(&mut ledger, FEE, AccountKind::PlatformFee, Limit::None)?;
    for i in 0..TENANTS {
        open(&mut ledger, tenant(i), AccountKind::TenantCash, Limit::DebitsWithinCredits)?;
    }
    for i in 0..PROVIDERS {
        open(&mut ledger, provider(i), AccountKind::ProviderPayable, Limit::None)?;
    }
    let mut written = 0;
    persist(store, &ledger, &mut written).await?;

    let mut rng = Pcg64Mcg::seed_from_u64(args.seed);
    let mut holds: Vec<TransferId> = Vec::new();
    let (mut refused, mut next_id) = (0u64, 1u128);
    let mut now_s = 1_790_000_000u64;
    let started = Instant::now();
    let mut done = 0u64;
    while done < args.transfers {
        let size = (args.transfers - done).min(args.batch as u64) as usize;
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            let t = tenant(rng.random_range(0..TENANTS));
            let p = provider(rng.random_range(0..PROVIDERS));
            let amount_fen = rng.random_range(1..50_000u64);
            let kind = match rng.random_range(0..100u32) {
                // Top-ups from outside, usage charges, the platform's fee.
                0..=14 => TransferKind::Single { debit: WORLD, credit: t, amount_fen: amount_fen * 20 },
                15..=64 => TransferKind::Single { debit: t, credit: p, amount_fen },
                65..=74 => TransferKind::Single { debit: p, credit: FEE, amount_fen: amount_fen / 10 + 1 },
                // Holds for running jobs, settled (partly) or released.
                75..=89 => TransferKind::Pending { debit: t, credit: p, amount_fen, timeout_s: Some(3_600) },
                90..=96 if !holds.is_empty() => {
                    let i = rng.random_range(0..holds.len());
                    TransferKind::PostPending { pending: holds.swap_remove(i), amount_fen: None }
                }
                _ if !holds.is_empty() => {
                    let i = rng.random_range(0..holds.len());
                    TransferKind::VoidPending { pending: holds.swap_remove(i) }
                }
                _ => TransferKind::Single { debit: WORLD, credit: t, amount_fen },
            };
            batch.push(Transfer { id: TransferId(next_id), kind, linked: false, code: 1 });
            next_id += 1;
        }
        let results = ledger.apply(&batch, now_s);
        for (t, r) in batch.iter().zip(&results) {
            match (t.kind, r) {
                (TransferKind::Pending { .. }, Ok(())) => holds.push(t.id),
                (_, Err(_)) => refused += 1,
                _ => {}
            }
        }
        persist(store, &ledger, &mut written).await?;
        done += size as u64;
        now_s += 1;
    }
    let seconds = started.elapsed().as_secs_f64();

    // Read the history back, as a restarted server would, and rebuild.
    let mut lines = Vec::with_capacity(written);
    let mut after = 0;
    loop {
        let page = store.ledger_entries(after, suanwang_store::store::LEDGER_PAGE_MAX).await.map_err(db)?;
        let Some(last) = page.last() else { break };
        after = last.0;
        lines.extend(page.into_iter().map(|(_, line)| line));
    }
    let events: Result<Vec<Event>, String> = lines.iter().map(|l| Event::decode(l)).collect();
    let replay_matches = events.and_then(|e| Ledger::replay(&e)).is_ok_and(|rebuilt| rebuilt == ledger);
    Ok(LedgerBench {
        store: engine,
        transfers: args.transfers,
        batch: args.batch,
        transfers_per_s: (args.transfers as f64 / seconds).round(),
        refused,
        entries: written as u64,
        trial_balance_exact: ledger.trial_balance().balances(),
        replay_matches,
        seconds,
    })
}
