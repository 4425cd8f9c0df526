//! What the sink learns from a serialized pino line without parsing it as JSON: the numeric
//! `"level"`, the `"time"` (ms since the epoch) and a configurable trace-id field. A cheap
//! scan for the first occurrence of `"level":`, `"time":` and `"<field>":"` in the bytes;
//! pino writes these top-level keys first, so the first occurrence is the top-level one in
//! practice (a line whose message text contains such a key before the real one would be
//! misread; the store keeps the line intact, only its index entry is affected).

/// The fields the sink indexes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineMeta<'a> {
    /// The numeric `"level"` value.
    pub level: Option<u32>,
    /// The numeric `"time"` value (ms since the epoch).
    pub time: Option<i64>,
    /// The trace-id string (bytes between the quotes, unescaped bytes as written).
    pub trace: Option<&'a [u8]>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

fn number_after(line: &[u8], key: &[u8]) -> Option<i64> {
    let at = find(line, key)? + key.len();
    let rest = &line[at..];
    let rest = match rest.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(p) => &rest[p..],
        None => return None,
    };
    let (neg, digits) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        _ => (false, rest),
    };
    let mut n: i64 = 0;
    let mut any = false;
    for &b in digits.iter().take(19) {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(if neg { -n } else { n })
}

/// Scans `line` for its level, time and the string field `trace_key`, which is the
/// field's name already wrapped as `"name":"` (see [`trace_key`]); an empty `trace_key`
/// skips the trace scan.
pub fn scan<'a>(line: &'a [u8], trace_key: &[u8]) -> LineMeta<'a> {
    let level = number_after(line, b"\"level\":").and_then(|v| u32::try_from(v).ok());
    let time = number_after(line, b"\"time\":");
    let trace = if trace_key.is_empty() {
        None
    } else {
        find(line, trace_key).and_then(|at| {
            let start = at + trace_key.len();
            let end = line[start..].iter().position(|&b| b == b'"')?;
            Some(&line[start..start + end])
        })
    };
    LineMeta { level, time, trace }
}

/// The `"msg"` string's bytes as written (escapes kept), for the sampler's key; empty when
/// the line has none.
pub fn msg(line: &[u8]) -> &[u8] {
    const KEY: &[u8] = b"\"msg\":\"";
    let Some(at) = find(line, KEY) else {
        return b"";
    };
    let start = at + KEY.len();
    let mut i = start;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 2,
            b'"' => return &line[start..i],
            _ => i += 1,
        }
    }
    &line[start..]
}

/// The search key for a trace-id field name: `"name":"`.
pub fn trace_key(field: &str) -> Vec<u8> {
    if field.is_empty() {
        return Vec::new();
    }
    format!("\"{field}\":\"").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pino_line() {
        let line = br#"{"level":40,"time":1733600000123,"pid":7,"hostname":"h","traceId":"abc-1","msg":"slow"}"#;
        let m = scan(line, &trace_key("traceId"));
        assert_eq!(m.level, Some(40));
        assert_eq!(m.time, Some(1_733_600_000_123));
        assert_eq!(m.trace, Some(&b"abc-1"[..]));
    }

    #[test]
    fn message_with_escapes() {
        assert_eq!(msg(br#"{"msg":"a \"q\" b","x":1}"#), br#"a \"q\" b"#);
        assert_eq!(msg(br#"{"level":30}"#), b"");
    }

    #[test]
    fn missing_and_odd_fields() {
        assert_eq!(scan(b"plain text\n", b""), LineMeta::default());
        let m = scan(br#"{"level":"info","time": 12}"#, b"");
        assert_eq!((m.level, m.time), (None, Some(12)));
        let m = scan(br#"{"level":-3,"time":-5}"#, b"");
        assert_eq!((m.level, m.time), (None, Some(-5)));
        let m = scan(br#"{"level":99999999999999999999999}"#, b"");
        assert_eq!(m.level, None);
        assert_eq!(
            scan(br#"{"traceId":"unterminated"#, &trace_key("traceId")).trace,
            None
        );
    }
}
