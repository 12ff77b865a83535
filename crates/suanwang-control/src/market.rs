//! The market: posted and spot prices, orders for reserved capacity (a pool never promises more
//! cards than it has), the book, call auctions (the leader runs one every `auction_interval`;
//! operators may run one now), contracts, and quotes: the scheduler's own answer for a job.
//!
//! Tenants buy (`side: buy`, a model and a region); a pool's provider token sells its own pool's
//! cards (model and region are the pool's). Orders need an `Idempotency-Key`.

use std::collections::BTreeMap;

use suanwang_api::jobs::JobRequest;
use suanwang_api::market::{
    AuctionSummary, BookView, Depth, Level, OrderBody, PoolPrice, Prices, Quote, QuoteAbsent, QuoteOption, QuoteRequest,
};
use suanwang_billing::market::{AuctionRecord, BookOrder, MarketContract, NewOrder, Owner};
use suanwang_billing::rating::{run_cost_fen, spot_price_fen};
use suanwang_formats::trace::ModelChoice;
use suanwang_market::Side;
use suanwang_model::federation::PoolId;
use suanwang_model::tariff::{self, Allocation};
use suanwang_sched::scheduler::PoolQuote;
use tokio::sync::oneshot;

use crate::Control;
use crate::access::{Action, Owner as Whose, may, require};
use crate::auth::Caller;
use crate::error::Error;
use crate::scheduler::SchedulerMsg;

/// Cards a pool has (every accelerator of every node).
pub fn pool_cards(ctl: &Control, pool: PoolId) -> u32 {
    ctl.federation.pool(pool).nodes.iter().map(|n| u32::from(n.accelerators)).sum()
}

/// The capacity market contracts hold in each pool (each a tenant's cards for a window), for the
/// scheduler: other tenants' jobs leave it free while it is unused. Contracts of pools not in the
/// federation, or of tenants beyond the scheduler's index range, hold nothing.
pub fn holds(
    federation: &suanwang_model::federation::Federation,
    contracts: &[MarketContract],
) -> Vec<Vec<suanwang_sched::scheduler::CapacityHold>> {
    let mut holds = vec![Vec::new(); federation.pool_count()];
    for c in contracts {
        let (Some((id, _)), Ok(tenant)) = (federation.pools().find(|(_, p)| p.name == c.pool), u32::try_from(c.tenant))
        else {
            continue;
        };
        holds[id.index()].push(suanwang_sched::scheduler::CapacityHold {
            tenant,
            gpu_milli: u64::from(c.cards) * 1000,
            start_s: c.start_s,
            end_s: c.end_s,
        });
    }
    holds
}

/// Every pool's cards, by name.
pub fn all_pool_cards(ctl: &Control) -> BTreeMap<String, u32> {
    ctl.federation.pools().map(|(id, p)| (p.name.clone(), pool_cards(ctl, id))).collect()
}

fn pool_prices(ctl: &Control) -> Vec<PoolPrice> {
    let view = ctl.metrics.view.lock().ok().and_then(|v| v.clone());
    let federation = &ctl.federation;
    let mut out = Vec::new();
    for (id, pool) in federation.pools() {
        let cheapest =
            pool.prices.card_hour_fen.iter().filter(|(m, _)| pool.nodes.iter().any(|n| n.accelerator == Some(**m)));
        let Some((model, list)) = cheapest.min_by_key(|(_, fen)| **fen) else { continue };
        let list = u64::try_from(*list).unwrap_or(0);
        let usage = view.as_ref().and_then(|v| v.pools.get(id.index()).copied());
        let spot = usage.map_or(list, |u| spot_price_fen(list, u.gpu_milli_allocated, u.gpu_milli_capacity));
        out.push(PoolPrice {
            pool: pool.name.clone(),
            model: federation.catalog().get(*model).model.clone(),
            region: federation.site(pool.site).region.clone(),
            cards: pool_cards(ctl, id),
            list_fen_per_card_hour: list,
            spot_fen_per_card_hour: spot,
            utilisation_pct: usage
                .filter(|u| u.gpu_milli_capacity > 0)
                .map(|u| (u.gpu_milli_allocated as f64 * 10_000.0 / u.gpu_milli_capacity as f64).round() / 100.0),
        });
    }
    out
}

