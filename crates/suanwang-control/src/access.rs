//! The access policy: one table of role × action, asked by every operation of the control plane
//! (and so by every API handler and dashboard page, which call them).
//!
//! For each role and action the table says **how much** of it the role may do:
//! - [`Scope::All`]: on anything;
//! - [`Scope::Own`]: on its own things only: a tenant's own jobs, money and vouchers, a
//!   provider's own pool, a programme administrator's own programme;
//! - [`Scope::None`]: not at all.
//!
//! An operation asks [`require`] first (a 403 when the scope is `None`), then [`may`] for the
//! thing it touches. What a caller may not see is "not found", so ids leak nothing.

use suanwang_model::platform::{Role, TenantId};

use crate::auth::Caller;
use crate::error::Error;

/// Everything a caller can ask the control plane to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Submit a job (tenants for themselves, operators for a named tenant).
    SubmitJob,
    /// List jobs, read one, its history, logs and explanation.
    ReadJobs,
    /// Cancel a job.
    CancelJob,
    /// Create a tenant.
    CreateTenant,
    /// List tenants (names, kinds, cities).
    ReadTenants,
    /// Issue a token.
    CreateToken,
    /// Read pools, sites, links, applications, prices, the book's depth, auctions, programmes'
    /// rules; ask for a quote.
    ReadCatalogue,
    /// Drain or undrain a pool.
    DrainPool,
    /// Read the audit log and verify it.
    ReadAudit,
    /// Register a data set.
    RegisterDataset,
    /// List data sets.
    ReadDatasets,
    /// Read a tenant's balance and invoices.
    ReadTenantMoney,
    /// Record money a tenant paid in.
    Pay,
    /// Read a pool's earnings.
    ReadEarnings,
    /// Pay a provider out.
    Payout,
    /// Read the ledger: accounts, entries, the trial balance.
    ReadLedger,
    /// Open raw ledger accounts and post raw transfers.
    WriteLedger,
    /// Load (or fund) a voucher programme.
    LoadProgram,
    /// Read a programme's figures (budget used, firms).
    ReadProgramReport,
    /// End a programme's year.
    ExpireProgram,
    /// Apply to a programme, and claim a voucher.
    ApplyAndClaim,
    /// Read applications and claims.
    ReadVouchers,
    /// Approve or reject an application.
    Decide,
    /// Redeem a claim against an invoice line.
    Redeem,
    /// Place or cancel a market order (tenants buy, a pool's provider sells).
    Trade,
    /// Run a call auction now.
    RunAuction,
    /// Read contracts.
    ReadContracts,
    /// Act as a pool's agent: heartbeats, work, state, logs, usage evidence.
    Agent,
    /// Run a simulation for planning, and read one's own runs.
    Simulate,
    /// Read everyone's simulation runs.
    ReadAllSimulations,
    /// Read a tenant's quotas.
    ReadQuotas,
    /// Change a tenant's quotas.
    SetQuotas,
    /// List tokens (never their secrets).
    ReadTokens,
    /// Revoke a token.
    RevokeToken,
}

impl Action {
    /// Every action, in the table's order.
    pub const ALL: [Action; 34] = [
        Action::SubmitJob,
        Action::ReadJobs,
        Action::CancelJob,
        Action::CreateTenant,
        Action::ReadTenants,
        Action::CreateToken,
        Action::ReadCatalogue,
        Action::DrainPool,
        Action::ReadAudit,
        Action::RegisterDataset,
        Action::ReadDatasets,
        Action::ReadTenantMoney,
        Action::Pay,
        Action::ReadEarnings,
        Action::Payout,
        Action::ReadLedger,
        Action::WriteLedger,
        Action::LoadProgram,
        Action::ReadProgramReport,
        Action::ExpireProgram,
        Action::ApplyAndClaim,
        Action::ReadVouchers,
        Action::Decide,
        Action::Redeem,
        Action::Trade,
        Action::RunAuction,
        Action::ReadContracts,
        Action::Agent,
        Action::Simulate,
        Action::ReadAllSimulations,
        Action::ReadQuotas,
        Action::SetQuotas,
        Action::ReadTokens,
        Action::RevokeToken,
    ];

