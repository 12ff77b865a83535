//! Sites, pools and nodes: what a federation is made of, and how much capacity it has.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{AcceleratorId, Catalog};
use crate::error::ModelError;
use crate::job::Tenant;
use crate::network::{Link, Network};

/// Limits on the size of one federation.
pub mod limits {
    /// Sites in one federation.
    pub const SITES_MAX: usize = 1024;
    /// Pools in one federation.
    pub const POOLS_MAX: usize = 1024;
    /// Nodes in one pool.
    pub const NODES_PER_POOL_MAX: usize = 200_000;
    /// Nodes in the whole federation.
    pub const NODES_MAX: usize = 1_000_000;
    /// A pool's [`super::Pool::handoff_pct`]: its cluster's queue holds at most twice the pool.
    pub const HANDOFF_PCT_MAX: u16 = 200;
    /// Accelerators on one node.
    pub const ACCELERATORS_PER_NODE_MAX: u8 = 16;
    /// CPU on one node: 4,096 cores.
    pub const NODE_CPU_MILLI_MAX: u32 = 4_096_000;
    /// Memory on one node: 64 TiB.
    pub const NODE_MEMORY_MIB_MAX: u32 = 64 * 1024 * 1024;
    /// Tenants declared in one federation file.
    pub const TENANTS_MAX: usize = 100_000;
}

/// Index of a site in its federation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(pub(crate) u16);

impl SiteId {
    /// The id of the site at `index` in the parts a federation is built from
    /// ([`Federation::new`] checks that it exists).
    pub fn from_index(index: usize) -> SiteId {
        SiteId(u16::try_from(index).unwrap_or(u16::MAX))
    }

    /// Position in [`Federation::sites`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Index of a pool in its federation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId(u16);

impl PoolId {
    /// The id of the pool at `index` in its federation (callers check the range).
    pub fn from_index(index: usize) -> PoolId {
        PoolId(u16::try_from(index).unwrap_or(u16::MAX))
    }

    /// Position in [`Federation::pools`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A place with compute: a data centre campus, or a city's share of one.
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Unique name, e.g. `shenzhen-qianhai`.
    pub name: String,
    /// City, e.g. `Shenzhen`.
    pub city: String,
    /// Data-residency region, e.g. `CN-GD` or `HK`: a job that must stay in a region is placed
    /// only at sites of that region.
    pub region: String,
    /// Latitude, for maps.
    pub latitude_deg: f64,
    /// Longitude, for maps.
    pub longitude_deg: f64,
    /// Carbon intensity of the local grid, g CO₂ per kWh; `None`: the platform's default.
    pub grid_carbon_g_per_kwh: Option<u32>,
}

/// How the platform reaches a pool's cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendKind {
    /// A Slurm cluster, driven by an agent next to `slurmctld`.
    Slurm,
    /// A Kubernetes cluster, driven by an agent inside it.
    Kubernetes,
    /// Processes on the machine the agent runs on.
    Local,
    /// Simulated execution, for demos and planning.
    Sim,
}

impl BackendKind {
    /// A pool's default [`Pool::handoff_pct`]: a cluster with its own queue (Slurm, Kubernetes)
    /// gets one pool's worth of waiting work; processes and simulations start only what fits.
    pub fn default_handoff_pct(self) -> u16 {
        match self {
            BackendKind::Slurm | BackendKind::Kubernetes => 100,
            BackendKind::Local | BackendKind::Sim => 0,
        }
    }

    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Slurm => "slurm",
            BackendKind::Kubernetes => "kubernetes",
            BackendKind::Local => "local",
            BackendKind::Sim => "sim",
        }
    }

    /// Whether the pool's jobs keep running while its agent is away: a cluster manager (Slurm,
    /// Kubernetes) runs them itself; `local` and `sim` jobs live in the agent's process.
    pub fn runs_jobs_without_agent(self) -> bool {
        matches!(self, BackendKind::Slurm | BackendKind::Kubernetes)
    }
}

