//! The market over HTTP: posted and spot prices, orders for reserved capacity, the book's depth,
//! call auctions (the leader runs one every `auction_interval`; operators may run one now),
//! contracts, and quotes for a job.
//!
//! Tenants buy (`side: buy`, a model and a region); a pool's provider token sells its own pool's
//! cards (model and region are the pool's). Orders need an `Idempotency-Key` header.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use suanwang_billing::market::{AuctionRecord, BookOrder, MarketContract, NewOrder, Owner};
use suanwang_billing::rating::{cost_fen, spot_price_fen};
use suanwang_market::Side;
use suanwang_store::model::Role;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::Body;
use crate::state::{AppState, now_ms};

/// A pool's offer: what the platform posts for it.
#[derive(Debug, Serialize)]
pub struct PoolPrice {
    /// Pool.
    pub pool: String,
    /// Its accelerator model (the cheapest, for pools with several).
    pub model: String,
    /// Its site's region.
    pub region: String,
    /// Cards.
    pub cards: u32,
    /// Posted on-demand price, fen per card-hour.
    pub list_fen_per_card_hour: u64,
    /// The spot price now (the rule in `suanwang_billing::rating::spot_price_fen`).
    pub spot_fen_per_card_hour: u64,
    /// Cards allocated now, as the leading scheduler last saw them (`None` on a standby).
    pub utilisation_pct: Option<f64>,
}

/// `GET /api/v1/market/prices`.
#[derive(Debug, Serialize)]
pub struct Prices {
    /// Every pool with accelerators.
    pub pools: Vec<PoolPrice>,
    /// Seconds between auctions.
    pub auction_interval_s: u64,
    /// The last auction's clearing prices: model, region, window start, end, price.
    pub last_clearing: Vec<(String, String, u64, u64, i64)>,
}

fn pool_prices(state: &AppState) -> Vec<PoolPrice> {
    let view = state.metrics.view.lock().ok().and_then(|v| v.clone());
    let federation = &state.federation;
    let mut out = Vec::new();
    for (id, pool) in federation.pools() {
        let Some((facts, list)) = crate::money::pool_facts(state, &pool.name) else { continue };
        let model = pool
            .nodes
            .iter()
            .filter_map(|n| n.accelerator)
            .min_by_key(|m| pool.prices.card_hour_fen.get(m).copied().unwrap_or(i64::MAX))
            .map(|m| federation.catalog().get(m).model.clone());
        let Some(model) = model else { continue };
        let usage = view.as_ref().and_then(|v| v.pools.get(id.index()).copied());
        let spot = usage.map_or(list, |u| spot_price_fen(list, u.gpu_milli_allocated, u.gpu_milli_capacity));
        out.push(PoolPrice {
            pool: pool.name.clone(),
            model,
            region: federation.site(pool.site).region.clone(),
            cards: facts.cards,
            list_fen_per_card_hour: list,
            spot_fen_per_card_hour: spot,
            utilisation_pct: usage
                .filter(|u| u.gpu_milli_capacity > 0)
                .map(|u| (u.gpu_milli_allocated as f64 * 10_000.0 / u.gpu_milli_capacity as f64).round() / 100.0),
        });
    }
    out
}

/// `GET /api/v1/market/prices` (anyone signed in).
pub async fn prices(State(state): State<AppState>, _caller: Caller) -> Result<Json<Prices>, ApiError> {
    let last = state.ledger.read(&state.store, |b| b.auctions().last().map(|a| a.prices.clone())).await?;
    Ok(Json(Prices {
        pools: pool_prices(&state),
        auction_interval_s: state.config.auction_interval.as_secs(),
        last_clearing: last.unwrap_or_default(),
    }))
}

/// `POST /api/v1/market/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    /// `buy` (tenants) or `sell` (a pool's provider).
    pub side: String,
    /// Accelerator model (buys; a sell is for its pool's model).
    #[serde(default)]
    pub model: Option<String>,
    /// Region (buys; a sell is in its pool's region).
    #[serde(default)]
    pub region: Option<String>,
    /// Window start, seconds since 1970 (UTC).
    pub start_s: u64,
    /// Window end (exclusive).
    pub end_s: u64,
    /// Cards.
    pub cards: u32,
    /// Limit price, fen per card-hour.
    pub limit_fen_per_card_hour: i64,
    /// Fill whole or not at all.
    #[serde(default)]
    pub all_or_none: bool,
    /// Rest in the book until filled or cancelled.
    #[serde(default = "yes")]
    pub standing: bool,
}

fn yes() -> bool {
    true
}

fn owner(caller: &Caller) -> Result<Owner, ApiError> {
    match (caller.role(), caller.principal.tenant_id, caller.principal.pool.as_ref()) {
        (Role::Tenant, Some(t), _) => Ok(Owner::Tenant(t)),
        (Role::Provider, _, Some(p)) => Ok(Owner::Pool(p.clone())),
        _ => Err(ApiError::forbidden("tenants buy and pools' provider tokens sell")),
    }
}