    /// Its words, for refusals ("a tenant token cannot {describe}").
    pub fn describe(self) -> &'static str {
        match self {
            Action::SubmitJob => "submit jobs",
            Action::ReadJobs => "read jobs",
            Action::CancelJob => "cancel jobs",
            Action::CreateTenant => "create tenants",
            Action::ReadTenants => "list tenants",
            Action::CreateToken => "issue tokens",
            Action::ReadCatalogue => "read the platform's catalogue",
            Action::DrainPool => "drain pools",
            Action::ReadAudit => "read the audit log",
            Action::RegisterDataset => "register data sets",
            Action::ReadDatasets => "list data sets",
            Action::ReadTenantMoney => "read balances and invoices",
            Action::Pay => "record payments",
            Action::ReadEarnings => "read earnings",
            Action::Payout => "pay providers out",
            Action::ReadLedger => "read the ledger",
            Action::WriteLedger => "write the ledger",
            Action::LoadProgram => "load programmes",
            Action::ReadProgramReport => "read programmes' figures",
            Action::ExpireProgram => "end programmes' years",
            Action::ApplyAndClaim => "apply for vouchers or claim them",
            Action::ReadVouchers => "read applications and claims",
            Action::Decide => "decide applications",
            Action::Redeem => "redeem claims",
            Action::Trade => "trade on the market",
            Action::RunAuction => "run auctions",
            Action::ReadContracts => "read contracts",
            Action::Agent => "act as a pool's agent",
            Action::Simulate => "run simulations",
            Action::ReadAllSimulations => "read everyone's simulations",
            Action::ReadQuotas => "read quotas",
            Action::SetQuotas => "change quotas",
            Action::ReadTokens => "list tokens",
            Action::RevokeToken => "revoke tokens",
        }
    }
}

/// How much of an action a role may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// On anything.
    All,
    /// On its own tenant's, pool's or programme's things.
    Own,
    /// Not at all.
    None,
}

/// The table: what `role` may do of `action`.
pub fn scope(role: Role, action: Action) -> Scope {
    use Action::*;
    use Scope::{All, None, Own};
    match (role, action) {
        // Everyone signed in may read the catalogue, simulate, and (only) their own things.
        (_, ReadCatalogue | Simulate) => All,
        (Role::Operator, Agent | ApplyAndClaim | Trade) => None,
        (Role::Operator, _) => All,
        (Role::Auditor, ReadJobs | ReadTenants | ReadAudit | ReadDatasets | ReadTenantMoney | ReadEarnings) => All,
        (Role::Auditor, ReadLedger | ReadProgramReport | ReadVouchers | ReadContracts | ReadAllSimulations) => All,
        (Role::Auditor, ReadQuotas | ReadTokens) => All,
        (Role::Auditor, _) => None,
        (Role::Tenant, SubmitJob | ReadJobs | CancelJob | RegisterDataset | ReadDatasets | ReadTenantMoney) => Own,
        (Role::Tenant, ApplyAndClaim | ReadVouchers | Redeem | Trade | ReadContracts | ReadQuotas) => Own,
        (Role::Tenant, _) => None,
        (Role::Provider, ReadJobs | DrainPool | ReadEarnings | Trade | ReadContracts | Agent) => Own,
        (Role::Provider, _) => None,
        (Role::ProgramAdmin, ReadProgramReport | ExpireProgram | ReadVouchers | Decide | Redeem) => Own,
        (Role::ProgramAdmin, _) => None,
    }
}

/// What a thing belongs to, for [`may`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner<'a> {
    /// The tenant whose it is.
    pub tenant: Option<TenantId>,
    /// The pool it is in.
    pub pool: Option<&'a str>,
    /// The programme it is of.
    pub program: Option<&'a str>,
}

impl<'a> Owner<'a> {
    /// A tenant's thing.
    pub fn tenant(tenant: TenantId) -> Self {
        Owner { tenant: Some(tenant), ..Owner::default() }
    }

    /// A pool's thing.
    pub fn pool(pool: &'a str) -> Self {
        Owner { pool: Some(pool), ..Owner::default() }
    }

    /// A programme's thing.
    pub fn program(program: &'a str) -> Self {
        Owner { program: Some(program), ..Owner::default() }
    }
}

/// Fails with 403 unless `caller`'s role may do some of `action`; returns how much.
pub fn require(caller: &Caller, action: Action) -> Result<Scope, Error> {
    match scope(caller.role(), action) {
        Scope::None => {
            Err(Error::forbidden(format!("a {} token cannot {}", caller.role().as_str(), action.describe())))
        }
        scope => Ok(scope),
    }
}

