//! Text at the door: the one rule for what a string from outside may hold.
//!
//! No string anywhere in a request may hold a control character other than tab, line feed and
//! carriage return: not NUL (PostgreSQL cannot store it), not escape sequences (terminals),
//! not the C1 range. Names, labels and references ([`TextKind::Line`]) may not hold those three
//! either, nor the bidirectional-override characters that make a name read as another. The
//! server applies [`first_bad_string`] to every JSON body and [`uri_is_clean`] to every URI
//! before a handler runs; the control plane applies [`check`] with each field's kind and length
//! where it knows the field.

/// What a string is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// A name, label or reference: one line, no control or bidirectional-override characters.
    Line,
    /// Free text (a command argument, a script, a description, an environment value): may also
    /// hold tab, line feed and carriage return.
    Lines,
}

/// Why a string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextError {
    /// Longer than its limit.
    TooLong {
        /// The limit, bytes of UTF-8.
        max_bytes: usize,
    },
    /// Holds a character it may not.
    Forbidden(char),
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextError::TooLong { max_bytes } => write!(f, "is longer than {max_bytes} bytes"),
            TextError::Forbidden(c) => write!(f, "holds the control character U+{:04X}", u32::from(*c)),
        }
    }
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// The first character of `value` that `kind` forbids.
pub fn forbidden_char(value: &str, kind: TextKind) -> Option<char> {
    value.chars().find(|&c| match kind {
        TextKind::Lines => c.is_control() && !matches!(c, '\t' | '\n' | '\r'),
        TextKind::Line => c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}'),
    })
}

/// Checks one string against its kind and limit.
pub fn check(value: &str, kind: TextKind, max_bytes: usize) -> Result<(), TextError> {
    if value.len() > max_bytes {
        return Err(TextError::TooLong { max_bytes });
    }
    match forbidden_char(value, kind) {
        Some(c) => Err(TextError::Forbidden(c)),
        None => Ok(()),
    }
}

/// The path (`command[2]`, `latency.site`) and character of the first string in `value` (keys
/// included) holding a character that no field may hold ([`TextKind::Lines`]).
pub fn first_bad_string(value: &serde_json::Value) -> Option<(String, char)> {
    fn walk(value: &serde_json::Value, path: &mut String) -> Option<char> {
        match value {
            serde_json::Value::String(s) => forbidden_char(s, TextKind::Lines),
            serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if found.is_none() {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if let Some(c) = forbidden_char(key, TextKind::Lines) {
                    return Some(c);
                }
                let found = walk(item, path);
                if found.is_none() {
                    path.truncate(len);
                }
                found
            }),
            _ => None,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).map(|c| (path, c))
}

/// False when a URI's path or query carries a control character, percent-encoded (`%00`,
/// `%1B`, `%7F`, or a C1 character as `%C2%80`–`%C2%9F`); raw ones never get this far.
pub fn uri_is_clean(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let hex = |i: usize| -> Option<u8> {
        let text = std::str::from_utf8(bytes.get(i..i + 2)?).ok()?;
        u8::from_str_radix(text, 16).ok()
    };
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = hex(i + 1)
        {
            if byte < 0x20 || byte == 0x7F {
                return false;
            }
            if byte == 0xC2
                && bytes.get(i + 3) == Some(&b'%')
                && hex(i + 4).is_some_and(|next| (0x80..=0x9F).contains(&next))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_clean_lines_and_free_text_may_break_lines() {
        assert_eq!(check("训练-7b", TextKind::Line, 128), Ok(()));
        assert_eq!(check("a\tb", TextKind::Line, 128), Err(TextError::Forbidden('\t')));
        assert_eq!(check("admin\u{202E}txt", TextKind::Line, 128), Err(TextError::Forbidden('\u{202E}')));
        assert_eq!(check("for i in 1 2\ndo echo $i\tok\r\ndone", TextKind::Lines, 128), Ok(()));
        assert_eq!(check("a\0b", TextKind::Lines, 128), Err(TextError::Forbidden('\0')));
        assert_eq!(check("\u{1b}[2J", TextKind::Lines, 128), Err(TextError::Forbidden('\u{1b}')));
        assert_eq!(check("\u{85}", TextKind::Lines, 128), Err(TextError::Forbidden('\u{85}')));
        assert_eq!(check("长长", TextKind::Line, 5), Err(TextError::TooLong { max_bytes: 5 }));
    }

    #[test]
    fn the_first_bad_string_is_found_with_its_path() {
        let body = serde_json::json!({"name": "ok", "command": ["sh", "-c", "echo\u{0}"], "latency": {"site": "x"}});
        assert_eq!(first_bad_string(&body), Some(("command[2]".to_owned(), '\0')));
        let nested = serde_json::json!({"latency": {"site": "a\u{7}"}});
        assert_eq!(first_bad_string(&nested), Some(("latency.site".to_owned(), '\u{7}')));
        let key = serde_json::json!({"env": {"A\u{0}": "1"}});
        assert_eq!(first_bad_string(&key), Some(("env.A\u{0}".to_owned(), '\0')));
        assert_eq!(first_bad_string(&serde_json::json!({"a": ["x\ny", 1, null]})), None);
    }

    #[test]
    fn encoded_control_characters_in_a_uri_are_found() {
        assert!(uri_is_clean("/api/v1/jobs?state=queued&tenant=%E7%AE%97"));
        assert!(uri_is_clean("/api/v1/pools/a%20b?x=100%"));
        assert!(!uri_is_clean("/api/v1/pools/a%00"));
        assert!(!uri_is_clean("/api/v1/jobs?tenant=%1b%5b"));
        assert!(!uri_is_clean("/api/v1/jobs?tenant=%c2%85"));
        assert!(!uri_is_clean("/x?%7F"));
    }

    proptest::proptest! {
        #[test]
        fn what_check_accepts_has_no_control_characters(s in ".{0,40}") {
            if check(&s, TextKind::Line, 1000).is_ok() {
                proptest::prop_assert!(!s.chars().any(char::is_control));
            }
            if check(&s, TextKind::Lines, 1000).is_ok() {
                proptest::prop_assert!(!s.contains('\0'));
            }
        }
    }
}
