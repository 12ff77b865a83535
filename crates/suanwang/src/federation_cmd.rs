//! `suanwang federation show` and `suanwang catalog`.

use std::collections::BTreeMap;

use serde::Serialize;
use suanwang_model::catalog::Catalog;
use suanwang_model::federation::{CapacityRow, Federation, SiteId};
use suanwang_report::html::thousands;

use crate::args::{CatalogArgs, FederationShowArgs, Format};
use crate::error::CliError;
use crate::input;
use crate::output::{Table, print};

pub fn show(args: &FederationShowArgs) -> Result<(), CliError> {
    let catalog = input::catalog(args.catalog.as_deref())?;
    let source = args.file.display().to_string();
    let federation = suanwang_formats::federation::parse(&source, &input::read_text(&args.file)?, &catalog)?;
    let summary = FederationJson::new(&federation);
    let text = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&summary).map_err(|e| CliError::internal("serialize", e.to_string()))? + "\n"
        }
        Format::Table => summary.table(),
    };
    print(&text)
}

pub fn catalog(args: &CatalogArgs) -> Result<(), CliError> {
    let catalog = input::catalog(args.catalog.as_deref())?;
    let rows: Vec<AcceleratorJson> = catalog.iter().map(|(_, a)| AcceleratorJson::new(a)).collect();
    let text = match args.format {
        Format::Json => {
            serde_json::to_string_pretty(&rows).map_err(|e| CliError::internal("serialize", e.to_string()))? + "\n"
        }
        Format::Table => {
            let mut table = Table::new(&[
                "model",
                "vendor",
                "memory GiB",
                "FP16 TFLOPS",
                "BF16 TFLOPS",
                "domestic",
                "stack",
                "power W",
                "aliases",
            ]);
            for a in &rows {
                table.row(vec![
                    a.model.clone(),
                    a.vendor.clone(),
                    opt(a.memory_gib),
                    opt(a.fp16_dense_tflops),
                    opt(a.bf16_dense_tflops),
                    if a.domestic { "yes" } else { "no" }.to_owned(),
                    a.software_stack.clone(),
                    opt(a.board_power_w),
                    a.aliases.join(", "),
                ]);
            }
            table.render()
        }
    };
    print(&text)
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Rounds PFLOPS for output (they are sums of published figures, one decimal is plenty).
fn pflops(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[derive(Serialize)]
struct AcceleratorJson {
    model: String,
    aliases: Vec<String>,
    vendor: String,
    memory_gib: Option<u32>,
    fp16_dense_tflops: Option<f64>,
    bf16_dense_tflops: Option<f64>,
    domestic: bool,
    software_stack: String,
    board_power_w: Option<u32>,
    note: String,
}

impl AcceleratorJson {
    fn new(a: &suanwang_model::catalog::Accelerator) -> Self {
        AcceleratorJson {
            model: a.model.clone(),
            aliases: a.aliases.clone(),
            vendor: a.vendor.clone(),
            memory_gib: a.memory_gib,
            fp16_dense_tflops: a.fp16_dense_tflops,
            bf16_dense_tflops: a.bf16_dense_tflops,
            domestic: a.domestic,
            software_stack: a.software_stack.clone(),
            board_power_w: a.board_power_w,
            note: a.note.clone(),
        }
    }
}

/// The JSON shape of `federation show` (documented in docs/federation-format.md).
#[derive(Serialize)]
struct FederationJson {
    name: String,
    description: String,
    cards_total: u64,
    pflops_fp16_total: f64,
    nodes_total: u64,
    domestic_cards_pct: f64,
    cards_without_tflops: u64,
    pools: Vec<PoolJson>,
    sites: Vec<SiteJson>,
    accelerators: Vec<ModelCapacityJson>,
    links: Vec<LinkJson>,
    /// Lowest one-way latency between every pair of sites, in ms (`null` when unreachable).
    latency_ms: BTreeMap<String, BTreeMap<String, Option<f64>>>,
}

#[derive(Serialize)]
struct PoolJson {
    name: String,
    site: String,
    city: String,
    region: String,
    provider: String,
    backend: &'static str,
    nodes: u64,
    cards: u64,
    pflops_fp16: f64,
    accelerators: BTreeMap<String, u64>,
    card_hour_fen: BTreeMap<String, i64>,
    pue: f64,
    green_share_pct: u8,
}

#[derive(Serialize)]
struct SiteJson {
    name: String,
    city: String,
    region: String,
    pools: usize,
    nodes: u64,
    cards: u64,
    pflops_fp16: f64,
}

#[derive(Serialize)]
struct ModelCapacityJson {
    model: String,
    vendor: String,
    domestic: bool,
    software_stack: String,
    cards: u64,
    pflops_fp16: f64,
}

#[derive(Serialize)]
struct LinkJson {
    between: [String; 2],
    latency_ms: f64,
    bandwidth_gbps: u32,
    egress_fen_per_gib: i64,
}

impl FederationJson {
    fn new(federation: &Federation) -> Self {
        let catalog: &Catalog = federation.catalog();
        let capacity = federation.capacity();
        let site = |id: SiteId| federation.site(id);
        let pools = federation
            .pools()
            .map(|(id, pool)| {
                let row = &capacity.by_pool[id.index()];
                let mut accelerators = BTreeMap::new();
                for node in &pool.nodes {
                    if let Some(model) = node.accelerator {
                        *accelerators.entry(catalog.get(model).model.clone()).or_default() +=
                            u64::from(node.accelerators);
                    }
                }
                PoolJson {
                    name: pool.name.clone(),
                    site: site(pool.site).name.clone(),
                    city: site(pool.site).city.clone(),
                    region: site(pool.site).region.clone(),
                    provider: pool.provider.clone(),
                    backend: pool.backend.as_str(),
                    nodes: row.nodes,
                    cards: row.cards,
                    pflops_fp16: pflops(row.pflops_fp16),
                    accelerators,
                    card_hour_fen: pool
                        .prices
                        .card_hour_fen
                        .iter()
                        .map(|(id, fen)| (catalog.get(*id).model.clone(), *fen))
                        .collect(),
                    pue: pool.pue,
                    green_share_pct: pool.green_share_pct,
                }
            })
            .collect();
        let sites = federation
            .sites()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let row: &CapacityRow = &capacity.by_site[i];
                SiteJson {
                    name: s.name.clone(),
                    city: s.city.clone(),
                    region: s.region.clone(),
                    pools: federation.pools().filter(|(_, p)| p.site.index() == i).count(),
                    nodes: row.nodes,
                    cards: row.cards,
                    pflops_fp16: pflops(row.pflops_fp16),
                }
            })
            .collect();
        let accelerators = capacity
            .by_accelerator
            .iter()
            .map(|(id, row)| {
                let a = catalog.get(*id);
                ModelCapacityJson {
                    model: a.model.clone(),
                    vendor: a.vendor.clone(),
                    domestic: a.domestic,
                    software_stack: a.software_stack.clone(),
                    cards: row.cards,
                    pflops_fp16: pflops(row.pflops_fp16),
                }
            })
            .collect::<Vec<_>>();
        let domestic_cards: u64 =
            capacity.by_accelerator.iter().filter(|(id, _)| catalog.get(**id).domestic).map(|(_, row)| row.cards).sum();
        let links = federation
            .network()
            .links()
            .iter()
            .map(|l| LinkJson {
                between: [site(l.a).name.clone(), site(l.b).name.clone()],
                latency_ms: f64::from(l.latency_us) / 1000.0,
                bandwidth_gbps: l.bandwidth_gbps,
                egress_fen_per_gib: l.egress_fen_per_gib,
            })
            .collect();
        let latency_ms = federation
            .sites()
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let row = federation
                    .sites()
                    .iter()
                    .enumerate()
                    .map(|(j, b)| {
                        let route = federation.network().route(SiteId::from_index(i), SiteId::from_index(j));
                        (b.name.clone(), route.map(|r| f64::from(r.latency_us) / 1000.0))
                    })
                    .collect();
                (a.name.clone(), row)
            })
            .collect();
        let total = &capacity.total;
        FederationJson {
            name: federation.name.clone(),
            description: federation.description.clone(),
            cards_total: total.cards,
            pflops_fp16_total: pflops(total.pflops_fp16),
            nodes_total: total.nodes,
            domestic_cards_pct: if total.cards == 0 {
                0.0
            } else {
                pflops(domestic_cards as f64 * 100.0 / total.cards as f64)
            },
            cards_without_tflops: total.cards_without_tflops,
            pools,
            sites,
            accelerators,
            links,
            latency_ms,
        }
    }

    fn table(&self) -> String {
        let mut out = format!(
            "{} — {}\n{} pools at {} sites: {} nodes, {} cards ({}% domestic), {} PFLOPS FP16\n",
            self.name,
            self.description,
            self.pools.len(),
            self.sites.len(),
            thousands(self.nodes_total),
            thousands(self.cards_total),
            self.domestic_cards_pct,
            thousands_f(self.pflops_fp16_total)
        );
        if self.cards_without_tflops > 0 {
            out += &format!("({} cards have no published FP16 figure and count 0 PFLOPS)\n", self.cards_without_tflops);
        }
        let mut pools = Table::new(&[
            "pool",
            "site",
            "backend",
            "provider",
            "nodes",
            "cards",
            "PFLOPS",
            "accelerators",
            "PUE",
            "green %",
        ]);
        for p in &self.pools {
            pools.row(vec![
                p.name.clone(),
                p.site.clone(),
                p.backend.to_owned(),
                p.provider.clone(),
                thousands(p.nodes),
                thousands(p.cards),
                thousands_f(p.pflops_fp16),
                p.accelerators.iter().map(|(m, n)| format!("{m} × {n}")).collect::<Vec<_>>().join(", "),
                format!("{:.2}", p.pue),
                p.green_share_pct.to_string(),
            ]);
        }
        let origin = self.sites.first().map(|s| s.name.clone()).unwrap_or_default();
        let from_origin = format!("ms from {origin}");
        let mut sites = Table::new(&["site", "city", "region", "pools", "cards", "PFLOPS", &from_origin]);
        for s in &self.sites {
            let latency = self.latency_ms.get(&origin).and_then(|row| row.get(&s.name)).copied().flatten();
            sites.row(vec![
                s.name.clone(),
                s.city.clone(),
                s.region.clone(),
                s.pools.to_string(),
                thousands(s.cards),
                thousands_f(s.pflops_fp16),
                latency.map_or_else(|| "unreachable".to_owned(), |ms| format!("{ms:.1}")),
            ]);
        }
        let mut models = Table::new(&["accelerator", "vendor", "domestic", "stack", "cards", "PFLOPS"]);
        for m in &self.accelerators {
            models.row(vec![
                m.model.clone(),
                m.vendor.clone(),
                if m.domestic { "yes" } else { "no" }.to_owned(),
                m.software_stack.clone(),
                thousands(m.cards),
                thousands_f(m.pflops_fp16),
            ]);
        }
        out +=
            &format!("\nPools\n{}\nBy site\n{}\nBy accelerator\n{}", pools.render(), sites.render(), models.render());
        out
    }
}

fn thousands_f(x: f64) -> String {
    let whole = x.trunc() as u64;
    format!("{}.{}", thousands(whole), ((x - whole as f64) * 10.0).round() as u64 % 10)
}
