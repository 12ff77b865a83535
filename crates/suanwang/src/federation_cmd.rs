//! `suanwang federation show` and `suanwang catalog`.

use crate::args::{CatalogArgs, FederationShowArgs};
use crate::error::CliError;

pub fn show(_args: &FederationShowArgs) -> Result<(), CliError> {
    Err(CliError::internal("unimplemented", "federation show is not written yet"))
}

pub fn catalog(_args: &CatalogArgs) -> Result<(), CliError> {
    Err(CliError::internal("unimplemented", "catalog is not written yet"))
}