/// One machine in a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// Unique within the pool.
    pub name: String,
    /// CPU capacity in thousandths of a core.
    pub cpu_milli: u32,
    /// Memory capacity.
    pub memory_mib: u32,
    /// The accelerator model, or `None` for a CPU-only node.
    pub accelerator: Option<AcceleratorId>,
    /// Number of accelerator devices (0 exactly when `accelerator` is `None`).
    pub accelerators: u8,
}

impl NodeSpec {
    /// Checks the node's figures against [`limits`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.cpu_milli == 0 || self.cpu_milli > limits::NODE_CPU_MILLI_MAX {
            return Err(ModelError::out_of_range(
                format!("node {} cpu_milli", self.name),
                format!("in 1..={}", limits::NODE_CPU_MILLI_MAX),
                self.cpu_milli,
            ));
        }
        if self.memory_mib == 0 || self.memory_mib > limits::NODE_MEMORY_MIB_MAX {
            return Err(ModelError::out_of_range(
                format!("node {} memory_mib", self.name),
                format!("in 1..={}", limits::NODE_MEMORY_MIB_MAX),
                self.memory_mib,
            ));
        }
        if self.accelerators > limits::ACCELERATORS_PER_NODE_MAX {
            return Err(ModelError::out_of_range(
                format!("node {} accelerators", self.name),
                format!("at most {}", limits::ACCELERATORS_PER_NODE_MAX),
                self.accelerators,
            ));
        }
        if self.accelerator.is_some() != (self.accelerators > 0) {
            return Err(ModelError::Inconsistent(format!(
                "node {} must name an accelerator model exactly when it has accelerators",
                self.name
            )));
        }
        Ok(())
    }
}

/// What a pool charges. Money is integer fen (0.01 RMB).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PriceList {
    /// On-demand price of one card for one hour, by accelerator model.
    pub card_hour_fen: BTreeMap<AcceleratorId, i64>,
    /// Price of one CPU core for one hour (for CPU-only work).
    pub cpu_core_hour_fen: i64,
    /// Price of one GiB of memory for one hour (for CPU-only work).
    pub memory_gib_hour_fen: i64,
}

/// A cluster run by one provider at one site, reached through one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// Unique name in the federation.
    pub name: String,
    /// Where it is.
    pub site: SiteId,
    /// Who runs it (a provider organisation).
    pub provider: String,
    /// How the platform reaches it.
    pub backend: BackendKind,
    /// Its machines.
    pub nodes: Vec<NodeSpec>,
    /// What it charges.
    pub prices: PriceList,
    /// Power usage effectiveness of the data centre (≥ 1.0).
    pub pue: f64,
    /// Share of the pool's electricity from renewable sources, in percent.
    pub green_share_pct: u8,
    /// How much placed work that does not fit the pool now the platform hands to the cluster's
    /// own queue, as a share of the pool's nodes, in percent (0..=[`limits::HANDOFF_PCT_MAX`]):
    /// the cluster starts it the moment something ends, without a round trip to the platform.
    /// Defaults to [`BackendKind::default_handoff_pct`].
    pub handoff_pct: u16,
}

/// A validated federation: sites, the network between them, pools, and optionally tenants.
#[derive(Clone, Debug)]
pub struct Federation {
    /// Name, e.g. `greater-bay-area`.
    pub name: String,
    /// One line about it.
    pub description: String,
    catalog: Catalog,
    sites: Vec<Site>,
    network: Network,
    pools: Vec<Pool>,
    tenants: Vec<Tenant>,
}

