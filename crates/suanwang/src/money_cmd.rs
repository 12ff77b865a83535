//! The CLI as a client of the money API: programmes, vouchers, invoices, balances, payouts, the
//! market and quotes, through the typed client. Amounts go in as fen and come out in yuan with two
//! decimals (`--format json` keeps the API's fen).

use suanwang_api::market::{OrderBody, QuoteRequest};
use suanwang_api::money::{DecisionBody, Movement, NewApplication, NewClaim, NewRedemption, ProgramView};
use suanwang_billing::books::{Application, Claim};
use suanwang_billing::market::{BookOrder, MarketContract};
use suanwang_formats::trace::ModelChoice;

use crate::args::{InvoiceCommand, MarketCommand, MoneyCommand, ProgramCommand, QuoteArgs, VoucherCommand};
use crate::client_cmd::{Client, or_dash};
use crate::error::CliError;
use crate::output::Table;

/// Fen as yuan, two decimals.
fn yuan(fen: impl TryInto<i128>) -> String {
    let fen: i128 = fen.try_into().unwrap_or(i128::MAX);
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100)
}

fn program_table(programs: &[ProgramView]) -> String {
    let mut t = Table::new(&["id", "name", "year", "budget ¥", "paid ¥", "reserved ¥", "left ¥", "claims"]);
    for p in programs {
        let r = p.report.as_ref();
        t.row(vec![
            p.program.id.clone(),
            p.program.name.clone(),
            p.program.fiscal_year.to_string(),
            yuan(p.program.budget_fen),
            or_dash(r.map(|r| yuan(r.paid_fen))),
            or_dash(r.map(|r| yuan(r.reserved_fen))),
            or_dash(r.map(|r| yuan(r.available_fen))),
            or_dash(r.map(|r| r.claims)),
        ]);
    }
    t.render()
}

/// `suanwang program …`.
pub fn program(command: &ProgramCommand) -> Result<(), CliError> {
    match command {
        ProgramCommand::Load(args) => {
            let client = Client::new(&args.client)?;
            let text_in = crate::input::read_text(&args.file)?;
            let program = suanwang_billing::Program::from_toml(&text_in)
                .map_err(|e| CliError::input("invalid_program", format!("{}: {e}", args.file.display())))?;
            let view = client.api.load_program(&program)?;
            client.show(&view, |v| {
                format!(
                    "programme {} loaded: budget ¥{}, {}\n",
                    v.program.id,
                    yuan(v.program.budget_fen),
                    v.program.issuer
                )
            })
        }
        ProgramCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let list = client.api.programs()?;
            client.show(&list, |l| program_table(l))
        }
        ProgramCommand::Show(args) => {
            let client = Client::new(&args.client)?;
            let view = client.api.program(&args.id)?;
            client.show(&view, |v| {
                let mut out = program_table(std::slice::from_ref(v));
                let firms = v.report.as_ref().map_or(&[][..], |r| r.firms.as_slice());
                if !firms.is_empty() {
                    let mut t = Table::new(&["tenant", "cap ¥", "reserved ¥", "redeemed ¥"]);
                    for f in firms {
                        t.row(vec![
                            f.tenant.to_string(),
                            or_dash(f.cap_fen.map(yuan)),
                            yuan(f.reserved_fen),
                            yuan(f.redeemed_fen),
                        ]);
                    }
                    out += "\n";
                    out += &t.render();
                }
                out
            })
        }
        ProgramCommand::Expire(args) => {
            let client = Client::new(&args.client)?;
            let view = client.api.expire_program(&args.id)?;
            client.show(&view, |v| format!("programme {} ended its year\n", v.program.id))
        }
    }
}