/// Posted and spot prices, and the last auction's clearing prices (anyone signed in).
pub async fn prices(ctl: &Control, caller: &Caller) -> Result<Prices, Error> {
    require(caller, Action::ReadCatalogue)?;
    let last = ctl.read_books(|b| b.auctions().last().map(|a| a.prices.clone())).await?;
    Ok(Prices {
        pools: pool_prices(ctl),
        auction_interval_s: ctl.config.auction_interval.as_secs(),
        last_clearing: last.unwrap_or_default(),
    })
}

fn owner(caller: &Caller) -> Result<Owner, Error> {
    require(caller, Action::Trade)?;
    match (caller.tenant(), caller.pool()) {
        (Some(t), _) => Ok(Owner::Tenant(t.0)),
        (_, Some(p)) => Ok(Owner::Pool(p.to_owned())),
        _ => Err(Error::forbidden("tenants buy and pools' provider tokens sell")),
    }
}

/// Places an order (a tenant buys, a provider sells its pool's cards); `created` is false for a
/// retried key.
pub async fn place_order(
    ctl: &Control,
    caller: &Caller,
    key: Option<&str>,
    body: OrderBody,
) -> Result<(BookOrder, bool), Error> {
    let owner = owner(caller)?;
    let key = key
        .map(str::to_owned)
        .ok_or_else(|| Error::bad_request("idempotency_key_required", "send an Idempotency-Key header"))?;
    let (side, model, region, pool_cards) = match (&owner, body.side.as_str()) {
        (Owner::Tenant(_), "buy") => {
            let model = body
                .model
                .clone()
                .ok_or_else(|| Error::bad_request("invalid_order", "a buy names a model").at("model"))?;
            let region = body
                .region
                .clone()
                .ok_or_else(|| Error::bad_request("invalid_order", "a buy names a region").at("region"))?;
            if ctl.federation.catalog().lookup(&model).is_none() {
                return Err(
                    Error::bad_request("unknown_model", format!("unknown accelerator model {model:?}")).at("model")
                );
            }
            if region.len() > 64 {
                return Err(Error::bad_request("invalid_order", "a region is at most 64 characters").at("region"));
            }
            (Side::Buy, model, region, None)
        }
        (Owner::Pool(pool), "sell") => {
            let offer = pool_prices(ctl).into_iter().find(|p| &p.pool == pool).ok_or_else(|| {
                Error::bad_request("invalid_order", format!("pool {pool} has no accelerators to sell"))
            })?;
            if body.model.as_ref().is_some_and(|m| m != &offer.model)
                || body.region.as_ref().is_some_and(|r| r != &offer.region)
            {
                return Err(Error::bad_request("invalid_order", "a pool sells its own model in its own region"));
            }
            if body.cards > offer.cards {
                return Err(Error::bad_request(
                    "cards_invalid",
                    format!("pool {pool} has {} cards; it cannot sell {}", offer.cards, body.cards),
                )
                .at("cards"));
            }
            (Side::Sell, offer.model, offer.region, Some(offer.cards))
        }
        (_, side) => {
            return Err(Error::bad_request(
                "invalid_order",
                format!("side {side:?}: tenants send \"buy\", pools' providers \"sell\""),
            )
            .at("side"));
        }
    };
    if let Owner::Tenant(tenant) = &owner {
        let quotas = crate::quota::of(ctl, suanwang_model::platform::TenantId(*tenant)).await?;
        let mine = ctl.read_books(|books| books.book().filter(|o| o.owner == owner).count()).await?;
        let share = u64::from(quotas.book_share_bps) * suanwang_billing::market::BOOK_MAX as u64 / 10_000;
        let most = u64::from(quotas.open_orders).min(share);
        if mine as u64 >= most {
            return Err(crate::quota::exceeded("resting orders", u32::try_from(most).unwrap_or(u32::MAX)));
        }
    }
    let new = NewOrder {
        owner,
        side,
        model,
        region,
        start_s: body.start_s,
        end_s: body.end_s,
        cards: body.cards,
        limit_fen_per_card_hour: body.limit_fen_per_card_hour,
        all_or_none: body.all_or_none,
        standing: body.standing,
        key,
        pool_cards,
    };
    let now = ctl.now_ms();
    ctl.write_books(&caller.actor(), move |books| books.place_order(new, now)).await?.map_err(|e| order_field(e.into()))
}

