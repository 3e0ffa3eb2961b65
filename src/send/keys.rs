//! Retry keys. LINE remembers an `X-Line-Retry-Key` per channel for 24 hours, whatever
//! database sent it: a derived key must name the installation as well as what it delivers, or a
//! second database on the same channel reuses keys LINE has seen and its messages are lost.

use rusqlite::Connection;
use uuid::Uuid;

/// The installation's random id, made with the database (kept by backups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation(Uuid);

impl Installation {
    /// Reads the installation id of a migrated database.
    pub fn load(conn: &Connection) -> anyhow::Result<Self> {
        let hex: String = conn.query_row(
            "SELECT installation_id FROM installation WHERE id = 1",
            [],
            |r| r.get(0),
        )?;
        let id = Uuid::try_parse(&hex)
            .map_err(|_| anyhow::anyhow!("the database's installation id is malformed"))?;
        Ok(Self(id))
    }

    /// An installation with a given id (tests).
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The key of a daily push: the same push of the same installation always gets the same
    /// key; another installation never does. It names the LINE user, not the internal id, which
    /// a new reader can inherit after an erasure (SQLite reuses the highest rowid).
    pub fn delivery_key(&self, line_user_id: &str, date: chrono::NaiveDate, seq: u32) -> Uuid {
        Uuid::new_v5(
            &self.0,
            format!("yorisoi/delivery/{line_user_id}/{date}/{seq}").as_bytes(),
        )
    }

    /// The key of a broadcast's batch. A broadcast carries its own random id, so a database
    /// restored from a backup that reuses a broadcast's number never reuses its keys.
    pub fn broadcast_key(&self, broadcast: Uuid, batch: usize) -> Uuid {
        Uuid::new_v5(
            &self.0,
            format!("yorisoi/broadcast/{broadcast}/{batch}").as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_within_and_distinct_across_installations() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let a = Installation::from_uuid(Uuid::from_u128(1));
        let b = Installation::from_uuid(Uuid::from_u128(2));
        let (u7, u8) = ("U7", "U8");
        assert_eq!(a.delivery_key(u7, d, 0), a.delivery_key(u7, d, 0));
        assert_ne!(a.delivery_key(u7, d, 0), b.delivery_key(u7, d, 0));
        assert_ne!(a.delivery_key(u7, d, 0), a.delivery_key(u7, d, 1));
        assert_ne!(a.delivery_key(u7, d, 0), a.delivery_key(u8, d, 0));
        assert_ne!(
            a.delivery_key(u7, d, 0),
            a.delivery_key(u7, d.succ_opt().unwrap(), 0)
        );
    }

    #[test]
    fn every_new_database_gets_its_own_installation() {
        let ids: Vec<Installation> = (0..2)
            .map(|_| {
                let mut c = Connection::open_in_memory().unwrap();
                crate::store::migrate(&mut c).unwrap();
                Installation::load(&c).unwrap()
            })
            .collect();
        assert_ne!(ids[0], ids[1]);
    }
}