/// An enum as the API writes it (`"approved"`, `"open"`).
fn wire(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn application_table(list: &[Application]) -> String {
    let mut t = Table::new(&["id", "programme", "tenant", "kind", "city", "state", "reason"]);
    for a in list {
        t.row(vec![
            a.id.to_string(),
            a.program.clone(),
            a.tenant.id.to_string(),
            a.tenant.kind.clone(),
            a.tenant.registration_city.clone(),
            wire(a.state),
            a.reason.clone(),
        ]);
    }
    t.render()
}

fn claim_table(list: &[Claim]) -> String {
    let mut t = Table::new(&["id", "programme", "tenant", "contract", "face ¥", "redeemed ¥", "state"]);
    for c in list {
        t.row(vec![
            c.id.to_string(),
            c.program.clone(),
            c.tenant.to_string(),
            c.contract.clone(),
            yuan(c.face_fen),
            yuan(c.redeemed_fen),
            wire(c.state),
        ]);
    }
    t.render()
}

/// `suanwang voucher …`.
pub fn voucher(command: &VoucherCommand) -> Result<(), CliError> {
    match command {
        VoucherCommand::Apply(args) => {
            let client = Client::new(&args.client)?;
            let body = NewApplication { affiliations: args.affiliations.clone() };
            let a = client.api.apply(&args.program, &body)?;
            client.show(&a, |a| format!("application {} to {}: {}\n", a.id, a.program, wire(a.state)))
        }
        VoucherCommand::Applications(args) => {
            let client = Client::new(&args.client)?;
            let list = client.api.applications(args.program.as_deref())?;
            client.show(&list, |l| application_table(l))
        }
        VoucherCommand::Decide(args) => {
            let client = Client::new(&args.client)?;
            let body = DecisionBody { approve: args.approve, reason: args.reason.clone() };
            let a = client.api.decide(args.id, &body)?;
            client.show(&a, |a| format!("application {}: {}\n", a.id, wire(a.state)))
        }
        VoucherCommand::Claim(args) => {
            let client = Client::new(&args.client)?;
            let body = NewClaim { contract: args.contract.clone(), amount_fen: args.amount_fen };
            let c = client.api.claim(&args.program, &body)?;
            client.show(&c, |c| claim_table(std::slice::from_ref(c)))
        }
        VoucherCommand::Claims(args) => {
            let client = Client::new(&args.client)?;
            let list = client.api.claims(args.program.as_deref())?;
            client.show(&list, |l| claim_table(l))
        }
        VoucherCommand::Redeem(args) => {
            let client = Client::new(&args.client)?;
            let body = NewRedemption { period: args.period.clone(), job: args.job, pool: args.pool.clone() };
            let r = client.api.redeem(args.claim, &body)?;
            client.show(&r, |r| {
                format!(
                    "claim {} paid ¥{}; ¥{} left to redeem\n",
                    r.claim.id,
                    yuan(r.subsidy_fen),
                    yuan(r.claim.face_fen.saturating_sub(r.claim.redeemed_fen))
                )
            })
        }
    }
}

/// `suanwang invoice …`.
pub fn invoice(command: &InvoiceCommand) -> Result<(), CliError> {
    match command {
        InvoiceCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let list = client.api.invoices(args.tenant)?;
            client.show(&list, |l| {
                let mut t = Table::new(&["tenant", "period", "amount ¥", "subsidy ¥", "tenant pays ¥"]);
                for i in l {
                    t.row(vec![
                        i.tenant.to_string(),
                        i.period.clone(),
                        yuan(i.amount_fen),
                        yuan(i.subsidy_fen),
                        yuan(i.tenant_share_fen),
                    ]);
                }
                t.render()
            })
        }
        InvoiceCommand::Show(args) => {
            let client = Client::new(&args.client)?;
            let inv = client.api.invoice(args.tenant, &args.period)?;
            client.show(&inv, |inv| {
                let mut t =
                    Table::new(&["job", "pool", "contract", "card-hours", "amount ¥", "subsidy ¥", "tenant pays ¥"]);
                for l in &inv.lines {
                    t.row(vec![
                        l.job.to_string(),
                        l.pool.clone(),
                        l.contract.clone(),
                        format!("{:.2}", l.card_hours),
                        yuan(l.amount_fen),
                        yuan(l.subsidy_fen),
                        yuan(l.tenant_share_fen),
                    ]);
                }
                let s = &inv.summary;
                format!(
                    "invoice {} {}: ¥{}, subsidy ¥{}, tenant pays ¥{}\n\n{}",
                    s.tenant,
                    s.period,
                    yuan(s.amount_fen),
                    yuan(s.subsidy_fen),
                    yuan(s.tenant_share_fen),
                    t.render()
                )
            })
        }
    }
}

