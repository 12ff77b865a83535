//! The network between sites: links as declared, and the best path between every pair of sites.
//!
//! A federation declares direct links (latency, bandwidth, egress price). Between two sites with no
//! direct link, traffic takes the lowest-latency route; its bandwidth is the route's narrowest link
//! and its egress price the sum of the links' prices. Inside one site latency is zero and nothing is
//! charged. This is what "latency circles" are computed from.

use crate::error::ModelError;
use crate::federation::SiteId;

/// Links in one federation.
pub const LINKS_MAX: usize = 100_000;

/// A direct network link between two sites (symmetric).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// One end.
    pub a: SiteId,
    /// The other end.
    pub b: SiteId,
    /// One-way latency in microseconds.
    pub latency_us: u32,
    /// Capacity available to the platform, in Gbit/s.
    pub bandwidth_gbps: u32,
    /// Price of moving one GiB across this link.
    pub egress_fen_per_gib: i64,
}

/// The best route between two sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// One-way latency in microseconds (0 inside a site).
    pub latency_us: u32,
    /// Bandwidth of the narrowest link on the route in Gbit/s (`u32::MAX` inside a site).
    pub bandwidth_gbps: u32,
    /// Sum of the egress prices on the route.
    pub egress_fen_per_gib: i64,
    /// Links on the route.
    pub hops: u16,
}

/// All-pairs routes between the sites of a federation.
#[derive(Clone, Debug)]
pub struct Network {
    sites: usize,
    links: Vec<Link>,
    /// Row-major `sites × sites`; `None` where no route exists.
    routes: Vec<Option<Route>>,
}

impl Network {
    /// Validates the links and computes every route (Floyd–Warshall on latency; ties go to fewer
    /// hops, then to the wider route).
    pub fn new(sites: usize, links: Vec<Link>) -> Result<Self, ModelError> {
        if links.len() > LINKS_MAX {
            return Err(ModelError::TooMany { what: "links", got: links.len(), limit: LINKS_MAX });
        }
        let mut routes: Vec<Option<Route>> = vec![None; sites * sites];
        for i in 0..sites {
            routes[i * sites + i] =
                Some(Route { latency_us: 0, bandwidth_gbps: u32::MAX, egress_fen_per_gib: 0, hops: 0 });
        }
        for link in &links {
            let (a, b) = (link.a.index(), link.b.index());
            if a >= sites || b >= sites {
                return Err(ModelError::Inconsistent("a link refers to an unknown site".to_owned()));
            }
            if a == b {
                return Err(ModelError::Inconsistent("a link must join two different sites".to_owned()));
            }
            if link.bandwidth_gbps == 0 {
                return Err(ModelError::out_of_range("link bandwidth_gbps", "at least 1", 0));
            }
            if !(0..=1_000_000).contains(&link.egress_fen_per_gib) {
                return Err(ModelError::out_of_range(
                    "link egress_fen_per_gib",
                    "in 0..=1000000",
                    link.egress_fen_per_gib,
                ));
            }
            if link.latency_us > 10_000_000 {
                return Err(ModelError::out_of_range("link latency", "at most 10 s", link.latency_us));
            }
            if routes[a * sites + b].is_some() {
                return Err(ModelError::Inconsistent(format!("two links join the same pair of sites (#{a} and #{b})")));
            }
            let route = Route {
                latency_us: link.latency_us,
                bandwidth_gbps: link.bandwidth_gbps,
                egress_fen_per_gib: link.egress_fen_per_gib,
                hops: 1,
            };
            routes[a * sites + b] = Some(route);
            routes[b * sites + a] = Some(route);
        }
        for k in 0..sites {
            for i in 0..sites {
                let Some(ik) = routes[i * sites + k] else { continue };
                for j in 0..sites {
                    let Some(kj) = routes[k * sites + j] else { continue };
                    let through = Route {
                        latency_us: ik.latency_us.saturating_add(kj.latency_us),
                        bandwidth_gbps: ik.bandwidth_gbps.min(kj.bandwidth_gbps),
                        egress_fen_per_gib: ik.egress_fen_per_gib + kj.egress_fen_per_gib,
                        hops: ik.hops + kj.hops,
                    };
                    let better = match routes[i * sites + j] {
                        None => true,
                        Some(current) => {
                            (through.latency_us, through.hops, u32::MAX - through.bandwidth_gbps)
                                < (current.latency_us, current.hops, u32::MAX - current.bandwidth_gbps)
                        }
                    };
                    if better {
                        routes[i * sites + j] = Some(through);
                    }
                }
            }
        }
        Ok(Network { sites, links, routes })
    }

    /// The best route from `a` to `b`, or `None` when the sites are not connected.
    pub fn route(&self, a: SiteId, b: SiteId) -> Option<Route> {
        self.routes[a.index() * self.sites + b.index()]
    }

    /// The links as declared.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Sites `from` reaches within `latency_us_max`, including itself.
    pub fn within(&self, from: SiteId, latency_us_max: u32) -> impl Iterator<Item = SiteId> + '_ {
        (0..self.sites)
            .map(SiteId::from_index)
            .filter(move |&to| self.route(from, to).is_some_and(|r| r.latency_us <= latency_us_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(a: usize, b: usize, latency_us: u32, bandwidth_gbps: u32, egress: i64) -> Link {
        Link {
            a: SiteId::from_index(a),
            b: SiteId::from_index(b),
            latency_us,
            bandwidth_gbps,
            egress_fen_per_gib: egress,
        }
    }

    #[test]
    fn routes_take_the_lowest_latency_path_and_its_narrowest_link() {
        // 0 —1ms/400G— 1 —2ms/100G— 2, and a slow direct 0 —9ms— 2.
        let net =
            Network::new(4, vec![link(0, 1, 1_000, 400, 10), link(1, 2, 2_000, 100, 20), link(0, 2, 9_000, 800, 0)])
                .unwrap();
        let route = net.route(SiteId::from_index(0), SiteId::from_index(2)).unwrap();
        assert_eq!(route, Route { latency_us: 3_000, bandwidth_gbps: 100, egress_fen_per_gib: 30, hops: 2 });
        assert_eq!(net.route(SiteId::from_index(2), SiteId::from_index(0)), Some(route));
        assert_eq!(net.route(SiteId::from_index(0), SiteId::from_index(3)), None);
        assert_eq!(net.route(SiteId::from_index(3), SiteId::from_index(3)).unwrap().latency_us, 0);
        let circle: Vec<usize> = net.within(SiteId::from_index(0), 1_000).map(SiteId::index).collect();
        assert_eq!(circle, vec![0, 1]);
    }

    #[test]
    fn bad_links_are_rejected() {
        assert!(Network::new(2, vec![link(0, 0, 1, 1, 0)]).is_err());
        assert!(Network::new(2, vec![link(0, 5, 1, 1, 0)]).is_err());
        assert!(Network::new(2, vec![link(0, 1, 1, 0, 0)]).is_err());
        assert!(Network::new(2, vec![link(0, 1, 1, 1, 0), link(1, 0, 1, 1, 0)]).is_err());
    }
}
