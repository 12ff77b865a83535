//! The CLI as a client of the money API: programmes, vouchers, invoices, balances, payouts, the
//! market and quotes.
//! Amounts go in as fen and come out in yuan with two decimals (`--format json` keeps the API's
//! fen).

use serde_json::{Value, json};

use crate::args::{InvoiceCommand, MarketCommand, MoneyCommand, ProgramCommand, QuoteArgs, VoucherCommand};
use crate::client_cmd::{Client, encode, text};
use crate::error::CliError;
use crate::output::Table;

/// Fen as yuan, two decimals.
fn yuan(value: &Value) -> String {
    match value.as_i64().or_else(|| value.as_u64().map(|v| v as i64)) {
        Some(fen) => {
            let sign = if fen < 0 { "-" } else { "" };
            format!("{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100)
        }
        None => text(value),
    }
}

fn program_table(programs: &[Value]) -> String {
    let mut t = Table::new(&["id", "name", "year", "budget ¥", "paid ¥", "reserved ¥", "left ¥", "claims"]);
    for p in programs {
        let r = &p["report"];
        t.row(vec![
            text(&p["program"]["id"]),
            text(&p["program"]["name"]),
            text(&p["program"]["fiscal_year"]),
            yuan(&p["program"]["budget_fen"]),
            yuan(&r["paid_fen"]),
            yuan(&r["reserved_fen"]),
            yuan(&r["available_fen"]),
            text(&r["claims"]),
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
            let body = serde_json::to_value(&program).map_err(|e| CliError::internal("serialize", e.to_string()))?;
            let view = client.call("POST", "/api/v1/programs", Some(&body), &[])?;
            client.show(&view, |v| {
                format!(
                    "programme {} loaded: budget ¥{}, {}\n",
                    text(&v["program"]["id"]),
                    yuan(&v["program"]["budget_fen"]),
                    text(&v["program"]["issuer"])
                )
            })
        }
        ProgramCommand::Ls(args) => {
            let client = Client::new(&args.client)?;
            let list = client.call("GET", "/api/v1/programs", None, &[])?;
            client.show(&list, |l| program_table(l.as_array().map_or(&[], Vec::as_slice)))
        }
        ProgramCommand::Show(args) => {
            let client = Client::new(&args.client)?;
            let view = client.call("GET", &format!("/api/v1/programs/{}", encode(&args.id)), None, &[])?;
            client.show(&view, |v| {
                let mut out = program_table(std::slice::from_ref(v));
                let mut firms = Table::new(&["tenant", "cap ¥", "reserved ¥", "redeemed ¥"]);
                for f in v["report"]["firms"].as_array().into_iter().flatten() {
                    firms.row(vec![
                        text(&f["tenant"]),
                        yuan(&f["cap_fen"]),
                        yuan(&f["reserved_fen"]),
                        yuan(&f["redeemed_fen"]),
                    ]);
                }
                if v["report"]["firms"].as_array().is_some_and(|f| !f.is_empty()) {
                    out += "\n";
                    out += &firms.render();
                }
                out
            })
        }
        ProgramCommand::Expire(args) => {
            let client = Client::new(&args.client)?;
            let view = client.call("POST", &format!("/api/v1/programs/{}/expire", encode(&args.id)), None, &[])?;
            client.show(&view, |v| format!("programme {} ended its year\n", text(&v["program"]["id"])))
        }
    }
}

fn application_table(list: &Value) -> String {
    let mut t = Table::new(&["id", "programme", "tenant", "kind", "city", "state", "reason"]);
    for a in list.as_array().into_iter().flatten() {
        t.row(vec![
            text(&a["id"]),
            text(&a["program"]),
            text(&a["tenant"]["id"]),
            text(&a["tenant"]["kind"]),
            text(&a["tenant"]["registration_city"]),
            text(&a["state"]),
            text(&a["reason"]),
        ]);
    }
    t.render()
}

fn claim_table(list: &[Value]) -> String {
    let mut t = Table::new(&["id", "programme", "tenant", "contract", "face ¥", "redeemed ¥", "state"]);
    for c in list {
        t.row(vec![
            text(&c["id"]),
            text(&c["program"]),
            text(&c["tenant"]),
            text(&c["contract"]),
            yuan(&c["face_fen"]),
            yuan(&c["redeemed_fen"]),
            text(&c["state"]),
        ]);
    }
    t.render()
}

fn filter(program: Option<&String>) -> String {
    program.map_or_else(String::new, |p| format!("?program={}", encode(p)))
}

/// `suanwang voucher …`.
pub fn voucher(command: &VoucherCommand) -> Result<(), CliError> {
    match command {
        VoucherCommand::Apply(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({"affiliations": args.affiliations});
            let a = client.call(
                "POST",
                &format!("/api/v1/programs/{}/applications", encode(&args.program)),
                Some(&body),
                &[],
            )?;
            client.show(&a, |a| {
                format!("application {} to {}: {}\n", text(&a["id"]), text(&a["program"]), text(&a["state"]))
            })
        }
        VoucherCommand::Applications(args) => {
            let client = Client::new(&args.client)?;
            let list =
                client.call("GET", &format!("/api/v1/applications{}", filter(args.program.as_ref())), None, &[])?;
            client.show(&list, application_table)
        }
        VoucherCommand::Decide(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({"approve": args.approve, "reason": args.reason});
            let a = client.call("POST", &format!("/api/v1/applications/{}/decision", args.id), Some(&body), &[])?;
            client.show(&a, |a| format!("application {}: {}\n", text(&a["id"]), text(&a["state"])))
        }
        VoucherCommand::Claim(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({"contract": args.contract, "amount_fen": args.amount_fen});
            let c =
                client.call("POST", &format!("/api/v1/programs/{}/claims", encode(&args.program)), Some(&body), &[])?;
            client.show(&c, |c| claim_table(std::slice::from_ref(c)))
        }
        VoucherCommand::Claims(args) => {
            let client = Client::new(&args.client)?;
            let list = client.call("GET", &format!("/api/v1/claims{}", filter(args.program.as_ref())), None, &[])?;
            client.show(&list, |l| claim_table(l.as_array().map_or(&[], Vec::as_slice)))
        }
        VoucherCommand::Redeem(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({"period": args.period, "job": args.job, "pool": args.pool});
            let r = client.call("POST", &format!("/api/v1/claims/{}/redemptions", args.claim), Some(&body), &[])?;
            client.show(&r, |r| {
                format!(
                    "claim {} paid ¥{}; ¥{} left to redeem\n",
                    text(&r["claim"]["id"]),
                    yuan(&r["subsidy_fen"]),
                    yuan(&json!(
                        r["claim"]["face_fen"].as_u64().unwrap_or(0) - r["claim"]["redeemed_fen"].as_u64().unwrap_or(0)
                    ))
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
            let query = args.tenant.map_or_else(String::new, |t| format!("?tenant={t}"));
            let list = client.call("GET", &format!("/api/v1/invoices{query}"), None, &[])?;
            client.show(&list, |l| {
                let mut t = Table::new(&["tenant", "period", "amount ¥", "subsidy ¥", "tenant pays ¥"]);
                for i in l.as_array().into_iter().flatten() {
                    t.row(vec![
                        text(&i["tenant"]),
                        text(&i["period"]),
                        yuan(&i["amount_fen"]),
                        yuan(&i["subsidy_fen"]),
                        yuan(&i["tenant_share_fen"]),
                    ]);
                }
                t.render()
            })
        }
        InvoiceCommand::Show(args) => {
            let client = Client::new(&args.client)?;
            let inv =
                client.call("GET", &format!("/api/v1/invoices/{}/{}", args.tenant, encode(&args.period)), None, &[])?;
            client.show(&inv, |inv| {
                let mut t =
                    Table::new(&["job", "pool", "contract", "card-hours", "amount ¥", "subsidy ¥", "tenant pays ¥"]);
                for l in inv["lines"].as_array().into_iter().flatten() {
                    t.row(vec![
                        text(&l["job"]),
                        text(&l["pool"]),
                        text(&l["contract"]),
                        format!("{:.2}", l["card_hours"].as_f64().unwrap_or(0.0)),
                        yuan(&l["amount_fen"]),
                        yuan(&l["subsidy_fen"]),
                        yuan(&l["tenant_share_fen"]),
                    ]);
                }
                format!(
                    "invoice {} {}: ¥{}, subsidy ¥{}, tenant pays ¥{}\n\n{}",
                    text(&inv["tenant"]),
                    text(&inv["period"]),
                    yuan(&inv["amount_fen"]),
                    yuan(&inv["subsidy_fen"]),
                    yuan(&inv["tenant_share_fen"]),
                    t.render()
                )
            })
        }
    }
}

/// `suanwang money …`.
pub fn money(command: &MoneyCommand) -> Result<(), CliError> {
    let balance = |b: &Value| {
        format!(
            "tenant {}: balance ¥{} (credited ¥{}, charged ¥{})\n",
            text(&b["tenant"]),
            yuan(&b["balance_fen"]),
            yuan(&b["credited_fen"]),
            yuan(&b["charged_fen"])
        )
    };
    let earnings = |e: &Value| {
        format!(
            "pool {}: earned ¥{}, paid out ¥{}, owed ¥{} (platform fee {} bps)\n",
            text(&e["pool"]),
            yuan(&e["earned_fen"]),
            yuan(&e["paid_out_fen"]),
            yuan(&e["owed_fen"]),
            text(&e["platform_fee_bps"])
        )
    };
    match command {
        MoneyCommand::Balance(args) => {
            let client = Client::new(&args.client)?;
            let b = client.call("GET", &format!("/api/v1/tenants/{}/balance", args.tenant), None, &[])?;
            client.show(&b, balance)
        }
        MoneyCommand::Pay(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({"amount_fen": args.amount_fen, "key": args.key});
            let b = client.call("POST", &format!("/api/v1/tenants/{}/payments", args.tenant), Some(&body), &[])?;
            client.show(&b, balance)
        }
        MoneyCommand::Earnings(args) => {
            let client = Client::new(&args.client)?;
            let e = client.call("GET", &format!("/api/v1/pools/{}/earnings", encode(&args.name)), None, &[])?;
            client.show(&e, earnings)
        }
        MoneyCommand::Payout(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({"amount_fen": args.amount_fen, "key": args.key});
            let e = client.call("POST", &format!("/api/v1/pools/{}/payouts", encode(&args.pool)), Some(&body), &[])?;
            client.show(&e, earnings)
        }
        MoneyCommand::TrialBalance(args) => {
            let client = Client::new(&args.client)?;
            let t = client.call("GET", "/api/v1/ledger/trial-balance", None, &[])?;
            client.show(&t, |t| {
                let ok = t["posted"]["debits_fen"] == t["posted"]["credits_fen"]
                    && t["pending"]["debits_fen"] == t["pending"]["credits_fen"];
                format!(
                    "posted: debits ¥{} credits ¥{}\npending: debits ¥{} credits ¥{}\n{}\n",
                    yuan(&t["posted"]["debits_fen"]),
                    yuan(&t["posted"]["credits_fen"]),
                    yuan(&t["pending"]["debits_fen"]),
                    yuan(&t["pending"]["credits_fen"]),
                    if ok { "balanced" } else { "NOT BALANCED" }
                )
            })
        }
    }
}

fn order_table(orders: &[Value]) -> String {
    let mut t =
        Table::new(&["id", "side", "model", "region", "window (s)", "cards", "limit ¥/card-h", "aon", "standing"]);
    for o in orders {
        t.row(vec![
            text(&o["id"]),
            text(&o["side"]),
            text(&o["model"]),
            text(&o["region"]),
            format!("{}–{}", text(&o["start_s"]), text(&o["end_s"])),
            text(&o["cards"]),
            yuan(&o["limit_fen_per_card_hour"]),
            text(&o["all_or_none"]),
            text(&o["standing"]),
        ]);
    }
    t.render()
}

fn contract_table(contracts: &[Value]) -> String {
    let mut t = Table::new(&["id", "tenant", "pool", "model", "window (s)", "cards", "price ¥/card-h"]);
    for c in contracts {
        t.row(vec![
            format!("contract:{}", text(&c["id"])),
            text(&c["tenant"]),
            text(&c["pool"]),
            text(&c["model"]),
            format!("{}–{}", text(&c["start_s"]), text(&c["end_s"])),
            text(&c["cards"]),
            yuan(&c["price_fen_per_card_hour"]),
        ]);
    }
    t.render()
}

/// `suanwang market …`.
pub fn market(command: &MarketCommand) -> Result<(), CliError> {
    match command {
        MarketCommand::Prices(args) => {
            let client = Client::new(&args.client)?;
            let prices = client.call("GET", "/api/v1/market/prices", None, &[])?;
            client.show(&prices, |p| {
                let mut t =
                    Table::new(&["pool", "model", "region", "cards", "list ¥/card-h", "spot ¥/card-h", "use %"]);
                for q in p["pools"].as_array().into_iter().flatten() {
                    t.row(vec![
                        text(&q["pool"]),
                        text(&q["model"]),
                        text(&q["region"]),
                        text(&q["cards"]),
                        yuan(&q["list_fen_per_card_hour"]),
                        yuan(&q["spot_fen_per_card_hour"]),
                        text(&q["utilisation_pct"]),
                    ]);
                }
                format!("{}\nauctions every {} s\n", t.render(), text(&p["auction_interval_s"]))
            })
        }
        MarketCommand::Order(args) => {
            let client = Client::new(&args.client)?;
            let body = json!({
                "side": args.side, "model": args.model, "region": args.region,
                "start_s": args.start_s, "end_s": args.end_s, "cards": args.cards,
                "limit_fen_per_card_hour": args.limit_fen, "all_or_none": args.all_or_none, "standing": !args.once,
            });
            let order = client.call("POST", "/api/v1/market/orders", Some(&body), &[("Idempotency-Key", &args.key)])?;
            client.show(&order, |o| order_table(std::slice::from_ref(o)))
        }
        MarketCommand::Cancel(args) => {
            let client = Client::new(&args.client)?;
            let order = client.call("POST", &format!("/api/v1/market/orders/{}/cancel", args.id), None, &[])?;
            client.show(&order, |o| format!("order {} cancelled\n", text(&o["id"])))
        }
        MarketCommand::Book(args) => {
            let client = Client::new(&args.client)?;
            let book = client.call("GET", "/api/v1/market/book", None, &[])?;
            client.show(&book, |b| {
                let mut t = Table::new(&["model", "region", "window (s)", "side", "price ¥/card-h", "cards", "orders"]);
                for d in b["depth"].as_array().into_iter().flatten() {
                    for (side, levels) in [("buy", &d["buys"]), ("sell", &d["sells"])] {
                        for l in levels.as_array().into_iter().flatten() {
                            t.row(vec![
                                text(&d["model"]),
                                text(&d["region"]),
                                format!("{}–{}", text(&d["start_s"]), text(&d["end_s"])),
                                side.to_owned(),
                                yuan(&l["price_fen_per_card_hour"]),
                                text(&l["cards"]),
                                text(&l["orders"]),
                            ]);
                        }
                    }
                }
                let mine = b["mine"].as_array().map_or(&[][..], Vec::as_slice);
                format!("{}\nyour orders:\n{}", t.render(), order_table(mine))
            })
        }
        MarketCommand::Auction(args) => {
            let client = Client::new(&args.client)?;
            let auction = client.call("POST", "/api/v1/market/auctions", Some(&json!({})), &[])?;
            client.show(&auction, |a| contract_table(a["contracts"].as_array().map_or(&[], Vec::as_slice)))
        }
        MarketCommand::Contracts(args) => {
            let client = Client::new(&args.client)?;
            let list = client.call("GET", "/api/v1/market/contracts", None, &[])?;
            client.show(&list, |l| contract_table(l.as_array().map_or(&[], Vec::as_slice)))
        }
    }
}

/// `suanwang quote`.
pub fn quote(args: &QuoteArgs) -> Result<(), CliError> {
    let client = Client::new(&args.client)?;
    let body = json!({"accelerators": args.accelerators, "tasks": args.tasks, "duration_s": args.duration_s, "model": args.model});
    let options = client.call("POST", "/api/v1/quotes", Some(&body), &[])?;
    client.show(&options, |o| {
        let mut t = Table::new(&[
            "pool",
            "model",
            "region",
            "list ¥/card-h",
            "cost ¥",
            "spot ¥/card-h",
            "spot cost ¥",
            "starts",
        ]);
        for q in o.as_array().into_iter().flatten() {
            t.row(vec![
                text(&q["pool"]),
                text(&q["model"]),
                text(&q["region"]),
                yuan(&q["list_fen_per_card_hour"]),
                yuan(&q["cost_fen"]),
                yuan(&q["spot_fen_per_card_hour"]),
                yuan(&q["spot_cost_fen"]),
                text(&q["expected_start"]),
            ]);
        }
        t.render()
    })
}