/// The body field an order's refusal is about (forms show the message next to it).
fn order_field(error: Error) -> Error {
    let field = match error.code {
        "window_empty" | "window_too_long" => "end_s",
        "window_past" => "start_s",
        "cards_invalid" | "oversold" => "cards",
        "price_invalid" => "limit_fen_per_card_hour",
        _ => return error,
    };
    error.at(field)
}

/// Takes an order out of the book (its owner).
pub async fn cancel_order(ctl: &Control, caller: &Caller, id: u64) -> Result<BookOrder, Error> {
    let owner = owner(caller)?;
    Ok(ctl.write_books(&caller.actor(), move |books| books.cancel_order(&owner, id)).await??)
}

/// The book's depth by product (anonymous), and the caller's own resting orders.
pub async fn book(ctl: &Control, caller: &Caller) -> Result<BookView, Error> {
    require(caller, Action::ReadCatalogue)?;
    let me = owner(caller).ok();
    let everything = caller.sees_everything();
    ctl.read_books(|books| {
        // Per product: (bids, asks), each price → (cards, orders).
        type Key = (String, String, u64, u64);
        type Levels = BTreeMap<i64, (u64, u64)>;
        let mut levels: BTreeMap<Key, (Levels, Levels)> = BTreeMap::new();
        let mut mine = Vec::new();
        for o in books.book() {
            let entry = levels.entry((o.model.clone(), o.region.clone(), o.start_s, o.end_s)).or_default();
            let side = if o.side == "buy" { &mut entry.0 } else { &mut entry.1 };
            let level = side.entry(o.limit_fen_per_card_hour).or_default();
            level.0 += u64::from(o.cards);
            level.1 += 1;
            if everything || me.as_ref() == Some(&o.owner) {
                mine.push(o.clone());
            }
        }
        let to_levels = |m: Levels| -> Vec<Level> {
            m.into_iter()
                .map(|(price, (cards, orders))| Level { price_fen_per_card_hour: price, cards, orders })
                .collect()
        };
        let depth = levels
            .into_iter()
            .map(|((model, region, start_s, end_s), (buys, sells))| {
                let mut buys = to_levels(buys);
                buys.reverse();
                Depth { model, region, start_s, end_s, buys, sells: to_levels(sells) }
            })
            .collect();
        BookView { depth, mine }
    })
    .await
}

/// Runs an auction now and records it (a pool's sell orders never promise more than it has).
pub async fn auction_now(ctl: &Control, actor: &str) -> Result<AuctionRecord, Error> {
    let now = ctl.now_ms();
    let cards = all_pool_cards(ctl);
    ctl.write_books(actor, move |books| books.run_auction(now, &cards)).await
}

/// Runs an auction now (operators).
pub async fn run_auction(ctl: &Control, caller: &Caller) -> Result<AuctionRecord, Error> {
    require(caller, Action::RunAuction)?;
    auction_now(ctl, &caller.actor()).await
}