/// Everything needed to build a [`Federation`]; names are resolved before this point.
#[derive(Clone, Debug, Default)]
pub struct FederationParts {
    /// Name.
    pub name: String,
    /// One line about it.
    pub description: String,
    /// The accelerator catalog the pools' ids refer to.
    pub catalog: Catalog,
    /// Sites, in order of their ids.
    pub sites: Vec<Site>,
    /// Links between sites.
    pub links: Vec<Link>,
    /// Pools, in order of their ids.
    pub pools: Vec<Pool>,
    /// Tenants declared with the federation (may be empty).
    pub tenants: Vec<Tenant>,
}

impl Federation {
    /// Validates the parts and computes the all-pairs network paths.
    pub fn new(parts: FederationParts) -> Result<Self, ModelError> {
        let FederationParts { name, description, catalog, sites, links, pools, tenants } = parts;
        check_count("sites", sites.len(), limits::SITES_MAX)?;
        check_count("pools", pools.len(), limits::POOLS_MAX)?;
        check_count("tenants", tenants.len(), limits::TENANTS_MAX)?;
        unique("site", sites.iter().map(|s| s.name.as_str()))?;
        unique("pool", pools.iter().map(|p| p.name.as_str()))?;
        unique("tenant", tenants.iter().map(|t| t.name.as_str()))?;
        let mut nodes_total = 0usize;
        for pool in &pools {
            validate_pool(pool, &sites, &catalog)?;
            nodes_total += pool.nodes.len();
        }
        check_count("nodes", nodes_total, limits::NODES_MAX)?;
        for tenant in &tenants {
            if let Some(site) = tenant.home_site
                && site.index() >= sites.len()
            {
                return Err(ModelError::Inconsistent(format!("tenant {} has an unknown home site", tenant.name)));
            }
        }
        let network = Network::new(sites.len(), links)?;
        Ok(Federation { name, description, catalog, sites, network, pools, tenants })
    }

    /// The accelerator catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// All sites; a [`SiteId`] indexes this slice.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// A site by id.
    pub fn site(&self, id: SiteId) -> &Site {
        &self.sites[id.index()]
    }

    /// A site by name.
    pub fn site_id(&self, name: &str) -> Option<SiteId> {
        self.sites.iter().position(|s| s.name == name).map(|i| SiteId(i as u16))
    }

    /// The network between sites.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// All pools with their ids.
    pub fn pools(&self) -> impl Iterator<Item = (PoolId, &Pool)> {
        self.pools.iter().enumerate().map(|(i, p)| (PoolId(i as u16), p))
    }

    /// A pool by id.
    pub fn pool(&self, id: PoolId) -> &Pool {
        &self.pools[id.index()]
    }

    /// Number of pools.
    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    /// Tenants declared with the federation.
    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    /// Capacity in cards, nodes and PFLOPS, by pool, by site and by accelerator model.
    pub fn capacity(&self) -> Capacity {
        let mut capacity = Capacity {
            by_pool: vec![CapacityRow::default(); self.pools.len()],
            by_site: vec![CapacityRow::default(); self.sites.len()],
            by_accelerator: BTreeMap::new(),
            total: CapacityRow::default(),
        };
        for (pool_index, pool) in self.pools.iter().enumerate() {
            for node in &pool.nodes {
                let row = node_capacity(node, &self.catalog);
                capacity.by_pool[pool_index].add(&row);
                capacity.by_site[pool.site.index()].add(&row);
                capacity.total.add(&row);
                if let Some(model) = node.accelerator {
                    capacity.by_accelerator.entry(model).or_default().add(&row);
                }
            }
        }
        capacity
    }
}

fn node_capacity(node: &NodeSpec, catalog: &Catalog) -> CapacityRow {
    let cards = u64::from(node.accelerators);
    let (pflops, undisclosed) = match node.accelerator.map(|id| catalog.get(id).fp16_dense_tflops) {
        Some(Some(tflops)) => (cards as f64 * tflops / 1000.0, 0),
        Some(None) => (0.0, cards),
        None => (0.0, 0),
    };
    CapacityRow {
        nodes: 1,
        cards,
        pflops_fp16: pflops,
        cards_without_tflops: undisclosed,
        cpu_milli: u64::from(node.cpu_milli),
        memory_mib: u64::from(node.memory_mib),
    }
}

