//! A compute-voucher (算力券) programme: the rules an issuer publishes, as a TOML (or JSON) file.
//! `docs/programs.md` documents the format field by field; `examples/programs/` holds the published
//! programmes of PRODUCT.md §6.
//!
//! ```toml
//! id = "hangzhou-2024"
//! name = "杭州市算力券 Hangzhou compute vouchers"
//! issuer = "Hangzhou Municipal Bureau of Economy and Information Technology"
//! fiscal_year = 2026
//! budget_fen = 25_000_000_000            # 250 M RMB
//! firm_cap_fen = 800_000_000             # 8 M RMB per firm per year
//! max_term_days = 365
//! stacking = false
//! expiry = "budget"                      # or "breakage"
//! [[funders]]
//! name = "Hangzhou"
//! share_bps = 10_000
//! [eligibility]
//! tenant_kinds = []                      # empty: any
//! registration_cities = ["Hangzhou"]
//! [subsidy]
//! default_ratio_bps = 2_000              # 20% on other hardware
//! [[subsidy.rules]]
//! domestic_accelerator = true
//! ratio_bps = 3_000                      # 30% on domestic chips
//! ```

use serde::{Deserialize, Serialize};
use suanwang_ledger::split::BPS_WHOLE;

/// Most funders of one programme.
pub const FUNDERS_MAX: usize = 8;
/// Most subsidy rules of one programme.
pub const RULES_MAX: usize = 32;
/// Most names in one eligibility list.
pub const LIST_MAX: usize = 256;
/// The platform's tenant kinds (`suanwang_model::job::TenantKind`; a test in the server keeps
/// the two lists equal).
pub const TENANT_KINDS: [&str; 7] =
    ["startup", "sme", "manufacturer", "research-institute", "university", "government", "enterprise"];

/// Largest budget: 10^14 fen (a trillion yuan).
pub const BUDGET_FEN_MAX: u64 = 100_000_000_000_000;

/// A programme as its file states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Id: lowercase letters, digits and `-`, at most 64.
    pub id: String,
    /// Name for people.
    pub name: String,
    /// Who issues it.
    pub issuer: String,
    /// The calendar year (China Standard Time) in which claims and redemptions are accepted.
    pub fiscal_year: i64,
    /// The year's budget.
    pub budget_fen: u64,
    /// Who puts the budget up, and in what shares (basis points summing to 10,000). Empty: the
    /// issuer alone.
    #[serde(default)]
    pub funders: Vec<Funder>,
    /// Who may apply and which capacity counts.
    #[serde(default)]
    pub eligibility: Eligibility,
    /// What share of an invoice line it pays.
    pub subsidy: Subsidy,
    /// Most a firm may receive in the year, claims and redemptions counted together. None: no cap.
    #[serde(default)]
    pub firm_cap_fen: Option<u64>,
    /// Longest contract it subsidises, in days. None: any.
    #[serde(default)]
    pub max_term_days: Option<u32>,
    /// Whether a line it subsidises may also be subsidised by another programme that allows it.
    #[serde(default)]
    pub stacking: bool,
    /// Where unredeemed voucher value goes at the end of the year.
    #[serde(default)]
    pub expiry: Expiry,
    /// Where the rules come from (a citation for people).
    #[serde(default)]
    pub source: String,
}

/// A funder's share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Funder {
    /// Who.
    pub name: String,
    /// Share in basis points.
    pub share_bps: u32,
}

/// Eligibility predicates; an empty list admits everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// Tenant kinds admitted ([`TENANT_KINDS`]).
    #[serde(default)]
    pub tenant_kinds: Vec<String>,
    /// Cities where the tenant must be registered.
    #[serde(default)]
    pub registration_cities: Vec<String>,
    /// Cities where the capacity must be (the pool's site).
    #[serde(default)]
    pub pool_cities: Vec<String>,
    /// Pools admitted by name. Empty: any.
    #[serde(default)]
    pub pools: Vec<String>,
    /// Smallest pool (in accelerator cards) whose capacity counts.
    #[serde(default)]
    pub min_pool_cards: Option<u32>,
}

/// Subsidy ratios: the highest ratio among the rules that match, or the default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subsidy {
    /// The ratio when no rule matches.
    pub default_ratio_bps: u32,
    /// Rules.
    #[serde(default)]
    pub rules: Vec<RatioRule>,
}

/// A ratio for lines that match every predicate given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioRule {
    /// The line's accelerator is (or is not) of a Chinese design.
    #[serde(default)]
    pub domestic_accelerator: Option<bool>,
    /// The tenant is of one of these kinds.
    #[serde(default)]
    pub tenant_kinds: Vec<String>,
    /// The ratio.
    pub ratio_bps: u32,
}

/// What happens to unredeemed voucher value when the year ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expiry {
    /// It returns to the programme's budget.
    #[default]
    Budget,
    /// It is written off to the breakage account.
    Breakage,
}

/// The facts about a tenant that eligibility looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantFacts {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// City of registration.
    pub registration_city: String,
}

/// The facts about capacity (a pool) that eligibility and ratios look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolFacts {
    /// Pool name.
    pub pool: String,
    /// Its provider organisation.
    pub provider: String,
    /// The city of its site.
    pub city: String,
    /// Its accelerator cards.
    pub cards: u32,
    /// Its accelerator is of a Chinese design.
    pub domestic: bool,
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn admits(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| same(v, value))
}