/// The last 100 auctions' prices and volumes (anyone signed in).
pub async fn auctions(ctl: &Control, caller: &Caller) -> Result<Vec<AuctionSummary>, Error> {
    require(caller, Action::ReadCatalogue)?;
    ctl.read_books(|books| {
        books
            .auctions()
            .iter()
            .rev()
            .take(100)
            .map(|a| AuctionSummary {
                at_ms: a.at_ms,
                prices: a.prices.clone(),
                contracts: a.contracts.len(),
                cards: a.contracts.iter().map(|c| u64::from(c.cards)).sum(),
            })
            .collect()
    })
    .await
}

/// Contracts: a tenant's own, a provider's pool's, or all (operators, auditors).
pub async fn contracts(ctl: &Control, caller: &Caller) -> Result<Vec<MarketContract>, Error> {
    require(caller, Action::ReadContracts)?;
    ctl.read_books(|books| {
        books
            .contracts()
            .iter()
            .filter(|c| {
                may(
                    caller,
                    Action::ReadContracts,
                    Whose {
                        tenant: Some(suanwang_model::platform::TenantId(c.tenant)),
                        pool: Some(&c.pool),
                        program: None,
                    },
                )
            })
            .cloned()
            .collect()
    })
    .await
}

/// The leader's auction task: one auction every `auction_interval` while this server leads.
pub async fn run_auctions(ctl: Control) {
    loop {
        tokio::time::sleep(ctl.config.auction_interval).await;
        if ctl.is_leader() {
            match auction_now(&ctl, "auctioneer").await {
                Ok(a) => tracing::info!(contracts = a.contracts.len(), "call auction"),
                Err(e) => tracing::warn!(error = %e.message, "the auction failed; the next one retries"),
            }
        }
    }
}

/// The longest run a quote is asked for: a year.
const QUOTE_DURATION_MAX_S: u64 = 366 * 86_400;

/// The job a quote is for, as a job body.
fn quote_job(body: &QuoteRequest) -> Result<JobRequest, Error> {
    let accelerators = u8::try_from(body.accelerators)
        .ok()
        .filter(|&a| a <= suanwang_model::federation::limits::ACCELERATORS_PER_NODE_MAX)
        .ok_or_else(|| {
            Error::bad_request("invalid_quote", "accelerators is 0 to 16 cards per task").at("accelerators")
        })?;
    let tasks = u16::try_from(body.tasks)
        .ok()
        .filter(|&t| (1..=suanwang_model::job::limits::GANG_SIZE_MAX).contains(&t))
        .ok_or_else(|| Error::bad_request("invalid_quote", "tasks is 1 to 4096").at("tasks"))?;
    if body.duration_s == 0 || body.duration_s > QUOTE_DURATION_MAX_S {
        return Err(Error::bad_request("invalid_quote", "duration_s is 1 s to a year").at("duration_s"));
    }
    if accelerators == 0 && body.cpu_milli == 0 && body.memory_mib == 0 {
        return Err(Error::bad_request(
            "invalid_quote",
            "a quote needs 1 or more cards (accelerators × tasks), or CPU and memory",
        )
        .at("accelerators"));
    }
    let mut models = body.accelerator_models.clone();
    if let Some(model) = &body.model {
        models.push(ModelChoice::Name(model.clone()));
    }
    Ok(JobRequest {
        accelerators,
        accelerator_milli: body.accelerator_milli.unwrap_or(1000),
        accelerator_models: models,
        cpu_milli: body.cpu_milli,
        memory_mib: body.memory_mib,
        tasks,
        pool: body.pool.clone(),
        estimate_s: Some(body.duration_s),
        dataset: body.dataset.clone(),
        residency_region: body.residency_region.clone(),
        latency: body.latency.clone(),
        max_price_fen_per_card_hour: body.max_price_fen_per_card_hour,
        framework: body.framework.clone(),
        ..JobRequest::named("quote")
    })
}

