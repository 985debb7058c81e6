//! Schemas held strictly (the API document's tests).

use serde_json::Value;

/// Makes every object schema that lists its properties closed (`unevaluatedProperties: false`,
/// unless it says otherwise): a field the daemon sends that the document does not name is a
/// disagreement too, so a renamed field cannot slip through.
pub fn close_objects(v: &mut Value) {
    close(v, true);
}

fn close(v: &mut Value, close_here: bool) {
    match v {
        Value::Object(map) => {
            let closable = (map.get("properties").is_some_and(Value::is_object)
                || map.contains_key("allOf"))
                && !map.contains_key("additionalProperties")
                && !map.contains_key("unevaluatedProperties");
            for (k, child) in map.iter_mut() {
                match (k.as_str(), child) {
                    // `properties` holds schemas by field name, never a schema itself.
                    ("properties", Value::Object(fields)) => {
                        fields.values_mut().for_each(|f| close(f, true));
                    }
                    // An `allOf`'s parts each see only their own fields: the whole is closed
                    // where they meet, not part by part.
                    ("allOf", Value::Array(parts)) => {
                        parts.iter_mut().for_each(|p| close(p, false));
                    }
                    // A problem document may carry extension members (RFC 9457 §3.2).
                    ("Problem", child) => close(child, false),
                    (_, child) => close(child, true),
                }
            }
            if closable && close_here {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| close(i, true)),
        _ => {}
    }
}
