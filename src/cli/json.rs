//! JSON for people: objects indented one key a line, arrays of plain values (numbers, strings) on one
//! line, so a confusion matrix reads as one row a line.

use serde_json::Value;

/// `value` as indented JSON with arrays of scalars kept on one line.
pub fn to_string_compact_arrays(value: &Value) -> String {
    let mut out = String::new();
    write(value, 0, &mut out);
    out
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn write(value: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize| "  ".repeat(d);
    match value {
        Value::Array(items) if items.iter().all(is_scalar) => {
            let items: Vec<String> = items.iter().map(|v| v.to_string()).collect();
            out.push('[');
            out.push_str(&items.join(", "));
            out.push(']');
        }
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write(v, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push_str("{\n");
            for (i, (k, v)) in map.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write(v, depth + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_numbers_stay_on_one_line_and_the_text_parses_back() {
        let v = serde_json::json!({"map": 0.5, "counts": [[1, 2], [3, 4]], "names": ["a", "b"], "empty": [], "o": {}});
        let text = to_string_compact_arrays(&v);
        assert!(text.contains("\n    [1, 2],\n    [3, 4]\n"), "{text}");
        assert!(text.contains("\"names\": [\"a\", \"b\"]"), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }
}
