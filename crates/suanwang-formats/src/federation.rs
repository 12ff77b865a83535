//! Federation files: sites, links, pools (with node groups and prices) and tenants, in TOML.
//! The format is documented with an example in `docs/federation-format.md`; unknown keys are
//! errors, and every reference (a site, an accelerator model) is checked and located.

use std::collections::BTreeMap;

use serde::Deserialize;
use suanwang_model::catalog::Catalog;
use suanwang_model::federation::{
    BackendKind, Federation, FederationParts, NodeSpec, Pool, PriceList, Site, SiteId, limits,
};
use suanwang_model::job::{Tenant, TenantKind};
use suanwang_model::network::Link;
use toml::Spanned;

use crate::catalog::toml_error;
use crate::error::{FormatError, line_column};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FederationFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    site: Vec<SiteEntry>,
    #[serde(default)]
    link: Vec<LinkEntry>,
    #[serde(default)]
    pool: Vec<PoolEntry>,
    #[serde(default)]
    tenant: Vec<TenantEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteEntry {
    name: String,
    city: String,
    region: String,
    latitude_deg: f64,
    longitude_deg: f64,
    grid_carbon_g_per_kwh: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkEntry {
    between: Spanned<[Spanned<String>; 2]>,
    latency_ms: Spanned<f64>,
    bandwidth_gbps: u32,
    #[serde(default)]
    egress_fen_per_gib: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum BackendEntry {
    Slurm,
    Kubernetes,
    Local,
    Sim,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolEntry {
    name: Spanned<String>,
    site: Spanned<String>,
    provider: String,
    backend: BackendEntry,
    pue: f64,
    #[serde(default)]
    green_share_pct: u8,
    handoff_pct: Option<u16>,
    #[serde(default)]
    card_hour_fen: BTreeMap<Spanned<String>, i64>,
    #[serde(default)]
    cpu_core_hour_fen: i64,
    #[serde(default)]
    memory_gib_hour_fen: i64,
    #[serde(default)]
    nodes: Vec<NodeGroupEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeGroupEntry {
    count: Spanned<u32>,
    accelerator: Option<Spanned<String>>,
    #[serde(default)]
    accelerators_per_node: u8,
    cpu_milli: u32,
    memory_mib: u32,
    name_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    name: String,
    kind: Spanned<String>,
    registration_city: String,
    home_site: Option<Spanned<String>>,
}

/// Parses a federation file against a catalog. The federation keeps its own copy of the catalog.
pub fn parse(source: &str, text: &str, catalog: &Catalog) -> Result<Federation, FormatError> {
    let file: FederationFile = toml::from_str(text).map_err(|e| toml_error(source, text, &e))?;
    let at = |span: std::ops::Range<usize>, code: &'static str, message: String| {
        let (line, column) = line_column(text, span.start);
        FormatError::new(source, code, message).at(line, Some(column))
    };
    let sites: Vec<Site> = file
        .site
        .into_iter()
        .map(|s| Site {
            name: s.name,
            city: s.city,
            region: s.region,
            latitude_deg: s.latitude_deg,
            longitude_deg: s.longitude_deg,
            grid_carbon_g_per_kwh: s.grid_carbon_g_per_kwh,
        })
        .collect();
    let site_id = |name: &Spanned<String>| -> Result<SiteId, FormatError> {
        sites.iter().position(|s| &s.name == name.get_ref()).map(SiteId::from_index).ok_or_else(|| {
            let known = sites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
            at(name.span(), "unknown_reference", format!("unknown site {:?}; sites are: {known}", name.get_ref()))
        })
    };

    let mut links = Vec::with_capacity(file.link.len());
    for link in &file.link {
        let [a, b] = link.between.get_ref();
        let latency_ms = *link.latency_ms.get_ref();
        if !(latency_ms.is_finite() && (0.0..=10_000.0).contains(&latency_ms)) {
            return Err(at(
                link.latency_ms.span(),
                "invalid_value",
                format!("latency_ms must be in 0..=10000, got {latency_ms}"),
            ));
        }
        links.push(Link {
            a: site_id(a)?,
            b: site_id(b)?,
            latency_us: (latency_ms * 1000.0).round() as u32,
            bandwidth_gbps: link.bandwidth_gbps,
            egress_fen_per_gib: link.egress_fen_per_gib,
        });
    }

    let mut pools = Vec::with_capacity(file.pool.len());
    let mut nodes_total = 0usize;
    for entry in file.pool {
        let site = site_id(&entry.site)?;
        let pool_name = entry.name.get_ref().clone();
        let mut card_hour_fen = BTreeMap::new();
        for (model, fen) in &entry.card_hour_fen {
            let id =
                catalog.resolve(model.get_ref()).map_err(|e| at(model.span(), "unknown_reference", e.to_string()))?;
            card_hour_fen.insert(id, *fen);
        }
        let mut nodes = Vec::new();
        for (group_index, group) in entry.nodes.iter().enumerate() {
            let count = *group.count.get_ref() as usize;
            nodes_total += count;
            if count > limits::NODES_PER_POOL_MAX || nodes_total > limits::NODES_MAX {
                return Err(at(
                    group.count.span(),
                    "limit_exceeded",
                    format!(
                        "too many nodes (at most {} per pool, {} in all)",
                        limits::NODES_PER_POOL_MAX,
                        limits::NODES_MAX
                    ),
                ));
            }
            let accelerator = match &group.accelerator {
                None => None,
                Some(model) => Some(
                    catalog
                        .resolve(model.get_ref())
                        .map_err(|e| at(model.span(), "unknown_reference", e.to_string()))?,
                ),
            };
            let prefix = group.name_prefix.clone().unwrap_or_else(|| format!("{pool_name}-g{group_index}"));
            for i in 0..count {
                let node = NodeSpec {
                    name: format!("{prefix}-{i:05}"),
                    cpu_milli: group.cpu_milli,
                    memory_mib: group.memory_mib,
                    accelerator,
                    accelerators: group.accelerators_per_node,
                };
                if i == 0 {
                    node.validate().map_err(|e| {
                        at(group.count.span(), e.code(), format!("pool {pool_name} node group {group_index}: {e}"))
                    })?;
                }
                nodes.push(node);
            }
        }
        let backend = match entry.backend {
            BackendEntry::Slurm => BackendKind::Slurm,
            BackendEntry::Kubernetes => BackendKind::Kubernetes,
            BackendEntry::Local => BackendKind::Local,
            BackendEntry::Sim => BackendKind::Sim,
        };
        pools.push(Pool {
            name: pool_name,
            site,
            provider: entry.provider,
            backend,
            handoff_pct: entry.handoff_pct.unwrap_or_else(|| backend.default_handoff_pct()),
            nodes,
            prices: PriceList {
                card_hour_fen,
                cpu_core_hour_fen: entry.cpu_core_hour_fen,
                memory_gib_hour_fen: entry.memory_gib_hour_fen,
            },
            pue: entry.pue,
            green_share_pct: entry.green_share_pct,
        });
    }

    let mut tenants = Vec::with_capacity(file.tenant.len());
    for entry in file.tenant {
        let kind = TenantKind::parse(entry.kind.get_ref()).ok_or_else(|| {
            let known = TenantKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
            at(
                entry.kind.span(),
                "invalid_value",
                format!("unknown tenant kind {:?}; kinds are: {known}", entry.kind.get_ref()),
            )
        })?;
        let home_site = entry.home_site.as_ref().map(&site_id).transpose()?;
        tenants.push(Tenant { name: entry.name, kind, registration_city: entry.registration_city, home_site });
    }

    Federation::new(FederationParts {
        name: file.name,
        description: file.description,
        catalog: catalog.clone(),
        sites,
        links,
        pools,
        tenants,
    })
    .map_err(|e| FormatError::new(source, e.code(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::builtin;

    const SMALL: &str = r#"
name = "tiny"
description = "two sites"

[[site]]
name = "sz"
city = "Shenzhen"
region = "CN-GD"
latitude_deg = 22.5
longitude_deg = 113.9

[[site]]
name = "sg"
city = "Shaoguan"
region = "CN-GD"
latitude_deg = 24.8
longitude_deg = 113.6

[[link]]
between = ["sz", "sg"]
latency_ms = 4.5
bandwidth_gbps = 400
egress_fen_per_gib = 3

[[pool]]
name = "sg-ascend"
site = "sg"
provider = "Telecom"
backend = "kubernetes"
pue = 1.25
green_share_pct = 40
card_hour_fen = { "Ascend-910B" = 800 }

[[pool.nodes]]
count = 3
accelerator = "910B"
accelerators_per_node = 8
cpu_milli = 192000
memory_mib = 1572864

[[pool.nodes]]
count = 1
cpu_milli = 64000
memory_mib = 262144

[[tenant]]
name = "robotics"
kind = "startup"
registration_city = "Shenzhen"
home_site = "sz"
"#;

    fn error(text: &str) -> String {
        let e = parse("f.toml", text, &builtin()).unwrap_err();
        format!("error[{}]: {e}", e.code)
    }

    #[test]
    fn a_small_federation_parses() {
        let federation = parse("f.toml", SMALL, &builtin()).unwrap();
        let capacity = federation.capacity();
        assert_eq!(capacity.total.cards, 24);
        assert_eq!(capacity.total.nodes, 4);
        assert!((capacity.total.pflops_fp16 - 24.0 * 320.0 / 1000.0).abs() < 1e-9);
        let (_, pool) = federation.pools().next().unwrap();
        assert_eq!(pool.nodes[0].name, "sg-ascend-g0-00000");
        assert_eq!(pool.backend, BackendKind::Kubernetes);
        let route = federation.network().route(SiteId::from_index(0), SiteId::from_index(1)).unwrap();
        assert_eq!(route.latency_us, 4500);
        assert_eq!(federation.tenants()[0].kind, TenantKind::Startup);
    }

    #[test]
    fn errors_name_the_place() {
        let check =
            |from: &str, to: &str, expect: expect_test::Expect| expect.assert_eq(&error(&SMALL.replace(from, to)));
        check(
            "site = \"sg\"",
            "site = \"gz\"",
            expect_test::expect![[r#"error[unknown_reference]: f.toml:27:8: unknown site "gz"; sites are: sz, sg"#]],
        );
        check(
            "accelerator = \"910B\"",
            "accelerator = \"Z1\"",
            expect_test::expect![[
                r#"error[unknown_reference]: f.toml:36:15: unknown accelerator model "Z1"; add it (or an alias) to the accelerator catalog"#
            ]],
        );
        check(
            "backend = \"kubernetes\"",
            "backend = \"yarn\"",
            expect_test::expect![
                "error[malformed_toml]: f.toml:29:11: unknown variant `yarn`, expected one of `slurm`, `kubernetes`, `local`, `sim`"
            ],
        );
        check(
            "pue = 1.25",
            "pue = 1.25\ncolour = 1",
            expect_test::expect![
                "error[malformed_toml]: f.toml:31:1: unknown field `colour`, expected one of `name`, `site`, `provider`, `backend`, `pue`, `green_share_pct`, `handoff_pct`, `card_hour_fen`, `cpu_core_hour_fen`, `memory_gib_hour_fen`, `nodes`"
            ],
        );
        check(
            "kind = \"startup\"",
            "kind = \"giant\"",
            expect_test::expect![[
                r#"error[invalid_value]: f.toml:48:8: unknown tenant kind "giant"; kinds are: startup, sme, manufacturer, research-institute, university, government, enterprise"#
            ]],
        );
        check(
            "card_hour_fen = { \"Ascend-910B\" = 800 }",
            "",
            expect_test::expect![
                "error[inconsistent]: f.toml: pool sg-ascend has Ascend-910B cards but no card_hour_fen price for them"
            ],
        );
        check(
            "latency_ms = 4.5",
            "latency_ms = -1",
            expect_test::expect!["error[invalid_value]: f.toml:21:14: latency_ms must be in 0..=10000, got -1"],
        );
        check(
            "count = 3",
            "count = 300000",
            expect_test::expect![
                "error[limit_exceeded]: f.toml:35:9: too many nodes (at most 200000 per pool, 1000000 in all)"
            ],
        );
        check(
            "name = \"tiny\"",
            "name = ",
            expect_test::expect![
                "error[malformed_toml]: f.toml:2:8: string values must be quoted, expected literal string"
            ],
        );
    }
}
