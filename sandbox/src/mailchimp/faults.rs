//! Mailchimp fault injection: seeded random rates, a scripted queue of answers, a delay.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;

/// `PUT /admin/mailchimp/faults`; every field optional, `{}` clears.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRates {
    pub rate_429: f64,
    pub rate_500: f64,
    pub rate_503: f64,
    /// 403 with an empty body, as Mailchimp sometimes answers when over the connection limit.
    pub rate_403_empty: f64,
    /// Added to every API request while it holds its concurrency slot.
    pub delay_ms: u64,
    pub seed: u64,
}

impl FaultRates {
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            self.rate_429,
            self.rate_500,
            self.rate_503,
            self.rate_403_empty,
        ];
        if rates.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err("each rate must lie in 0..1".into());
        }
        if rates.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err("the rates must sum to at most 1".into());
        }
        Ok(())
    }
}

/// What one API request gets: served normally or an error status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Status(u16),
    /// 403 with an HTML page (`"403-html"`), as the network in front of Mailchimp answers
    /// under load: throttling, not a permission error.
    ForbiddenHtml,
    /// 403 with a problem document titled "Forbidden" (`"403-problem"`): a real permission
    /// error.
    ForbiddenProblem,
}

/// One scripted entry: `"ok"`, `"403-html"`, `"403-problem"` or an HTTP error status
/// (400..=599; 403 has an empty body).
pub fn parse_script(items: &[Value]) -> Result<Vec<Answer>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if s.eq_ignore_ascii_case("ok") => Ok(Answer::Ok),
            Value::String(s) if s.eq_ignore_ascii_case("403-html") => Ok(Answer::ForbiddenHtml),
            Value::String(s) if s.eq_ignore_ascii_case("403-problem") => {
                Ok(Answer::ForbiddenProblem)
            }
            Value::Number(n) => match n.as_u64() {
                Some(200) => Ok(Answer::Ok),
                Some(code @ 400..=599) => Ok(Answer::Status(code as u16)),
                _ => Err(format!(
                    "responses[{i}]: {n} is not 200 or an error status 400..599"
                )),
            },
            other => Err(format!(
                "responses[{i}]: {other} is neither \"ok\", \"403-html\", \"403-problem\" nor a status"
            )),
        })
        .collect()
}

pub struct Faults {
    rates: Mutex<FaultRates>,
    rng: Mutex<ChaCha8Rng>,
    script: Mutex<VecDeque<Answer>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rates: Mutex::new(FaultRates::default()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
            script: Mutex::new(VecDeque::new()),
        }
    }
}

impl Faults {
    pub fn rates(&self) -> FaultRates {
        self.rates.lock().expect("faults lock").clone()
    }

    /// Replaces the rates and reseeds, so the same settings replay the same faults.
    pub fn set_rates(&self, rates: FaultRates) {
        *self.rng.lock().expect("rng lock") = ChaCha8Rng::seed_from_u64(rates.seed);
        *self.rates.lock().expect("faults lock") = rates;
    }

    pub fn push_script(&self, answers: Vec<Answer>) -> usize {
        let mut s = self.script.lock().expect("script lock");
        s.extend(answers);
        s.len()
    }

    pub fn clear_script(&self) -> usize {
        let mut s = self.script.lock().expect("script lock");
        let n = s.len();
        s.clear();
        n
    }

    pub fn delay_ms(&self) -> u64 {
        self.rates.lock().expect("faults lock").delay_ms
    }

    /// The scripted answer first, then the random rates.
    pub fn next(&self) -> Answer {
        if let Some(a) = self.script.lock().expect("script lock").pop_front() {
            return a;
        }
        let r = self.rates();
        let table = [
            (r.rate_429, 429),
            (r.rate_500, 500),
            (r.rate_503, 503),
            (r.rate_403_empty, 403),
        ];
        if table.iter().all(|(rate, _)| *rate <= 0.0) {
            return Answer::Ok;
        }
        let mut x: f64 = self.rng.lock().expect("rng lock").gen();
        for (rate, code) in table {
            if x < rate {
                return Answer::Status(code);
            }
            x -= rate;
        }
        Answer::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn script_first_then_seeded_rates() {
        let f = Faults::default();
        let script = parse_script(&[json!(429), json!("ok"), json!(500)]).unwrap();
        f.push_script(script);
        assert_eq!(f.next(), Answer::Status(429));
        assert_eq!(f.next(), Answer::Ok);
        assert_eq!(f.next(), Answer::Status(500));
        assert_eq!(f.next(), Answer::Ok);
        let rates = FaultRates {
            rate_503: 0.3,
            seed: 9,
            ..Default::default()
        };
        f.set_rates(rates.clone());
        let a: Vec<_> = (0..100).map(|_| f.next()).collect();
        f.set_rates(rates);
        let b: Vec<_> = (0..100).map(|_| f.next()).collect();
        assert_eq!(a, b);
        let n = a.iter().filter(|x| **x == Answer::Status(503)).count();
        assert!((15..45).contains(&n), "{n}");
        assert!(parse_script(&[json!(302)]).is_err());
        assert!(parse_script(&[json!("nope")]).is_err());
        assert_eq!(
            parse_script(&[json!("403-html"), json!("403-problem")]).unwrap(),
            vec![Answer::ForbiddenHtml, Answer::ForbiddenProblem]
        );
        assert!(FaultRates {
            rate_429: 0.7,
            rate_500: 0.7,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
