//! Escaping of every value written into a page, per format. All of them drop control
//! characters (other than tab and line feed), which are never legitimate in a page
//! and are not allowed in XML 1.0.

/// Bytes that [`push_html`] and [`push_text`] must not copy as they are: 1 for a
/// control character (dropped), 2 for a markup character (replaced by an entity).
static SPECIAL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = 1;
        b += 1;
    }
    t[b'\t' as usize] = 0;
    t[b'\n' as usize] = 0;
    t[0x7f] = 1;
    t[b'&' as usize] = 2;
    t[b'<' as usize] = 2;
    t[b'>' as usize] = 2;
    t[b'"' as usize] = 2;
    t[b'\'' as usize] = 2;
    t
};

/// HTML text and attribute values (double- or single-quoted), and XML.
pub(crate) fn push_html(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if SPECIAL[usize::from(b)] == 0 {
            continue;
        }
        out.push_str(&s[start..i]);
        out.push_str(match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => "",
        });
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// The inside of a JSON string. `<`, `>`, `&`, U+2028 and U+2029 are escaped too, so
/// the text is safe wherever a JSON document could end up embedded.
pub(crate) fn push_json(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            '\0'..'\u{20}' | '\u{7f}' => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
}

/// Plain text: control characters dropped, nothing else changed.
pub(crate) fn push_text(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if SPECIAL[usize::from(b)] == 1 {
            out.push_str(&s[start..i]);
            start = i + 1;
        }
    }
    out.push_str(&s[start..]);
}

/// Writes a catalogue message, replacing each `{name}` found in `vars` by its value;
/// the message and the values both go through `esc`. Unknown placeholders are kept
/// as written.
pub(crate) fn push_template(
    out: &mut String,
    tpl: &str,
    vars: &[(&str, &str)],
    esc: fn(&mut String, &str),
) {
    fill(out, tpl, vars, esc, esc);
}

/// [`push_template`] for a message already escaped with `esc` (escaping leaves
/// `{name}` placeholders as they are): the message is copied, the values go through
/// `esc`.
pub(crate) fn push_escaped_template(
    out: &mut String,
    tpl: &str,
    vars: &[(&str, &str)],
    esc: fn(&mut String, &str),
) {
    fill(out, tpl, vars, |o, s| o.push_str(s), esc);
}

fn fill(
    out: &mut String,
    tpl: &str,
    vars: &[(&str, &str)],
    tpl_esc: fn(&mut String, &str),
    esc: fn(&mut String, &str),
) {
    let mut rest = tpl;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + len];
        match vars.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                tpl_esc(out, &rest[..open]);
                esc(out, v);
            }
            None => tpl_esc(out, &rest[..open + len + 1]),
        }
        rest = &rest[open + len + 1..];
    }
    tpl_esc(out, rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: fn(&mut String, &str), s: &str) -> String {
        let mut o = String::new();
        f(&mut o, s);
        o
    }

    #[test]
    fn html() {
        assert_eq!(
            run(push_html, "a<script>\"x\"&'y']]>é\u{1}\n"),
            "a&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;]]&gt;é\n"
        );
        assert_eq!(run(push_html, "plain"), "plain");
    }

    #[test]
    fn json() {
        let out = run(push_json, "a\"\\</script>&\u{2028}\u{1}\né");
        assert_eq!(out, "a\\\"\\\\\\u003c/script\\u003e\\u0026\\u2028\\né");
        let parsed: String = serde_json::from_str(&format!("\"{out}\"")).unwrap();
        assert_eq!(parsed, "a\"\\</script>&\u{2028}\né");
    }

    #[test]
    fn text() {
        assert_eq!(run(push_text, "a\u{1b}[31mb\r\nc"), "a[31mb\nc");
    }

    #[test]
    fn templates() {
        let mut o = String::new();
        push_template(
            &mut o,
            "Back at {time} {other} {",
            &[("time", "<12:00>")],
            push_html,
        );
        assert_eq!(o, "Back at &lt;12:00&gt; {other} {");
        // Escaping the message first, then filling it in, gives the same text.
        for tpl in [
            "Back <at> {time} {other} {",
            "{time}&{time}",
            "'{x}' {",
            "}{time",
        ] {
            let mut escaped = String::new();
            push_html(&mut escaped, tpl);
            let (mut a, mut b) = (String::new(), String::new());
            let vars = [("time", "<12:00> & \"x\"")];
            push_template(&mut a, tpl, &vars, push_html);
            push_escaped_template(&mut b, &escaped, &vars, push_html);
            assert_eq!(a, b, "{tpl}");
        }
    }
}
