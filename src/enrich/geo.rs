//! (stub until the GeoIP module lands)
use crate::click::Geo;
use std::net::IpAddr;
use std::path::PathBuf;
#[derive(Debug, thiserror::Error)]
#[error("geo")]
pub struct GeoError;
pub struct GeoDb;
impl GeoDb {
    pub fn open(_paths: &[PathBuf]) -> Result<GeoDb, GeoError> {
        Ok(GeoDb)
    }
    pub fn lookup(&self, _ip: IpAddr) -> Option<Geo> {
        None
    }
}
