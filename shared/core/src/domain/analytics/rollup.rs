//! The donor rollup: every donor's successful gifts, packed [`DONORS_PER_ROLLUP`] supporters
//! to an item in a compact text form. It holds exactly what the donor fold reads from the
//! supporter gift index (date, gross, net, campaign of each successful gift, in index order),
//! so a report folded from it equals one folded from the index for every window, at a
//! fraction of the items and bytes. Supporters without a successful gift are left out: the
//! fold counts nothing for them (a failing plan alone is added when the fold finishes).

use super::donors::Gift;

/// Supporters `[b × N, (b + 1) × N)` share rollup item `b`: small enough that recomputing
/// one bucket after a change reads a few hundred index entries, large enough that a report
/// of a million supporters reads some sixteen thousand items.
pub const DONORS_PER_ROLLUP: u64 = 64;

/// The bucket of a supporter.
pub fn bucket_of(supporter: u64) -> u64 {
    supporter / DONORS_PER_ROLLUP
}

/// The first and last supporter id of a bucket.
pub fn bucket_bounds(bucket: u64) -> (u64, u64) {
    let lo = bucket * DONORS_PER_ROLLUP;
    (lo, lo + DONORS_PER_ROLLUP - 1)
}

/// One donor's successful gifts in index (transaction id) order.
pub type DonorGifts = (u64, Vec<Gift>);

/// One line per donor, in the order given: `<supporter>:<date>,<gross>,<net>,<campaign>;…`
/// (dates in Unix seconds, amounts in cents, the campaign empty when there is none).
pub fn encode(donors: &[DonorGifts]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(donors.len() * 48);
    for (id, gifts) in donors {
        let _ = write!(out, "{id}:");
        for (i, g) in gifts.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            let _ = write!(out, "{},{},{},", g.date, g.gross, g.net);
            if let Some(c) = g.campaign {
                let _ = write!(out, "{c}");
            }
        }
        out.push('\n');
    }
    out
}

/// The inverse of [`encode`]; an error names what does not parse.
pub fn decode(text: &str) -> Result<Vec<DonorGifts>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (id, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("no supporter in {line:?}"))?;
        let id: u64 = id.parse().map_err(|_| format!("bad supporter {id:?}"))?;
        let mut gifts = Vec::new();
        for g in rest.split(';').filter(|g| !g.is_empty()) {
            let mut f = g.split(',');
            let mut num = |what: &str| -> Result<i64, String> {
                f.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("bad {what} in {g:?} of supporter {id}"))
            };
            let date = num("date")?;
            let gross = num("gross")?;
            let net = num("net")?;
            let campaign = match f.next() {
                None | Some("") => None,
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| format!("bad campaign in {g:?} of supporter {id}"))?,
                ),
            };
            gifts.push(Gift {
                date,
                gross,
                net,
                campaign,
            });
        }
        out.push((id, gifts));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_negative_amounts_and_missing_campaigns() {
        let donors = vec![
            (
                64,
                vec![
                    Gift {
                        date: 1_700_000_000,
                        gross: 2500,
                        net: 2300,
                        campaign: Some(9),
                    },
                    Gift {
                        date: -5,
                        gross: -100,
                        net: 0,
                        campaign: None,
                    },
                ],
            ),
            (127, Vec::new()),
        ];
        let text = encode(&donors);
        assert_eq!(text, "64:1700000000,2500,2300,9;-5,-100,0,\n127:\n");
        assert_eq!(decode(&text).unwrap(), donors);
        assert!(decode("x:1,2,3,").is_err());
        assert!(decode("1:1,2").is_err());
        assert_eq!(bucket_of(127), 1);
        assert_eq!(bucket_bounds(1), (64, 127));
    }
}
