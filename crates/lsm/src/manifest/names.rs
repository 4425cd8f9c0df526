//! The names of the files a manifest knows: tables and manifests (CURRENT's own name and
//! its temporary names live in [`super::current`]).

/// The file name (not path) of table `number`: `000042.sst`.
pub fn table_file_name(number: u64) -> String {
    format!("{number:06}.sst")
}

/// The file name (not path) of manifest `number`: `MANIFEST-000042`.
pub fn manifest_file_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// The number of a manifest file name in canonical form ([`manifest_file_name`]); `None`
/// for any other name.
pub(crate) fn parse_manifest_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("MANIFEST-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    (manifest_file_name(number) == name).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(table_file_name(7), "000007.sst");
        assert_eq!(table_file_name(1_234_567), "1234567.sst");
        assert_eq!(manifest_file_name(7), "MANIFEST-000007");
        assert_eq!(manifest_file_name(1_234_567), "MANIFEST-1234567");
    }

    #[test]
    fn parses_only_canonical_manifest_names() {
        assert_eq!(parse_manifest_file_name("MANIFEST-000007"), Some(7));
        assert_eq!(
            parse_manifest_file_name("MANIFEST-1234567"),
            Some(1_234_567)
        );
        for bad in [
            "MANIFEST-",
            "MANIFEST-7",
            "MANIFEST-0000007",
            "MANIFEST-00000x",
            "MANIFEST-000007.tmp",
            "manifest-000007",
            "MANIFEST-+00007",
            "MANIFEST-99999999999999999999999",
            "CURRENT",
        ] {
            assert_eq!(parse_manifest_file_name(bad), None, "{bad}");
        }
    }
}