/// `POST /api/v1/market/orders` (tenant buys, provider sells): into the book for the next auction.
pub async fn place_order(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<OrderBody>,
) -> Result<(StatusCode, Json<BookOrder>), ApiError> {
    let owner = owner(&caller)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("idempotency_key_required", "send an Idempotency-Key header"))?;
    let (side, model, region) = match (&owner, body.side.as_str()) {
        (Owner::Tenant(_), "buy") => {
            let model =
                body.model.clone().ok_or_else(|| ApiError::bad_request("invalid_order", "a buy names a model"))?;
            let region =
                body.region.clone().ok_or_else(|| ApiError::bad_request("invalid_order", "a buy names a region"))?;
            if state.federation.catalog().lookup(&model).is_none() {
                return Err(
                    ApiError::bad_request("unknown_model", format!("unknown accelerator model {model:?}")).at("model")
                );
            }
            (Side::Buy, model, region)
        }
        (Owner::Pool(pool), "sell") => {
            let offer = pool_prices(&state).into_iter().find(|p| &p.pool == pool).ok_or_else(|| {
                ApiError::bad_request("invalid_order", format!("pool {pool} has no accelerators to sell"))
            })?;
            if body.model.as_ref().is_some_and(|m| m != &offer.model)
                || body.region.as_ref().is_some_and(|r| r != &offer.region)
            {
                return Err(ApiError::bad_request("invalid_order", "a pool sells its own model in its own region"));
            }
            if body.cards > offer.cards {
                return Err(ApiError::bad_request(
                    "cards_invalid",
                    format!("pool {pool} has {} cards; it cannot sell {}", offer.cards, body.cards),
                )
                .at("cards"));
            }
            (Side::Sell, offer.model, offer.region)
        }
        (_, side) => {
            return Err(ApiError::bad_request(
                "invalid_order",
                format!("side {side:?}: tenants send \"buy\", pools' providers \"sell\""),
            ));
        }
    };
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
    };
    let now = now_ms();
    let (order, new) = state
        .ledger
        .write(&state.store, &caller.actor(), move |books| books.place_order(new, now))
        .await?
        .map_err(|e| order_field(e.into()))?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(order)))
}

/// The body field an order's refusal is about (forms show the message next to it).
fn order_field(error: ApiError) -> ApiError {
    let field = match error.code {
        "window_empty" | "window_too_long" => "end_s",
        "window_past" => "start_s",
        "cards_invalid" => "cards",
        "price_invalid" => "limit_fen_per_card_hour",
        _ => return error,
    };
    error.at(field)
}

/// `POST /api/v1/market/orders/{id}/cancel` (the order's owner).
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<BookOrder>, ApiError> {
    let owner = owner(&caller)?;
    let order =
        state.ledger.write(&state.store, &caller.actor(), move |books| books.cancel_order(&owner, id)).await??;
    Ok(Json(order))
}

/// One price level of the book.
#[derive(Debug, Serialize)]
pub struct Level {
    /// Limit, fen per card-hour.
    pub price_fen_per_card_hour: i64,
    /// Cards at that price.
    pub cards: u64,
    /// Orders.
    pub orders: u64,
}

/// One product's depth.
#[derive(Debug, Serialize)]
pub struct Depth {
    /// Model.
    pub model: String,
    /// Region.
    pub region: String,
    /// Window.
    pub start_s: u64,
    /// Window end.
    pub end_s: u64,
    /// Bids, best (highest) first.
    pub buys: Vec<Level>,
    /// Asks, best (lowest) first.
    pub sells: Vec<Level>,
}

/// `GET /api/v1/market/book`.
#[derive(Debug, Serialize)]
pub struct BookView {
    /// Depth by product (anonymous).
    pub depth: Vec<Depth>,
    /// The caller's own resting orders.
    pub mine: Vec<BookOrder>,
}