/// `suanwang money …`.
pub fn money(command: &MoneyCommand) -> Result<(), CliError> {
    let balance = |b: &suanwang_api::money::BalanceView| {
        format!(
            "tenant {}: balance ¥{} (credited ¥{}, charged ¥{})\n",
            b.tenant,
            yuan(b.balance_fen),
            yuan(b.credited_fen),
            yuan(b.charged_fen)
        )
    };
    let earnings = |e: &suanwang_api::money::EarningsView| {
        format!(
            "pool {}: earned ¥{}, paid out ¥{}, owed ¥{} (platform fee {} bps)\n",
            e.pool,
            yuan(e.earned_fen),
            yuan(e.paid_out_fen),
            yuan(e.owed_fen),
            e.platform_fee_bps
        )
    };
    match command {
        MoneyCommand::Balance(args) => {
            let client = Client::new(&args.client)?;
            let b = client.api.balance(args.tenant)?;
            client.show(&b, balance)
        }
        MoneyCommand::Pay(args) => {
            let client = Client::new(&args.client)?;
            let body = Movement { amount_fen: args.amount_fen, key: args.key.clone() };
            let b = client.api.pay(args.tenant, &body)?;
            client.show(&b, balance)
        }
        MoneyCommand::Earnings(args) => {
            let client = Client::new(&args.client)?;
            let e = client.api.earnings(&args.name)?;
            client.show(&e, earnings)
        }
        MoneyCommand::Payout(args) => {
            let client = Client::new(&args.client)?;
            let body = Movement { amount_fen: args.amount_fen, key: args.key.clone() };
            let e = client.api.payout(&args.pool, &body)?;
            client.show(&e, earnings)
        }
        MoneyCommand::TrialBalance(args) => {
            let client = Client::new(&args.client)?;
            let t = client.api.trial_balance()?;
            client.show(&t, |t| {
                let ok = t.posted.debits_fen == t.posted.credits_fen && t.pending.debits_fen == t.pending.credits_fen;
                format!(
                    "posted: debits ¥{} credits ¥{}\npending: debits ¥{} credits ¥{}\n{}\n",
                    yuan(t.posted.debits_fen),
                    yuan(t.posted.credits_fen),
                    yuan(t.pending.debits_fen),
                    yuan(t.pending.credits_fen),
                    if ok { "balanced" } else { "NOT BALANCED" }
                )
            })
        }
    }
}

fn order_table(orders: &[BookOrder]) -> String {
    let mut t =
        Table::new(&["id", "side", "model", "region", "window (s)", "cards", "limit ¥/card-h", "aon", "standing"]);
    for o in orders {
        t.row(vec![
            o.id.to_string(),
            o.side.clone(),
            o.model.clone(),
            o.region.clone(),
            format!("{}–{}", o.start_s, o.end_s),
            o.cards.to_string(),
            yuan(o.limit_fen_per_card_hour),
            o.all_or_none.to_string(),
            o.standing.to_string(),
        ]);
    }
    t.render()
}

fn contract_table(contracts: &[MarketContract]) -> String {
    let mut t = Table::new(&["id", "tenant", "pool", "model", "window (s)", "cards", "price ¥/card-h"]);
    for c in contracts {
        t.row(vec![
            format!("contract:{}", c.id),
            c.tenant.to_string(),
            c.pool.clone(),
            c.model.clone(),
            format!("{}–{}", c.start_s, c.end_s),
            c.cards.to_string(),
            yuan(c.price_fen_per_card_hour),
        ]);
    }
    t.render()
}