/// What a job would cost in each pool, cheapest per unit of work first, and whether it would
/// start now: the scheduler's own answer (feasibility, node shapes, gangs, holds, health, drains).
/// A server that does not schedule answers feasibility and prices with `expected_start: unknown`.
/// Pools that could never run the job are listed apart, with the reason.
pub async fn quote(ctl: &Control, caller: &Caller, body: QuoteRequest) -> Result<Quote, Error> {
    require(caller, Action::ReadCatalogue)?;
    let request = crate::fit::with_defaults(quote_job(&body)?, &ctl.config);
    crate::fit::check_limits(&request)?;
    let tenant = caller.tenant().and_then(crate::jobs::tenant_index).unwrap_or(0);
    let now_s = u64::try_from(ctl.now_ms() / 1000).unwrap_or(0);
    let job = crate::fit::scheduler_job(&ctl.federation, &ctl.adaptation, tenant, &request, now_s)?;
    let (reply, answer) = oneshot::channel();
    let answers = if ctl.is_leader()
        && ctl.scheduler.try_send(SchedulerMsg::Quote { job: Box::new(job.clone()), reply }).is_ok()
    {
        answer.await.ok()
    } else {
        None
    };
    let leading = answers.is_some();
    // Without the leader's view: feasibility and prices from an empty scheduler of the federation.
    let answers = match answers {
        Some(a) => a,
        None => {
            let mut idle = suanwang_sched::scheduler::Scheduler::new(
                &ctl.federation,
                tenant as usize + 1,
                suanwang_sched::scheduler::SchedulerConfig { choice: ctl.config.choice, ..Default::default() },
                &suanwang_placement::profile::WorkloadProfile::default(),
            );
            idle.quote(&job, now_s)
        }
    };
    let view = ctl.metrics.view.lock().ok().and_then(|v| v.clone());
    let mut options = Vec::new();
    let mut absent = Vec::new();
    for (pool_id, answer) in answers {
        let pool = ctl.federation.pool(pool_id);
        match answer {
            PoolQuote::Never(reason) => absent.push(QuoteAbsent { pool: pool.name.clone(), reason }),
            PoolQuote::Runs { model, speed, now, .. } => {
                let allocation = Allocation::of(&job.spec, model);
                let list = model.and_then(|m| pool.prices.card_hour_fen.get(&m).copied()).unwrap_or(0);
                let list = u64::try_from(list).unwrap_or(0);
                let spot = view
                    .as_ref()
                    .and_then(|v| v.pools.get(pool_id.index()))
                    .map_or(list, |u| spot_price_fen(list, u.gpu_milli_allocated, u.gpu_milli_capacity));
                let expected_run_s = (body.duration_s as f64 / speed.max(1e-6)).ceil() as u64;
                let run_ms = expected_run_s.saturating_mul(1000);
                let rate = tariff::rate_millifen_per_hour(&pool.prices, &allocation, None);
                let spot_rate =
                    tariff::rate_millifen_per_hour(&pool.prices, &allocation, Some(i64::try_from(spot).unwrap_or(0)));
                options.push(QuoteOption {
                    pool: pool.name.clone(),
                    model: model.map_or_else(|| "CPU".to_owned(), |m| ctl.federation.catalog().get(m).model.clone()),
                    region: ctl.federation.site(pool.site).region.clone(),
                    list_fen_per_card_hour: list,
                    expected_run_s,
                    cost_fen: run_cost_fen(run_ms, rate),
                    spot_fen_per_card_hour: spot,
                    spot_cost_fen: run_cost_fen(run_ms, spot_rate),
                    expected_start: match (leading, now) {
                        (false, _) => "unknown",
                        (true, true) => "now",
                        (true, false) => "queued",
                    }
                    .to_owned(),
                });
            }
        }
    }
    options.sort_by(|a, b| a.cost_fen.cmp(&b.cost_fen).then_with(|| a.pool.cmp(&b.pool)));
    Ok(Quote { options, absent })
}
