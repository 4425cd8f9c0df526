//! The fault model's settings: what a [`FaultVfs`](super::FaultVfs) injects, and the spec
//! string (`URINGDB_FAULT`) they are parsed from.

/// What [`FaultVfs`](super::FaultVfs) injects. `FaultConfig::default()` injects nothing (buffering only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultConfig {
    /// Once the total bytes accepted by `write_at` would exceed this, `write_at` fails with
    /// `errno` (and keeps failing).
    pub fail_write_after_bytes: Option<u64>,
    /// The n-th sync (1-based, counted over all files) fails with `errno`.
    pub fail_sync_nth: Option<u64>,
    /// The errno of injected write and sync failures; `libc::EIO` by default.
    pub errno: i32,
    /// `allocate()` fails with `ENOSPC` once the total bytes allocated would exceed this.
    pub enospc_allocate_after_bytes: Option<u64>,
    /// The sync failure injected by `fail_sync_nth` persists the file's pending bytes before
    /// it reports the error (the bytes reached the disk; the caller cannot know).
    pub sync_fail_persists: bool,
    /// Every standalone sync ([`File::sync_data`](crate::File::sync_data)) completes this
    /// many microseconds after it is issued, and covers only the writes made before it was
    /// issued (writes made meanwhile stay unsynced): a slow device, so that a test can hold
    /// one fdatasync in flight while later writes happen. 0 (the default): syncs are
    /// immediate.
    pub sync_delay_us: u64,
    /// Directory entries are volatile too: a file's creation, removal or rename that no
    /// `sync_dir` of its directory followed is undone by a crash ([`FaultVfs::crash`] and
    /// its variants; see `dirlog.rs`). Off by default. In-process crashes only: a killed
    /// process leaves its directory operations in place.
    ///
    /// [`FaultVfs::crash`]: super::FaultVfs::crash
    pub lose_unsynced_dir_ops: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            fail_write_after_bytes: None,
            fail_sync_nth: None,
            errno: libc::EIO,
            enospc_allocate_after_bytes: None,
            sync_fail_persists: false,
            sync_delay_us: 0,
            lose_unsynced_dir_ops: false,
        }
    }
}

impl FaultConfig {
    /// Parses a spec such as `"drop-unsynced"` (no faults, just buffering) or
    /// `"drop-unsynced,fail_sync_nth=5,errno=EIO"`: comma-separated items, each either the
    /// flag `drop-unsynced` (buffering is always on; the flag documents it), the flag
    /// `sync_fail_persists` (see [`FaultConfig::sync_fail_persists`]), or `key=value` with
    /// keys `fail_write_after_bytes`, `fail_sync_nth` (>= 1), `enospc_allocate_after_bytes`,
    /// `sync_delay_us`
    /// (unsigned integers) and `errno` (`EIO` or `ENOSPC`). Each key at most once.
    pub fn from_env_str(s: &str) -> Result<FaultConfig, String> {
        let mut config = FaultConfig::default();
        if s.trim().is_empty() {
            return Err("empty fault spec; expected e.g. 'drop-unsynced' or \
                        'drop-unsynced,fail_sync_nth=5,errno=EIO'"
                .to_string());
        }
        let mut seen: Vec<&str> = Vec::new();
        for item in s.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!("empty item in fault spec {s:?}"));
            }
            if item == "drop-unsynced" {
                continue;
            }
            if item == "sync_fail_persists" {
                config.sync_fail_persists = true;
                continue;
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!(
                    "fault spec item {item:?} is neither 'drop-unsynced', 'sync_fail_persists' \
                     nor key=value"
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(format!("fault spec key {key:?} given twice"));
            }
            seen.push(key);
            let number = || -> Result<u64, String> {
                value.parse::<u64>().map_err(|_| {
                    format!("fault spec {key}={value:?}: expected an unsigned integer")
                })
            };
            match key {
                "fail_write_after_bytes" => config.fail_write_after_bytes = Some(number()?),
                "fail_sync_nth" => {
                    let n = number()?;
                    if n == 0 {
                        return Err("fault spec fail_sync_nth is 1-based; 0 never fires".into());
                    }
                    config.fail_sync_nth = Some(n);
                }
                "enospc_allocate_after_bytes" => {
                    config.enospc_allocate_after_bytes = Some(number()?)
                }
                "sync_delay_us" => config.sync_delay_us = number()?,
                "errno" => {
                    config.errno = match value {
                        "EIO" => libc::EIO,
                        "ENOSPC" => libc::ENOSPC,
                        _ => {
                            return Err(format!(
                                "fault spec errno={value:?}: expected EIO or ENOSPC"
                            ))
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "unknown fault spec key {key:?}; expected fail_write_after_bytes, \
                         fail_sync_nth, errno, enospc_allocate_after_bytes or sync_delay_us"
                    ))
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            FaultConfig::from_env_str("drop-unsynced").unwrap(),
            FaultConfig::default()
        );
        let c = FaultConfig::from_env_str("drop-unsynced,fail_sync_nth=5,errno=EIO").unwrap();
        assert_eq!(c.fail_sync_nth, Some(5));
        assert_eq!(c.errno, libc::EIO);
        let c = FaultConfig::from_env_str(
            " drop-unsynced , fail_write_after_bytes=4096, errno=ENOSPC, \
             enospc_allocate_after_bytes=1048576",
        )
        .unwrap();
        assert_eq!(c.fail_write_after_bytes, Some(4096));
        assert_eq!(c.errno, libc::ENOSPC);
        assert_eq!(c.enospc_allocate_after_bytes, Some(1 << 20));
        assert_eq!(c.fail_sync_nth, None);
    }

    #[test]
    fn rejects_bad_specs() {
        for (spec, needle) in [
            ("", "empty"),
            ("drop-unsynced,", "empty item"),
            ("fail_sync_nth=0", "1-based"),
            ("fail_sync_nth=x", "unsigned integer"),
            ("fail_sync_nth=-1", "unsigned integer"),
            ("errno=EPERM", "EIO or ENOSPC"),
            ("bogus=1", "unknown fault spec key"),
            ("drop-everything", "neither"),
            ("fail_sync_nth=1,fail_sync_nth=2", "twice"),
        ] {
            let err = FaultConfig::from_env_str(spec).unwrap_err();
            assert!(err.contains(needle), "{spec:?} -> {err}");
        }
    }
}