/// Capacity of part of a federation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapacityRow {
    /// Machines.
    pub nodes: u64,
    /// Accelerator cards.
    pub cards: u64,
    /// Dense FP16 compute of those cards, in PFLOPS.
    pub pflops_fp16: f64,
    /// Cards whose model has no published FP16 figure (counted in `cards`, not in PFLOPS).
    pub cards_without_tflops: u64,
    /// CPU in thousandths of a core.
    pub cpu_milli: u64,
    /// Memory.
    pub memory_mib: u64,
}

impl CapacityRow {
    fn add(&mut self, other: &CapacityRow) {
        self.nodes += other.nodes;
        self.cards += other.cards;
        self.pflops_fp16 += other.pflops_fp16;
        self.cards_without_tflops += other.cards_without_tflops;
        self.cpu_milli += other.cpu_milli;
        self.memory_mib += other.memory_mib;
    }
}

/// Capacity of a federation, broken down three ways.
#[derive(Clone, Debug, PartialEq)]
pub struct Capacity {
    /// Indexed by [`PoolId::index`].
    pub by_pool: Vec<CapacityRow>,
    /// Indexed by [`SiteId::index`].
    pub by_site: Vec<CapacityRow>,
    /// Accelerator models present, in catalog order.
    pub by_accelerator: BTreeMap<AcceleratorId, CapacityRow>,
    /// The whole federation.
    pub total: CapacityRow,
}

fn check_count(what: &'static str, got: usize, limit: usize) -> Result<(), ModelError> {
    if got > limit {
        return Err(ModelError::TooMany { what, got, limit });
    }
    Ok(())
}

fn unique<'a>(kind: &'static str, names: impl Iterator<Item = &'a str>) -> Result<(), ModelError> {
    let mut seen = BTreeSet::new();
    for name in names {
        if name.trim().is_empty() {
            return Err(ModelError::out_of_range(format!("{kind} name"), "non-empty", "\"\""));
        }
        if !seen.insert(name) {
            return Err(ModelError::Duplicate { kind, name: name.to_owned() });
        }
    }
    Ok(())
}