/// `suanwang market …`.
pub fn market(command: &MarketCommand) -> Result<(), CliError> {
    match command {
        MarketCommand::Prices(args) => {
            let client = Client::new(&args.client)?;
            let prices = client.api.prices()?;
            client.show(&prices, |p| {
                let mut t =
                    Table::new(&["pool", "model", "region", "cards", "list ¥/card-h", "spot ¥/card-h", "use %"]);
                for q in &p.pools {
                    t.row(vec![
                        q.pool.clone(),
                        q.model.clone(),
                        q.region.clone(),
                        q.cards.to_string(),
                        yuan(q.list_fen_per_card_hour),
                        yuan(q.spot_fen_per_card_hour),
                        or_dash(q.utilisation_pct),
                    ]);
                }
                format!("{}\nauctions every {} s\n", t.render(), p.auction_interval_s)
            })
        }
        MarketCommand::Order(args) => {
            let client = Client::new(&args.client)?;
            let body = OrderBody {
                side: args.side.clone(),
                model: args.model.clone(),
                region: args.region.clone(),
                start_s: args.start_s,
                end_s: args.end_s,
                cards: args.cards,
                limit_fen_per_card_hour: args.limit_fen,
                all_or_none: args.all_or_none,
                standing: !args.once,
            };
            let order = client.api.place_order(&body, &args.key)?;
            client.show(&order, |o| order_table(std::slice::from_ref(o)))
        }
        MarketCommand::Cancel(args) => {
            let client = Client::new(&args.client)?;
            let order = client.api.cancel_order(args.id)?;
            client.show(&order, |o| format!("order {} cancelled\n", o.id))
        }
        MarketCommand::Book(args) => {
            let client = Client::new(&args.client)?;
            let book = client.api.book()?;
            client.show(&book, |b| {
                let mut t = Table::new(&["model", "region", "window (s)", "side", "price ¥/card-h", "cards", "orders"]);
                for d in &b.depth {
                    for (side, levels) in [("buy", &d.buys), ("sell", &d.sells)] {
                        for l in levels {
                            t.row(vec![
                                d.model.clone(),
                                d.region.clone(),
                                format!("{}–{}", d.start_s, d.end_s),
                                side.to_owned(),
                                yuan(l.price_fen_per_card_hour),
                                l.cards.to_string(),
                                l.orders.to_string(),
                            ]);
                        }
                    }
                }
                format!("{}\nyour orders:\n{}", t.render(), order_table(&b.mine))
            })
        }
        MarketCommand::Auction(args) => {
            let client = Client::new(&args.client)?;
            let auction = client.api.run_auction()?;
            client.show(&auction, |a| contract_table(&a.contracts))
        }
        MarketCommand::Contracts(args) => {
            let client = Client::new(&args.client)?;
            let list = client.api.contracts()?;
            client.show(&list, |l| contract_table(l))
        }
    }
}

/// `suanwang quote`.
pub fn quote(args: &QuoteArgs) -> Result<(), CliError> {
    let client = Client::new(&args.client)?;
    let body = QuoteRequest {
        accelerators: args.accelerators,
        accelerator_milli: None,
        tasks: args.tasks,
        duration_s: args.duration_s,
        model: args.model.clone(),
        accelerator_models: args
            .accelerator_models
            .iter()
            .map(|(model, speed)| match speed {
                Some(speed) => ModelChoice::WithSpeed { model: model.clone(), speed: *speed },
                None => ModelChoice::Name(model.clone()),
            })
            .collect(),
        framework: args.framework.clone(),
        cpu_milli: args.cpu_milli,
        memory_mib: args.memory_mib,
        residency_region: None,
        latency: None,
        dataset: None,
        max_price_fen_per_card_hour: None,
        pool: None,
    };
    let quote = client.api.quote(&body)?;
    client.show(&quote, |q| {
        let mut t = Table::new(&[
            "pool",
            "model",
            "region",
            "list ¥/card-h",
            "run (h)",
            "cost ¥",
            "spot ¥/card-h",
            "spot cost ¥",
            "starts",
        ]);
        for o in &q.options {
            t.row(vec![
                o.pool.clone(),
                o.model.clone(),
                o.region.clone(),
                yuan(o.list_fen_per_card_hour),
                format!("{:.2}", o.expected_run_s as f64 / 3600.0),
                yuan(o.cost_fen),
                yuan(o.spot_fen_per_card_hour),
                yuan(o.spot_cost_fen),
                o.expected_start.clone(),
            ]);
        }
        let mut out = t.render();
        if q.options.is_empty() {
            out.push_str("no pool could run it\n");
        }
        if args.explain && !q.absent.is_empty() {
            let mut absent = Table::new(&["pool", "why not"]);
            for a in &q.absent {
                absent.row(vec![a.pool.clone(), a.reason.clone()]);
            }
            out.push_str("\nleft out:\n");
            out.push_str(&absent.render());
        } else if !q.absent.is_empty() {
            out.push_str(&format!("({} pools could never run it: --explain says why)\n", q.absent.len()));
        }
        out
    })
}
