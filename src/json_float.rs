//! Serde for f64 figures that may be NaN ("not measured", e.g. an accuracy over zero held-out
//! items): JSON has no NaN, and serde_json writes it as `null`, which an `f64` field does not
//! read back. With `#[serde(with = "crate::json_float::nan_as_null")]` NaN is written as `null`
//! and `null` is read as NaN, so such files load again.

/// NaN ↔ `null`.
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes NaN as `null`, other values as numbers.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Figure {
        #[serde(with = "super::nan_as_null")]
        v: f64,
    }

    #[test]
    fn nan_round_trips_through_null_and_numbers_stay_numbers() {
        let text = serde_json::to_string(&Figure { v: f64::NAN }).unwrap();
        assert_eq!(text, r#"{"v":null}"#);
        assert!(serde_json::from_str::<Figure>(&text).unwrap().v.is_nan());
        let text = serde_json::to_string(&Figure { v: 0.25 }).unwrap();
        assert_eq!(text, r#"{"v":0.25}"#);
        assert_eq!(serde_json::from_str::<Figure>(&text).unwrap().v, 0.25);
    }
}