/// Whether `caller` may do `action` on a thing belonging to `owner`.
pub fn may(caller: &Caller, action: Action, owner: Owner<'_>) -> bool {
    match scope(caller.role(), action) {
        Scope::All => true,
        Scope::None => false,
        Scope::Own => match caller.role() {
            Role::Tenant => caller.tenant().is_some() && owner.tenant == caller.tenant(),
            Role::Provider => caller.pool().is_some() && owner.pool == caller.pool(),
            Role::ProgramAdmin => caller.program().is_some() && owner.program == caller.program(),
            Role::Operator | Role::Auditor => false,
        },
    }
}

/// The table as text, one role a column (`*` all, `own`, `-` none), for the docs and its test.
pub fn table() -> String {
    let mut out = format!("{:<20}", "action");
    for role in Role::ALL {
        out += &format!(" {:>13}", role.as_str());
    }
    out.push('\n');
    for action in Action::ALL {
        out += &format!("{:<20}", format!("{action:?}"));
        for role in Role::ALL {
            let cell = match scope(role, action) {
                Scope::All => "*",
                Scope::Own => "own",
                Scope::None => "-",
            };
            out += &format!(" {cell:>13}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use suanwang_store::model::Principal;

    use super::*;

    fn caller(role: Role, tenant: Option<i64>, scope: Option<&str>) -> Caller {
        Caller {
            principal: Principal {
                token_id: 1,
                role,
                tenant_id: tenant.map(TenantId),
                pool: scope.map(str::to_owned),
                label: String::new(),
                expires_ms: None,
            },
        }
    }

    #[test]
    fn the_table() {
        expect_test::expect![[r#"
            action                    operator      provider        tenant program-admin       auditor
            SubmitJob                        *             -           own             -             -
            ReadJobs                         *           own           own             -             *
            CancelJob                        *             -           own             -             -
            CreateTenant                     *             -             -             -             -
            ReadTenants                      *             -             -             -             *
            CreateToken                      *             -             -             -             -
            ReadCatalogue                    *             *             *             *             *
            DrainPool                        *           own             -             -             -
            ReadAudit                        *             -             -             -             *
            RegisterDataset                  *             -           own             -             -
            ReadDatasets                     *             -           own             -             *
            ReadTenantMoney                  *             -           own             -             *
            Pay                              *             -             -             -             -
            ReadEarnings                     *           own             -             -             *
            Payout                           *             -             -             -             -
            ReadLedger                       *             -             -             -             *
            WriteLedger                      *             -             -             -             -
            LoadProgram                      *             -             -             -             -
            ReadProgramReport                *             -             -           own             *
            ExpireProgram                    *             -             -           own             -
            ApplyAndClaim                    -             -           own             -             -
            ReadVouchers                     *             -           own           own             *
            Decide                           *             -             -           own             -
            Redeem                           *             -           own           own             -
            Trade                            -           own           own             -             -
            RunAuction                       *             -             -             -             -
            ReadContracts                    *           own           own             -             *
            Agent                            -           own             -             -             -
            Simulate                         *             *             *             *             *
            ReadAllSimulations               *             -             -             -             *
            ReadQuotas                       *             -           own             -             *
            SetQuotas                        *             -             -             -             -
            ReadTokens                       *             -             -             -             *
            RevokeToken                      *             -             -             -             -
        "#]]
        .assert_eq(&table());
    }

    #[test]
    fn own_means_the_callers_own() {
        let acme = caller(Role::Tenant, Some(3), None);
        assert!(may(&acme, Action::ReadJobs, Owner::tenant(TenantId(3))));
        assert!(!may(&acme, Action::ReadJobs, Owner::tenant(TenantId(4))));
        assert!(!may(&acme, Action::CreateTenant, Owner::default()));
        let agent = caller(Role::Provider, None, Some("p1"));
        assert!(may(&agent, Action::Agent, Owner::pool("p1")));
        assert!(!may(&agent, Action::Agent, Owner::pool("p2")));
        assert!(!may(&agent, Action::ReadJobs, Owner { tenant: Some(TenantId(3)), ..Owner::default() }));
        let bureau = caller(Role::ProgramAdmin, None, Some("shenzhen"));
        assert!(may(&bureau, Action::Decide, Owner::program("shenzhen")));
        assert!(!may(&bureau, Action::Decide, Owner::program("beijing")));
        // A scoped role without its scope owns nothing.
        assert!(!may(&caller(Role::Tenant, None, None), Action::ReadJobs, Owner::default()));
        assert_eq!(require(&acme, Action::Pay).unwrap_err().code, "forbidden");
        assert_eq!(require(&acme, Action::ReadJobs), Ok(Scope::Own));
    }
}