/// `GET /api/v1/market/book` (anyone signed in): depth by product, and the caller's orders.
pub async fn book(State(state): State<AppState>, caller: Caller) -> Result<Json<BookView>, ApiError> {
    let me = owner(&caller).ok();
    let everything = caller.sees_everything();
    let view = state
        .ledger
        .read(&state.store, |books| {
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
        .await?;
    Ok(Json(view))
}

/// Runs an auction now and records it.
pub async fn auction_now(state: &AppState, actor: &str) -> Result<AuctionRecord, ApiError> {
    let now = now_ms();
    state.ledger.write(&state.store, actor, move |books| books.run_auction(now)).await
}

/// `POST /api/v1/market/auctions` (operator): runs an auction now.
pub async fn run_auction(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<AuctionRecord>), ApiError> {
    caller.require(&[Role::Operator])?;
    Ok((StatusCode::CREATED, Json(auction_now(&state, &caller.actor()).await?)))
}

/// `GET /api/v1/market/auctions` (anyone signed in): the last 100 auctions' prices and volumes.
pub async fn auctions(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let list = state
        .ledger
        .read(&state.store, |books| {
            books
                .auctions()
                .iter()
                .rev()
                .take(100)
                .map(|a| {
                    serde_json::json!({
                        "at_ms": a.at_ms,
                        "prices": a.prices,
                        "contracts": a.contracts.len(),
                        "cards": a.contracts.iter().map(|c| u64::from(c.cards)).sum::<u64>(),
                    })
                })
                .collect()
        })
        .await?;
    Ok(Json(list))
}

/// `GET /api/v1/market/contracts`: a tenant's own, a provider's pool's, or all (operators,
/// auditors).
pub async fn contracts(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<MarketContract>>, ApiError> {
    let me = owner(&caller).ok();
    let everything = caller.sees_everything();
    let list = state
        .ledger
        .read(&state.store, |books| {
            books
                .contracts()
                .iter()
                .filter(|c| {
                    everything
                        || match &me {
                            Some(Owner::Tenant(t)) => c.tenant == *t,
                            Some(Owner::Pool(p)) => &c.pool == p,
                            None => false,
                        }
                })
                .cloned()
                .collect()
        })
        .await?;
    Ok(Json(list))
}

/// The leader's auction task: one auction every `auction_interval` while this server leads.
pub async fn run_auctions(state: AppState) {
    loop {
        tokio::time::sleep(state.config.auction_interval).await;
        if state.leader.load(std::sync::atomic::Ordering::Relaxed) {
            match auction_now(&state, "auctioneer").await {
                Ok(a) => tracing::info!(contracts = a.contracts.len(), "call auction"),
                Err(e) => tracing::warn!(error = %e.message, "the auction failed; the next one retries"),
            }
        }
    }
}

/// `POST /api/v1/quotes`: what a job would cost where.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteBody {
    /// Cards per task.
    pub accelerators: u32,
    /// Tasks (a gang).
    #[serde(default = "one")]
    pub tasks: u32,
    /// Expected run time.
    pub duration_s: u64,
    /// Only this model.
    #[serde(default)]
    pub model: Option<String>,
}

fn one() -> u32 {
    1
}

/// One option of a quote.
#[derive(Debug, Serialize)]
pub struct QuoteOption {
    /// Pool.
    pub pool: String,
    /// Model.
    pub model: String,
    /// Region.
    pub region: String,
    /// Posted price.
    pub list_fen_per_card_hour: u64,
    /// Cost at the posted price.
    pub cost_fen: u64,
    /// Spot price now.
    pub spot_fen_per_card_hour: u64,
    /// Cost at the spot price.
    pub spot_cost_fen: u64,
    /// `now` when the pool has the cards free, `queued` when it is busy, `unknown` on a standby.
    pub expected_start: &'static str,
}

/// `POST /api/v1/quotes` (anyone signed in): the options across pools, cheapest first.
pub async fn quote(
    State(state): State<AppState>,
    _caller: Caller,
    Body(body): Body<QuoteBody>,
) -> Result<Json<Vec<QuoteOption>>, ApiError> {
    let cards = body.accelerators.saturating_mul(body.tasks);
    if cards == 0 || cards > suanwang_market::CARDS_MAX || body.duration_s == 0 || body.duration_s > 366 * 86_400 {
        return Err(ApiError::bad_request(
            "invalid_quote",
            "a quote needs 1 or more cards (accelerators × tasks) and a duration of 1 s to a year",
        ));
    }
    let view = state.metrics.view.lock().ok().and_then(|v| v.clone());
    let card_ms = u64::from(cards) * body.duration_s * 1000;
    let mut options: Vec<QuoteOption> = pool_prices(&state)
        .into_iter()
        .filter(|p| p.cards >= cards && body.model.as_ref().is_none_or(|m| m == &p.model))
        .map(|p| {
            let free = view.as_ref().and_then(|v| {
                let id = state.federation.pools().find(|(_, q)| q.name == p.pool)?.0;
                v.pools.get(id.index()).map(|u| u.gpu_milli_capacity.saturating_sub(u.gpu_milli_allocated))
            });
            QuoteOption {
                cost_fen: cost_fen(card_ms, p.list_fen_per_card_hour),
                spot_cost_fen: cost_fen(card_ms, p.spot_fen_per_card_hour),
                expected_start: match free {
                    Some(f) if f >= u64::from(cards) * 1000 => "now",
                    Some(_) => "queued",
                    None => "unknown",
                },
                pool: p.pool,
                model: p.model,
                region: p.region,
                list_fen_per_card_hour: p.list_fen_per_card_hour,
                spot_fen_per_card_hour: p.spot_fen_per_card_hour,
            }
        })
        .collect();
    options.sort_by(|a, b| a.cost_fen.cmp(&b.cost_fen).then_with(|| a.pool.cmp(&b.pool)));
    Ok(Json(options))
}