impl Program {
    /// Reads a programme file (TOML).
    pub fn from_toml(text: &str) -> Result<Program, String> {
        let program: Program = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        program.validate()?;
        Ok(program)
    }

    /// Checks the rules make sense; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(format!("id {:?}: use 1–64 lowercase letters, digits and '-'", self.id));
        }
        if self.name.trim().is_empty()
            || self.name.len() > 200
            || self.issuer.trim().is_empty()
            || self.issuer.len() > 200
        {
            return Err("name and issuer: 1–200 characters each".to_owned());
        }
        if !(2000..=2200).contains(&self.fiscal_year) {
            return Err(format!("fiscal_year {}: expected a year between 2000 and 2200", self.fiscal_year));
        }
        if self.budget_fen == 0 || self.budget_fen > BUDGET_FEN_MAX {
            return Err(format!("budget_fen {}: expected 1 to {BUDGET_FEN_MAX}", self.budget_fen));
        }
        if self.funders.len() > FUNDERS_MAX {
            return Err(format!("funders: at most {FUNDERS_MAX}"));
        }
        if !self.funders.is_empty() {
            let total: u64 = self.funders.iter().map(|f| u64::from(f.share_bps)).sum();
            if total != u64::from(BPS_WHOLE)
                || self.funders.iter().any(|f| f.share_bps == 0 || f.name.trim().is_empty())
            {
                return Err(format!("funders: named, each share above 0, shares summing to 10000 bps (got {total})"));
            }
        }
        if self.subsidy.default_ratio_bps > BPS_WHOLE || self.subsidy.rules.iter().any(|r| r.ratio_bps > BPS_WHOLE) {
            return Err("subsidy: ratios are basis points from 0 to 10000".to_owned());
        }
        if self.subsidy.rules.len() > RULES_MAX {
            return Err(format!("subsidy.rules: at most {RULES_MAX}"));
        }
        let e = &self.eligibility;
        if [&e.tenant_kinds, &e.registration_cities, &e.pool_cities, &e.pools].iter().any(|l| l.len() > LIST_MAX) {
            return Err(format!("eligibility: at most {LIST_MAX} names in a list"));
        }
        let kinds = e.tenant_kinds.iter().chain(self.subsidy.rules.iter().flat_map(|r| r.tenant_kinds.iter()));
        for k in kinds {
            if !TENANT_KINDS.contains(&k.as_str()) {
                return Err(format!("tenant kind {k:?}: expected one of {}", TENANT_KINDS.join(", ")));
            }
        }
        if self.firm_cap_fen == Some(0) || self.firm_cap_fen.is_some_and(|c| c > BUDGET_FEN_MAX) {
            return Err("firm_cap_fen: above 0, or left out for no cap".to_owned());
        }
        if self.max_term_days == Some(0) {
            return Err("max_term_days: above 0, or left out for any term".to_owned());
        }
        Ok(())
    }

    /// Why a tenant may not apply, if it may not.
    pub fn ineligible_tenant(&self, tenant: &TenantFacts) -> Option<String> {
        let e = &self.eligibility;
        if !admits(&e.tenant_kinds, &tenant.kind) {
            return Some(format!(
                "tenants of kind {:?} are not eligible (only {})",
                tenant.kind,
                e.tenant_kinds.join(", ")
            ));
        }
        if !admits(&e.registration_cities, &tenant.registration_city) {
            return Some(format!(
                "the tenant is registered in {:?}; the programme requires {}",
                tenant.registration_city,
                e.registration_cities.join(", ")
            ));
        }
        None
    }

    /// Why capacity does not count, if it does not.
    pub fn ineligible_pool(&self, pool: &PoolFacts) -> Option<String> {
        let e = &self.eligibility;
        if !admits(&e.pools, &pool.pool) {
            return Some(format!("pool {} is not one of the programme's pools ({})", pool.pool, e.pools.join(", ")));
        }
        if !admits(&e.pool_cities, &pool.city) {
            return Some(format!(
                "pool {} is in {}; the programme requires {}",
                pool.pool,
                pool.city,
                e.pool_cities.join(", ")
            ));
        }
        if let Some(min) = e.min_pool_cards
            && pool.cards < min
        {
            return Some(format!("pool {} has {} cards; the programme requires at least {min}", pool.pool, pool.cards));
        }
        None
    }

    /// The ratio for a line: the highest among matching rules, or the default.
    pub fn ratio_bps(&self, tenant_kind: &str, domestic: bool) -> u32 {
        self.subsidy
            .rules
            .iter()
            .filter(|r| r.domestic_accelerator.is_none_or(|d| d == domestic) && admits(&r.tenant_kinds, tenant_kind))
            .map(|r| r.ratio_bps)
            .max()
            .unwrap_or(self.subsidy.default_ratio_bps)
    }

    /// The funders' shares of the budget, by the rounding rule (the last funder takes the rest).
    pub fn funding(&self) -> Vec<(String, u64)> {
        if self.funders.is_empty() {
            return vec![(self.issuer.clone(), self.budget_fen)];
        }
        let mut left = self.budget_fen;
        let mut out = Vec::new();
        for (i, f) in self.funders.iter().enumerate() {
            let share = if i + 1 == self.funders.len() {
                left
            } else {
                suanwang_ledger::split::split_floor(self.budget_fen, f.share_bps, left).share_fen
            };
            left -= share;
            out.push((f.name.clone(), share));
        }
        out
    }
}