fn validate_pool(pool: &Pool, sites: &[Site], catalog: &Catalog) -> Result<(), ModelError> {
    if pool.site.index() >= sites.len() {
        return Err(ModelError::Inconsistent(format!("pool {} is at an unknown site", pool.name)));
    }
    check_count("nodes in one pool", pool.nodes.len(), limits::NODES_PER_POOL_MAX)?;
    unique("node", pool.nodes.iter().map(|n| n.name.as_str()))?;
    if !(pool.pue.is_finite() && (1.0..=3.0).contains(&pool.pue)) {
        return Err(ModelError::out_of_range(format!("pool {} pue", pool.name), "in 1.0..=3.0", pool.pue));
    }
    if pool.handoff_pct > limits::HANDOFF_PCT_MAX {
        return Err(ModelError::out_of_range(
            format!("pool {} handoff_pct", pool.name),
            "in 0..=200",
            pool.handoff_pct,
        ));
    }
    if pool.green_share_pct > 100 {
        return Err(ModelError::out_of_range(
            format!("pool {} green_share_pct", pool.name),
            "in 0..=100",
            pool.green_share_pct,
        ));
    }
    let prices = &pool.prices;
    for (what, fen) in
        [("cpu_core_hour_fen", prices.cpu_core_hour_fen), ("memory_gib_hour_fen", prices.memory_gib_hour_fen)]
            .into_iter()
            .chain(prices.card_hour_fen.values().map(|&fen| ("card_hour_fen", fen)))
    {
        if !(0..=100_000_000).contains(&fen) {
            return Err(ModelError::out_of_range(format!("pool {} {what}", pool.name), "in 0..=100000000 fen", fen));
        }
    }
    for node in &pool.nodes {
        node.validate()?;
        if let Some(model) = node.accelerator {
            if model.index() >= catalog.len() {
                return Err(ModelError::Inconsistent(format!("node {} has an unknown accelerator id", node.name)));
            }
            if !prices.card_hour_fen.contains_key(&model) {
                return Err(ModelError::Inconsistent(format!(
                    "pool {} has {} cards but no card_hour_fen price for them",
                    pool.name,
                    catalog.get(model).model
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::accelerator;

    fn site(name: &str) -> Site {
        Site {
            name: name.to_owned(),
            city: "Shenzhen".to_owned(),
            region: "CN-GD".to_owned(),
            latitude_deg: 22.5,
            longitude_deg: 114.0,
            grid_carbon_g_per_kwh: None,
        }
    }

    fn parts() -> FederationParts {
        let catalog =
            Catalog::new(vec![accelerator("A800", Some(312.0), false), accelerator("G1", None, false)]).unwrap();
        let a800 = catalog.lookup("A800").unwrap();
        let g1 = catalog.lookup("G1").unwrap();
        let node = |name: &str, model, accelerators| NodeSpec {
            name: name.to_owned(),
            cpu_milli: 128_000,
            memory_mib: 1 << 20,
            accelerator: model,
            accelerators,
        };
        FederationParts {
            name: "test".to_owned(),
            catalog,
            sites: vec![site("a"), site("b")],
            links: vec![],
            pools: vec![Pool {
                name: "p".to_owned(),
                site: SiteId(1),
                provider: "x".to_owned(),
                backend: BackendKind::Sim,
                nodes: vec![node("n1", Some(a800), 8), node("n2", Some(g1), 4), node("n3", None, 0)],
                prices: PriceList {
                    card_hour_fen: [(a800, 1_000), (g1, 500)].into_iter().collect(),
                    ..PriceList::default()
                },
                pue: 1.3,
                green_share_pct: 20,
                handoff_pct: 0,
            }],
            ..FederationParts::default()
        }
    }

    #[test]
    fn capacity_counts_cards_and_pflops_by_site_and_model() {
        let federation = Federation::new(parts()).unwrap();
        let capacity = federation.capacity();
        assert_eq!(capacity.total.cards, 12);
        assert_eq!(capacity.total.nodes, 3);
        assert_eq!(capacity.total.cards_without_tflops, 4);
        assert!((capacity.total.pflops_fp16 - 8.0 * 312.0 / 1000.0).abs() < 1e-9);
        assert_eq!(capacity.by_site[0], CapacityRow::default());
        assert_eq!(capacity.by_site[1].cards, 12);
        assert_eq!(capacity.by_accelerator.len(), 2);
    }

    #[test]
    fn a_model_without_a_price_is_rejected() {
        let mut parts = parts();
        parts.pools[0].prices.card_hour_fen.clear();
        let err = Federation::new(parts).unwrap_err();
        assert!(err.to_string().contains("no card_hour_fen price"), "{err}");
    }

    #[test]
    fn bad_node_figures_are_rejected() {
        let mut parts = parts();
        parts.pools[0].nodes[2].accelerators = 2;
        assert_eq!(Federation::new(parts).unwrap_err().code(), "inconsistent");
        let mut parts = self::parts();
        parts.pools[0].nodes[0].cpu_milli = 0;
        assert_eq!(Federation::new(parts).unwrap_err().code(), "out_of_range");
        let mut parts = self::parts();
        parts.pools[0].pue = 0.5;
        assert_eq!(Federation::new(parts).unwrap_err().code(), "out_of_range");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let mut parts = parts();
        parts.sites.push(site("a"));
        assert_eq!(Federation::new(parts).unwrap_err(), ModelError::Duplicate { kind: "site", name: "a".to_owned() });
    }
}
