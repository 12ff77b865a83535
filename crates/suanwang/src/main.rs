//! `suanwang`: the command-line entry point. This crate is the edge: it reads files, spawns
//! threads, draws progress bars and prints; everything it computes comes from the pure crates.

mod args;
mod bench_abuse;
mod bench_api;
mod bench_cmd;
mod bench_ledger;
mod bench_market;
mod client_cmd;
mod error;
mod federation_cmd;
mod input;
mod money_cmd;
mod output;
mod parallel;
mod queue_cmd;
mod serve_cmd;
mod simulate_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{AuditCommand, BenchCommand, Cli, Command, FederationCommand, SimulateCommand, TraceCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Federation(FederationCommand::Show(show)) => federation_cmd::show(&show),
        Command::Catalog(catalog) => federation_cmd::catalog(&catalog),
        Command::Simulate(SimulateCommand::Placement(placement)) => simulate_cmd::placement(&placement),
        Command::Simulate(SimulateCommand::Queue(queue)) => queue_cmd::simulate(&queue),
        Command::Trace(TraceCommand::Convert(convert)) => queue_cmd::convert(&convert),
        Command::Bench(BenchCommand::Scheduler(bench)) => bench_cmd::scheduler(&bench),
        Command::Bench(BenchCommand::Api(bench)) => bench_api::run(&bench),
        Command::Bench(BenchCommand::Abuse(bench)) => bench_abuse::run(&bench),
        Command::Bench(BenchCommand::Ledger(bench)) => bench_ledger::run(&bench),
        Command::Bench(BenchCommand::Auction(bench)) => bench_market::run(&bench),
        Command::Serve(serve) => serve_cmd::serve(&serve),
        Command::Agent(agent) => serve_cmd::agent(&agent),
        Command::SandboxExec(sandbox) => serve_cmd::sandbox_exec(&sandbox),
        Command::Audit(AuditCommand::Verify(verify)) => serve_cmd::audit_verify(&verify),
        Command::Audit(AuditCommand::Head(head)) => serve_cmd::audit_head(&head),
        Command::Job(job) => client_cmd::job(&job),
        Command::Pool(pool) => client_cmd::pool(&pool),
        Command::Tenant(tenant) => client_cmd::tenant(&tenant),
        Command::Token(token) => client_cmd::token(&token),
        Command::App(app) => client_cmd::app(&app),
        Command::Dataset(dataset) => client_cmd::dataset(&dataset),
        Command::Program(c) => money_cmd::program(&c),
        Command::Voucher(c) => money_cmd::voucher(&c),
        Command::Invoice(c) => money_cmd::invoice(&c),
        Command::Money(c) => money_cmd::money(&c),
        Command::Market(c) => money_cmd::market(&c),
        Command::Quote(args) => money_cmd::quote(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(error.exit_code())
        }
    }
}
