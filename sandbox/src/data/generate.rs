//! Deterministic synthetic data. Every org × entity draws from its own seeded ChaCha stream, so
//! orgs can be generated in parallel and a seed always yields the same records.

use super::model::*;
use super::names::*;
use super::record::{Date, Record, Str, Ts};
use super::time::epoch;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Data spans 2023-01-01 .. 2026-10-31 (fixed, never wall clock, so runs are reproducible).
pub fn span() -> (i64, i64) {
    (epoch(2023, 1, 1, 0, 0, 0), epoch(2026, 10, 31, 23, 59, 59))
}

/// First ids per entity; ids grow by one across orgs, so they are unique per entity.
pub const SUPPORTER_ID_BASE: i64 = 1_000_000;
pub const CAMPAIGN_ID_BASE: i64 = 200_000;
pub const TRANSACTION_ID_BASE: i64 = 30_000_000;
pub const PLAN_ID_BASE: i64 = 700_000;
pub const ORG_ID_BASE: i64 = 10_000;
/// Supporter ids of orphaned transactions: far above anything the id counter reaches.
pub const ORPHAN_SUPPORTER_BASE: i64 = 9_000_000_000;

/// Max records of one org × entity sharing an `updated_at` second in generated data.
pub const MAX_PER_SECOND: usize = 50;
/// Target share of records whose `updated_at` second holds another record.
pub const SHARE_TARGET: f64 = 0.35;

pub struct Counts {
    pub supporters: usize,
    pub campaigns: usize,
    pub transactions: usize,
    pub plans: usize,
}

/// All generated records of one organization, each Vec in id order.
pub struct OrgData {
    pub org: Organization,
    pub supporters: Vec<Supporter>,
    pub campaigns: Vec<Campaign>,
    pub transactions: Vec<Transaction>,
    pub plans: Vec<RecurringDonationPlan>,
}

fn rng_for(seed: u64, org_index: usize, stream: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(seed ^ mix(((org_index as u64) << 8) | stream)))
}

/// Interns strings so repeated values share one allocation.
#[derive(Default)]
struct Interner(HashMap<String, Str>);

impl Interner {
    fn get(&mut self, s: &str) -> Str {
        if let Some(v) = self.0.get(s) {
            return v.clone();
        }
        let v: Str = Str::from(s);
        self.0.insert(s.to_string(), v.clone());
        v
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// Picks from `(weight, value)` pairs.
fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(u32, T)]) -> T {
    let total: u32 = items.iter().map(|(w, _)| w).sum();
    let mut r = rng.gen_range(0..total);
    for (w, v) in items {
        if r < *w {
            return *v;
        }
        r -= w;
    }
    items[items.len() - 1].1
}

/// `(created_at, updated_at)` pairs sorted by creation, so ids grow with time as in Classy.
/// About half the records are created in bursts (imports, batch jobs) sharing one second.
fn gen_times(rng: &mut ChaCha8Rng, n: usize) -> Vec<(i64, i64)> {
    let (start, end) = span();
    let mut created = Vec::with_capacity(n);
    while created.len() < n {
        let t = rng.gen_range(start..=end);
        let group = if rng.gen_bool(0.18) {
            rng.gen_range(2..=8)
        } else {
            1
        };
        for _ in 0..group.min(n - created.len()) {
            created.push(t);
        }
    }
    created.sort_unstable();
    created
        .into_iter()
        .map(|c| {
            // Most records are never edited; the rest change some time later.
            let u = if rng.gen_bool(0.7) || c >= end {
                c
            } else {
                let max_delta = (end - c).min(400 * 86_400);
                c + rng.gen_range(1..=max_delta)
            };
            (c, u)
        })
        .collect()
}

/// Makes at least [`SHARE_TARGET`] of the records share their `updated_at` second with
/// another record and caps each second at [`MAX_PER_SECOND`]. Only ever moves `updated_at`
/// later, so `updated_at >= created_at` keeps holding.
pub fn enforce_second_sharing<R: Record>(records: &mut [R]) {
    let n = records.len();
    if n < 2 {
        return;
    }
    let sorted = |records: &[R]| {
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| {
            (records[i as usize].updated_at(), records[i as usize].id())
        });
        order
    };
    let order = sorted(records);
    let mut singles = Vec::new();
    let mut shared = 0usize;
    let mut i = 0;
    while i < n {
        let t = records[order[i] as usize].updated_at();
        let mut j = i + 1;
        while j < n && records[order[j] as usize].updated_at() == t {
            j += 1;
        }
        if j - i == 1 {
            singles.push(order[i]);
        } else {
            shared += j - i;
        }
        i = j;
    }
    let want = (SHARE_TARGET * n as f64).ceil() as usize;
    let mut k = 0;
    while shared < want && k + 1 < singles.len() {
        // Pair two neighbouring singletons: the earlier joins the later one's second.
        let later = records[singles[k + 1] as usize].updated_at();
        records[singles[k] as usize].set_updated_at(later);
        shared += 2;
        k += 2;
    }
    let order = sorted(records);
    let (mut last, mut count) = (i64::MIN, 0usize);
    for &pos in &order {
        let r = &mut records[pos as usize];
        let mut t = r.updated_at();
        if t <= last {
            if count >= MAX_PER_SECOND {
                t = last + 1;
            } else {
                t = last;
            }
        }
        if t != r.updated_at() {
            r.set_updated_at(t);
        }
        if t == last {
            count += 1;
        } else {
            last = t;
            count = 1;
        }
    }
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'á' | 'à' | 'â' | 'ä' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' => Some('e'),
            'í' | 'ï' => Some('i'),
            'ó' | 'ö' | 'ô' => Some('o'),
            'ú' | 'ü' => Some('u'),
            'ñ' => Some('n'),
            'ç' => Some('c'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            c if c.is_alphabetic() => Some(c.to_lowercase().next().unwrap_or('x')),
            _ => None,
        })
        .map(|c| if c.is_ascii() { c } else { 'x' })
        .collect()
}

pub fn organization(org_index: usize, org_id: i64) -> Organization {
    let s = |v: &str| Str::from(v);
    let base = ORG_NAMES[org_index % ORG_NAMES.len()];
    let name = if org_index < ORG_NAMES.len() {
        base.to_string()
    } else {
        format!("{base} {}", org_index / ORG_NAMES.len() + 1)
    };
    let (city, state, postal) = PLACES[org_index % PLACES.len()];
    let created = epoch(2019, 4, 23, 10, 25, 3) + org_index as i64 * 86_400;
    Organization {
        id: org_id,
        sms_opt_in_text_default: Str::from(format!(
            "It's OK to text me about ways I can continue to support {name} and other important updates."
        )),
        name: Str::from(name),
        status: s("active"),
        type_: Some(s("npo")),
        currency: s("USD"),
        currency_code: s("USD"),
        timezone_identifier: s("America/Los_Angeles"),
        address: Str::from(format!("{} Main St", 100 + org_index)),
        city: s(city),
        state: s(state),
        postal_code: s(postal),
        country: s("US"),
        description: s("A community nonprofit (sandbox data)"),
        mission: s("Serve our neighbours with dignity"),
        url: Str::from(format!("https://org{org_id}.example.org")),
        plan_type: s("Enterprise"),
        welcome_message: s("Thank you for all you do to make our mission possible"),
        marketplace_state: s("LEGACY"),
        fixed_fot_percent: s("5.00"),
        flex_rate_percent: 5.0,
        customer_tier: Some(2),
        facebook: None,
        twitter: None,
        opt_in_wording: None,
        sms_opt_in_text_is_default: true,
        gfm_connect_banner_count: 0,
        are_activity_feeds_disabled: false,
        allow_download_annual_receipts: true,
        has_employer_match: false,
        has_double_the_donation_enployer_match: false,
        is_gfm_npo_page_claimed: false,
        is_gfm_npo_page_verified: false,
        is_gift_aid_available: false,
        resend_receipt_flag: true,
        has_gfm_npo_transactions: false,
        is_billing_address_required: false,
        is_intelligent_text_suggestion_opted_out: false,
        created_at: Ts(created),
        updated_at: Ts(created + 365 * 86_400),
    }
}

/// Generates one organization's data. `org_index` is 0-based; ids follow from it.
pub fn generate_org(seed: u64, org_index: usize, counts: &Counts) -> OrgData {
    let org_id = ORG_ID_BASE + 1 + org_index as i64;
    let org = organization(org_index, org_id);
    let mut strings = Interner::default();
    let campaigns = gen_campaigns(seed, org_index, org_id, counts.campaigns, &mut strings);
    let supporters = gen_supporters(seed, org_index, org_id, counts, &campaigns, &mut strings);
    let plans = gen_plans(
        seed,
        org_index,
        org_id,
        counts,
        &supporters,
        &campaigns,
        &mut strings,
    );
    let transactions = gen_transactions(
        seed,
        org_index,
        org_id,
        counts,
        &supporters,
        &campaigns,
        &plans,
        &mut strings,
    );
    OrgData {
        org,
        supporters,
        campaigns,
        transactions,
        plans,
    }
}

fn gen_campaigns(seed: u64, oi: usize, org_id: i64, n: usize, st: &mut Interner) -> Vec<Campaign> {
    let mut rng = rng_for(seed, oi, 1);
    let times = gen_times(&mut rng, n);
    let (_, end) = span();
    let mut out: Vec<Campaign> = times
        .into_iter()
        .enumerate()
        .map(|(i, (created, updated))| {
            let id = CAMPAIGN_ID_BASE + 1 + (oi * n + i) as i64;
            let base = CAMPAIGN_NAMES[(i + oi) % CAMPAIGN_NAMES.len()];
            let year = super::time::civil_from_days(created / 86_400).0;
            let name = format!("{base} {year}");
            let ty = weighted(
                &mut rng,
                &[
                    (4, "dynamic"),
                    (2, "peer_to_peer"),
                    (1, "donation"),
                    (1, "crowdfunding"),
                    (1, "ticketed"),
                    (1, "reg_w_fund"),
                ],
            );
            let status = weighted(
                &mut rng,
                &[
                    (8, "active"),
                    (1, "deactivated"),
                    (1, "draft"),
                    (1, "unpublished"),
                ],
            );
            let goal = (rng.gen_range(50..2500) * 100) as f64;
            let started = created + rng.gen_range(0..30 * 86_400);
            let ended = rng
                .gen_bool(0.5)
                .then(|| (started + rng.gen_range(30..365) * 86_400).min(end + 86_400 * 60));
            let (city, state, postal) = *pick(&mut rng, PLACES);
            Campaign {
                id,
                organization_id: org_id,
                internal_name: Some(Str::from(format!("{name} (internal)"))),
                name: Str::from(name),
                status: st.get(status),
                type_: st.get(ty),
                goal: Some(goal),
                raw_goal: Str::from(format!("{goal:.3}")),
                currency_code: st.get("USD"),
                raw_currency_code: st.get("USD"),
                default_page_goal: 500.0,
                default_team_goal: 2500.0,
                minimum_donation_amount: 5.0,
                timezone_identifier: st.get("America/Los_Angeles"),
                started_at: Ts(started),
                ended_at: ended.map(Ts),
                address1: Some(st.get("533 F Street")),
                city: Some(st.get(city)),
                state: Some(st.get(state)),
                postal_code: Some(st.get(postal)),
                country: Some(st.get("US")),
                venue: (ty == "ticketed").then(|| st.get("City Townhall")),
                location_details: st.get(""),
                contact_email: Some(Str::from(format!("campaigns@org{org_id}.example.org"))),
                contact_phone: st.get("619-555-1212"),
                canonical_url: Some(Str::from(format!("/campaign/c{id}"))),
                external_url: None,
                created_with: st.get("classyapp"),
                effective_recaptcha_settings: st.get("ENABLED"),
                sort_designation_by: st.get("A-Z"),
                team_membership_policy: st.get("optional"),
                crypto_giving: st.get("disabled"),
                embedded_giving: st.get("disabled"),
                is_general: Some(if i == 0 { 1.0 } else { 0.0 }),
                is_fees_free: Some(false),
                is_linked: false,
                hide_from_profile: Some(false),
                allow_fundraising_pages: ty == "peer_to_peer",
                allow_team_fundraising: ty == "peer_to_peer",
                add_registration_fee: false,
                allow_duplicate_fundraisers: false,
                allow_ecards: false,
                display_group_name: false,
                dcf_allowed: true,
                dcf_enabled: rng.gen_bool(0.5),
                daf_enabled: false,
                corporate_donation_enabled: false,
                checkout_corporate_donation_enabled: false,
                classy_mode_checked_by_default: false,
                classy_mode_enabled: Some(false),
                hide_anonymous_donations: false,
                hide_contact_opt_in: false,
                hide_dedications: false,
                hide_donation_amounts: false,
                hide_donation_comments: false,
                hide_recurring_end_date: false,
                is_billing_address_required: false,
                is_ended_at_hidden: false,
                is_started_at_hidden: false,
                opt_in_checked_by_default: true,
                exit_modal: false,
                fixed_fot_percent: None,
                effective_fixed_fot_percent: Some(st.get("5.00")),
                flex_rate_percent: None,
                effective_flex_rate_percent: Some(4.0),
                designation_id: None,
                category_id: None,
                campaign_template_id: None,
                created_at: Ts(created),
                updated_at: Ts(updated),
            }
        })
        .collect();
    enforce_second_sharing(&mut out);
    out
}

fn gen_supporters(
    seed: u64,
    oi: usize,
    org_id: i64,
    counts: &Counts,
    campaigns: &[Campaign],
    st: &mut Interner,
) -> Vec<Supporter> {
    let n = counts.supporters;
    let mut rng = rng_for(seed, oi, 2);
    let times = gen_times(&mut rng, n);
    let firsts: Vec<Str> = FIRST_NAMES.iter().map(|s| st.get(s)).collect();
    let lasts: Vec<Str> = LAST_NAMES.iter().map(|s| st.get(s)).collect();
    let folded_first: Vec<String> = FIRST_NAMES.iter().map(|s| ascii_fold(s)).collect();
    let folded_last: Vec<String> = LAST_NAMES.iter().map(|s| ascii_fold(s)).collect();
    let places: Vec<(Str, Str, Str)> = PLACES
        .iter()
        .map(|(c, s, p)| (st.get(c), st.get(s), st.get(p)))
        .collect();
    let us = st.get("US");
    let origins = [
        (80, "donation"),
        (10, "fundraiser"),
        (5, "ticket"),
        (5, "import"),
    ];
    let mut out: Vec<Supporter> = Vec::with_capacity(n);
    for (i, (created, updated)) in times.into_iter().enumerate() {
        let id = SUPPORTER_ID_BASE + 1 + (oi * n + i) as i64;
        let fi = rng.gen_range(0..firsts.len());
        let li = rng.gen_range(0..lasts.len());
        let domain = weighted(
            &mut rng,
            &[(6, "example.org"), (3, "example.com"), (1, "example.net")],
        );
        let r: f64 = rng.gen();
        let email: Str = if r < 0.02 && i > 0 {
            // Duplicate of an earlier supporter's email, half of them with different case.
            let other = &out[rng.gen_range(0..i)].email_address;
            if rng.gen_bool(0.5) {
                other.clone()
            } else {
                Str::from(other.to_uppercase())
            }
        } else if r < 0.03 {
            let (f, l) = (&folded_first[fi], &folded_last[li]);
            Str::from(match rng.gen_range(0..5) {
                0 => format!("{f}.{l}@"),
                1 => "no-at-sign.example.com".to_string(),
                2 => format!("{f} {l}@example.org"),
                3 => format!("@{domain}"),
                _ => format!("{f}..{l}@example"),
            })
        } else {
            Str::from(format!(
                "{}.{}{}@{domain}",
                folded_first[fi],
                folded_last[li],
                rng.gen_range(1..10_000)
            ))
        };
        let names = rng.gen_range(0..200);
        let has_address = rng.gen_bool(0.65);
        let foreign = has_address && rng.gen_bool(0.05);
        let place = &places[rng.gen_range(0..places.len())];
        let (city, state, postal, country) = if !has_address {
            (None, None, rng.gen_bool(0.2).then(|| place.2.clone()), None)
        } else if foreign {
            if rng.gen_bool(0.5) {
                (
                    Some(st.get("Toronto")),
                    Some(st.get("ON")),
                    Some(st.get("M5H 2N2")),
                    Some(st.get("CA")),
                )
            } else {
                (
                    Some(st.get("London")),
                    None,
                    Some(st.get("SW1A 1AA")),
                    Some(st.get("GB")),
                )
            }
        } else {
            (
                Some(place.0.clone()),
                Some(place.1.clone()),
                Some(place.2.clone()),
                Some(us.clone()),
            )
        };
        let phone = rng
            .gen_bool(0.4)
            .then(|| Str::from(format!("619-555-{:04}", rng.gen_range(0..10_000))));
        out.push(Supporter {
            id,
            first_name: (names != 0).then(|| firsts[fi].clone()),
            last_name: (names != 1).then(|| lasts[li].clone()),
            email_address: email,
            opt_in: rng.gen_bool(0.6),
            origin: st.get(weighted(&mut rng, &origins)),
            gender: rng
                .gen_bool(0.1)
                .then(|| st.get(if rng.gen_bool(0.5) { "F" } else { "M" })),
            birthday: rng.gen_bool(0.1).then(|| {
                Str::from(format!(
                    "{}/{}",
                    rng.gen_range(1..=12),
                    rng.gen_range(1..=28)
                ))
            }),
            nickname: None,
            cell_phone: phone.as_ref().filter(|_| rng.gen_bool(0.5)).cloned(),
            phone,
            address1: has_address.then(|| {
                Str::from(format!(
                    "{} {}",
                    rng.gen_range(1..9999),
                    STREETS[rng.gen_range(0..STREETS.len())]
                ))
            }),
            address2: None,
            city,
            state,
            postal_code: postal,
            country,
            location: None,
            last_emailed_at: None,
            member_id: rng.gen_bool(0.15).then(|| 2_000_000 + id),
            source_campaign_id: (!campaigns.is_empty() && rng.gen_bool(0.5))
                .then(|| campaigns[rng.gen_range(0..campaigns.len())].id),
            source_fundraising_page_id: None,
            source_member_id: None,
            source_organization_id: Some(org_id),
            created_at: Ts(created),
            updated_at: Ts(updated),
        });
    }
    enforce_second_sharing(&mut out);
    out
}

fn gen_plans(
    seed: u64,
    oi: usize,
    org_id: i64,
    counts: &Counts,
    supporters: &[Supporter],
    campaigns: &[Campaign],
    st: &mut Interner,
) -> Vec<RecurringDonationPlan> {
    let n = counts.plans;
    if supporters.is_empty() || campaigns.is_empty() {
        return Vec::new();
    }
    let mut rng = rng_for(seed, oi, 3);
    let times = gen_times(&mut rng, n);
    let (_, end) = span();
    let next_month = super::time::days_from_civil(2026, 11, 1) as i32;
    let mut out: Vec<RecurringDonationPlan> = times
        .into_iter()
        .enumerate()
        .map(|(i, (created, mut updated))| {
            let id = PLAN_ID_BASE + 1 + (oi * n + i) as i64;
            let sup = &supporters[rng.gen_range(0..supporters.len())];
            let camp = &campaigns[rng.gen_range(0..campaigns.len())];
            let amount = *pick(&mut rng, &[10.0, 15.0, 19.0, 20.0, 25.0, 30.0, 50.0, 100.0]);
            let status = weighted(
                &mut rng,
                &[
                    (75, "active"),
                    (12, "canceled"),
                    (4, "failed"),
                    (4, "failing"),
                    (3, "paused"),
                    (2, "ended"),
                ],
            );
            let later = |rng: &mut ChaCha8Rng| created + rng.gen_range(0..=(end - created).max(0));
            let canceled_at = (status == "canceled").then(|| later(&mut rng));
            let failed_at = matches!(status, "failed" | "failing").then(|| later(&mut rng));
            for t in [canceled_at, failed_at].into_iter().flatten() {
                updated = updated.max(t);
            }
            let day = (created / 86_400 % 28) as i32;
            let next = match status {
                "active" | "failing" => Some(Date(next_month + day)),
                "paused" => Some(Date(next_month + 31 + day)),
                _ => None,
            };
            let card = rng.gen_bool(0.85);
            let (city, state, postal, country) =
                match (&sup.city, &sup.state, &sup.postal_code, &sup.country) {
                    (Some(c), Some(s), Some(p), Some(k)) => {
                        (c.clone(), s.clone(), p.clone(), k.clone())
                    }
                    _ => (
                        st.get("San Diego"),
                        st.get("CA"),
                        st.get("92101"),
                        st.get("US"),
                    ),
                };
            RecurringDonationPlan {
                id,
                organization_id: org_id,
                supporter_id: Some(sup.id),
                campaign_id: camp.id,
                member_id: sup.member_id.unwrap_or(2_000_000 + sup.id),
                status: st.get(status),
                frequency: st.get("monthly"),
                donation_amount: amount,
                raw_donation_amount: Str::from(format!("{amount:.2}")),
                currency_code: st.get("USD"),
                raw_currency_code: st.get("USD"),
                raw_initial_gross_amount: amount,
                raw_adjustment_amount: 0.0,
                applied_fot_percent: None,
                effective_fixed_fot_percent: st.get("5.00"),
                first_name: sup
                    .first_name
                    .clone()
                    .unwrap_or_else(|| st.get("Anonymous")),
                last_name: sup.last_name.clone().unwrap_or_else(|| st.get("Donor")),
                company_name: None,
                address: sup.address1.clone().unwrap_or_else(|| st.get("")),
                address2: None,
                city,
                state,
                postal_code: postal,
                country,
                timezone_identifier: st.get("America/Los_Angeles"),
                payment_type: Some(st.get(if card { "Credit Card" } else { "ACH" })),
                payment_gateway: Some(st.get("Classy Pay")),
                cc_type: card.then(|| {
                    st.get(pick::<&str>(
                        &mut rng,
                        &["Visa", "Mastercard", "Amex", "Discover"],
                    ))
                }),
                cc_last_four: Str::from(if card {
                    format!("{:04}", rng.gen_range(0..10_000))
                } else {
                    String::new()
                }),
                cc_card_exp: Str::from(if card {
                    format!("20{}{:02}", rng.gen_range(27..31), rng.gen_range(1..=12))
                } else {
                    String::new()
                }),
                ach_last_four: (!card).then(|| rng.gen_range(1000..10_000)),
                pp_plan_id: Str::from(format!("{:013x}", mix(id as u64) >> 12)),
                is_paused: status == "paused",
                can_be_reactivated: status == "canceled",
                fee_on_top: false,
                is_anonymous: rng.gen_bool(0.05),
                hide_amount: false,
                is_gift_aid: false,
                is_donor_covered_fee: rng.gen_bool(0.2),
                dcf_enabled: true,
                dcf_allowed: true,
                classy_mode_enabled: false,
                migrated: false,
                cancel_by: canceled_at.map(|_| {
                    st.get(if rng.gen_bool(0.7) {
                        "supporter"
                    } else {
                        "admin"
                    })
                }),
                cancel_reason_code: canceled_at.map(|_| st.get("1")),
                cancel_reason_text: canceled_at.map(|_| st.get("Can no longer afford it")),
                next_processing_date: next,
                pause_until: (status == "paused").then(|| Date(next_month + 31 + day)),
                plan_paused_on_date: (status == "paused")
                    .then_some(Date((updated / 86_400) as i32)),
                recur_until: None,
                started_at: Ts(created),
                canceled_at: canceled_at.map(Ts),
                failed_at: failed_at.map(Ts),
                created_at: Ts(created),
                updated_at: Ts(updated),
            }
        })
        .collect();
    enforce_second_sharing(&mut out);
    out
}

#[allow(clippy::too_many_arguments)]
fn gen_transactions(
    seed: u64,
    oi: usize,
    org_id: i64,
    counts: &Counts,
    supporters: &[Supporter],
    campaigns: &[Campaign],
    plans: &[RecurringDonationPlan],
    st: &mut Interner,
) -> Vec<Transaction> {
    let n = counts.transactions;
    if supporters.is_empty() || campaigns.is_empty() {
        return Vec::new();
    }
    let mut rng = rng_for(seed, oi, 4);
    let times = gen_times(&mut rng, n);
    let (_, end) = span();
    // Most donors give once: one-time gifts walk a shuffled supporter order, and once 80% of
    // supporters have given, further gifts come from a small pool of repeat donors.
    let mut order: Vec<u32> = (0..supporters.len() as u32).collect();
    order.shuffle(&mut rng);
    let first_timers = supporters.len() * 4 / 5;
    let repeat_pool = (supporters.len() / 5).max(1);
    let mut one_time = 0usize;
    let usd = st.get("USD");
    let statuses = [
        (900, "success"),
        (40, "refunded"),
        (30, "failed"),
        (20, "pending"),
        (10, "canceled"),
    ];
    let currencies = [
        (88, ("USD", 1.0)),
        (4, ("CAD", 0.73)),
        (4, ("GBP", 1.27)),
        (4, ("EUR", 1.08)),
    ];
    let mut out = Vec::with_capacity(n);
    for (i, (created, mut updated)) in times.into_iter().enumerate() {
        let id = TRANSACTION_ID_BASE + 1 + (oi * n + i) as i64;
        let live_plans = plans.partition_point(|p| p.started_at.0 <= created);
        let plan =
            (live_plans > 0 && rng.gen_bool(0.10)).then(|| &plans[rng.gen_range(0..live_plans)]);
        let (sup_idx, campaign_id, raw_amount, currency) = match plan {
            Some(p) => {
                let idx = supporters
                    .binary_search_by_key(&p.supporter_id.unwrap_or(0), |s| s.id)
                    .unwrap_or(0);
                (idx, p.campaign_id, p.donation_amount, ("USD", 1.0))
            }
            None => {
                let k = one_time;
                one_time += 1;
                let idx = if k < first_timers {
                    order[k] as usize
                } else {
                    order[rng.gen_range(0..repeat_pool)] as usize
                };
                let amount = if rng.gen_bool(0.01) {
                    rng.gen_range(5_000..50_000) as f64
                } else {
                    let base = *pick(
                        &mut rng,
                        &[
                            5.0, 10.0, 20.0, 25.0, 35.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0,
                            1000.0,
                        ],
                    );
                    if rng.gen_bool(0.3) {
                        base + rng.gen_range(1..100) as f64 / 100.0
                    } else {
                        base
                    }
                };
                let camp = &campaigns[rng.gen_range(0..campaigns.len())];
                (idx, camp.id, amount, weighted(&mut rng, &currencies))
            }
        };
        let sup = &supporters[sup_idx];
        let orphan = rng.gen_bool(0.001);
        let supporter_id = if orphan {
            ORPHAN_SUPPORTER_BASE + rng.gen_range(0..1_000_000)
        } else {
            sup.id
        };
        let status = weighted(&mut rng, &statuses);
        let refunded_at =
            (status == "refunded").then(|| (created + rng.gen_range(3600..60 * 86_400)).min(end));
        if let Some(r) = refunded_at {
            updated = updated.max(r);
        }
        let gross = round2(raw_amount * currency.1);
        let fees = round2(gross * 0.022 + 0.30);
        let pay = weighted(&mut rng, &[(85, "Credit Card"), (8, "ACH"), (7, "PayPal")]);
        let dcf = rng.gen_bool(0.2);
        out.push(Transaction {
            id,
            organization_id: org_id,
            supporter_id: Some(supporter_id),
            campaign_id,
            recurring_donation_plan_id: plan.map(|p| p.id),
            member_id: sup.member_id,
            fundraising_page_id: None,
            designation_id: None,
            status: st.get(status),
            frequency: Some(st.get(if plan.is_some() {
                "monthly"
            } else {
                "one-time"
            })),
            currency_code: Some(usd.clone()),
            raw_currency_code: Some(st.get(currency.0)),
            total_gross_amount: Some(gross),
            donation_gross_amount: Some(gross),
            donation_net_amount: Some(round2(gross - fees)),
            fees_amount: Some(fees),
            raw_total_gross_amount: Some(raw_amount),
            raw_donation_gross_amount: Some(raw_amount),
            applied_processor_fee_percent: Some(2.2),
            payment_type: Some(st.get(pay)),
            payment_method: None,
            payment_gateway: Some(st.get(if pay == "PayPal" {
                "PayPal"
            } else {
                "Classy Pay"
            })),
            card_type: (pay == "Credit Card").then(|| {
                st.get(pick::<&str>(
                    &mut rng,
                    &["Visa", "Mastercard", "Amex", "Discover"],
                ))
            }),
            card_last_four: (pay == "Credit Card").then(|| rng.gen_range(1000..10_000)),
            billing_first_name: sup.first_name.clone(),
            billing_last_name: sup.last_name.clone(),
            billing_postal_code: sup.postal_code.clone(),
            billing_country: sup.country.clone(),
            comment: rng
                .gen_bool(0.05)
                .then(|| st.get(pick::<&str>(&mut rng, COMMENTS))),
            fee_on_top: dcf,
            hide_amount: rng.gen_bool(0.02),
            is_anonymous: rng.gen_bool(0.05),
            is_donor_covered_fee: dcf,
            is_gift_aid: false,
            is_reprocess: false,
            opted_into_payment_sync: false,
            acknowledgements_count: rng.gen_range(0..3),
            reprocess_attempts: 0,
            purchased_at: Some(Ts(created)),
            refunded_at: refunded_at.map(Ts),
            created_at: Ts(created),
            updated_at: Ts(updated),
        });
    }
    enforce_second_sharing(&mut out);
    out
}

/// Defaults for records created through the admin API.
pub trait Blank: Record {
    fn blank(org_id: i64, id: i64, now: i64) -> Self;
}

impl Blank for Supporter {
    fn blank(org_id: i64, id: i64, now: i64) -> Self {
        Supporter {
            id,
            email_address: Str::from(format!("supporter{id}@example.org")),
            opt_in: false,
            origin: Str::from("donation"),
            source_organization_id: Some(org_id),
            created_at: Ts(now),
            updated_at: Ts(now),
            ..Default::default()
        }
    }
}

impl Blank for Campaign {
    fn blank(org_id: i64, id: i64, now: i64) -> Self {
        let s = |v: &str| Str::from(v);
        Campaign {
            id,
            organization_id: org_id,
            name: Str::from(format!("Campaign {id}")),
            status: s("active"),
            type_: s("dynamic"),
            goal: Some(10_000.0),
            raw_goal: s("10000.000"),
            currency_code: s("USD"),
            raw_currency_code: s("USD"),
            default_page_goal: 500.0,
            default_team_goal: 2500.0,
            minimum_donation_amount: 5.0,
            timezone_identifier: s("America/Los_Angeles"),
            started_at: Ts(now),
            location_details: s(""),
            contact_phone: s(""),
            created_with: s("api"),
            effective_recaptcha_settings: s("ENABLED"),
            sort_designation_by: s("A-Z"),
            team_membership_policy: s("optional"),
            crypto_giving: s("disabled"),
            embedded_giving: s("disabled"),
            dcf_allowed: true,
            created_at: Ts(now),
            updated_at: Ts(now),
            ..Default::default()
        }
    }
}

impl Blank for Transaction {
    fn blank(org_id: i64, id: i64, now: i64) -> Self {
        let s = |v: &str| Str::from(v);
        Transaction {
            id,
            organization_id: org_id,
            status: s("success"),
            frequency: Some(s("one-time")),
            currency_code: Some(s("USD")),
            raw_currency_code: Some(s("USD")),
            total_gross_amount: Some(0.0),
            donation_gross_amount: Some(0.0),
            donation_net_amount: Some(0.0),
            fees_amount: Some(0.0),
            raw_total_gross_amount: Some(0.0),
            raw_donation_gross_amount: Some(0.0),
            purchased_at: Some(Ts(now)),
            created_at: Ts(now),
            updated_at: Ts(now),
            ..Default::default()
        }
    }
}

impl Blank for RecurringDonationPlan {
    fn blank(org_id: i64, id: i64, now: i64) -> Self {
        let s = |v: &str| Str::from(v);
        RecurringDonationPlan {
            id,
            organization_id: org_id,
            status: s("active"),
            frequency: s("monthly"),
            donation_amount: 0.0,
            raw_donation_amount: s("0.00"),
            currency_code: s("USD"),
            raw_currency_code: s("USD"),
            effective_fixed_fot_percent: s("5.00"),
            first_name: s(""),
            last_name: s(""),
            address: s(""),
            city: s(""),
            state: s(""),
            postal_code: s(""),
            country: s("US"),
            timezone_identifier: s("America/Los_Angeles"),
            cc_last_four: s(""),
            cc_card_exp: s(""),
            pp_plan_id: Str::from(format!("{:013x}", mix(id as u64) >> 12)),
            dcf_allowed: true,
            started_at: Ts(now),
            created_at: Ts(now),
            updated_at: Ts(now),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::record::SerOpts;
    use std::collections::HashMap;

    fn counts() -> Counts {
        Counts {
            supporters: 3000,
            campaigns: 5,
            transactions: 6000,
            plans: 300,
        }
    }

    fn json<R: Record>(records: &[R]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            r.write_json(&mut out, &SerOpts::default());
        }
        out
    }

    /// (share of records whose second holds another record, largest group).
    fn sharing<R: Record>(records: &[R]) -> (f64, usize) {
        let mut per: HashMap<i64, usize> = HashMap::new();
        for r in records {
            *per.entry(r.updated_at()).or_default() += 1;
        }
        let shared: usize = per.values().filter(|c| **c > 1).sum();
        (
            shared as f64 / records.len() as f64,
            per.values().copied().max().unwrap_or(0),
        )
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate_org(42, 0, &counts());
        let b = generate_org(42, 0, &counts());
        let c = generate_org(43, 0, &counts());
        assert_eq!(json(&a.supporters), json(&b.supporters));
        assert_eq!(json(&a.transactions), json(&b.transactions));
        assert_eq!(json(&a.plans), json(&b.plans));
        assert_ne!(json(&a.supporters), json(&c.supporters));
    }

    #[test]
    fn updated_at_seconds_are_shared_but_capped() {
        let d = generate_org(7, 1, &counts());
        for (name, (share, max)) in [
            ("supporters", sharing(&d.supporters)),
            ("transactions", sharing(&d.transactions)),
            ("plans", sharing(&d.plans)),
            ("campaigns", sharing(&d.campaigns)),
        ] {
            assert!(share >= 0.30, "{name}: only {share:.2} share a second");
            assert!(max <= MAX_PER_SECOND, "{name}: {max} records in one second");
        }
    }

    #[test]
    fn timestamps_ids_and_amounts_are_consistent() {
        let d = generate_org(42, 0, &counts());
        let (start, end) = span();
        for t in &d.transactions {
            assert!(t.updated_at >= t.created_at);
            assert!((start..=end).contains(&t.created_at.0));
            let (gross, fees, net) = (
                t.donation_gross_amount.unwrap(),
                t.fees_amount.unwrap(),
                t.donation_net_amount.unwrap(),
            );
            assert!(
                (gross - fees - net).abs() < 0.011,
                "{gross} - {fees} != {net}"
            );
            if t.status.as_ref() == "refunded" {
                assert!(t.refunded_at.is_some_and(|r| r <= t.updated_at));
            }
        }
        assert!(d.supporters.windows(2).all(|w| w[0].id < w[1].id));
        assert!(d.transactions.windows(2).all(|w| w[0].id < w[1].id));
        let other = generate_org(42, 1, &counts());
        assert!(
            other.supporters[0].id > d.supporters.last().unwrap().id,
            "ids are unique across orgs"
        );
        let large = d
            .transactions
            .iter()
            .filter(|t| t.total_gross_amount.unwrap() >= 5000.0)
            .count();
        assert!(large > 20 && large < 150, "{large} large gifts");
        let monthly = d
            .transactions
            .iter()
            .filter(|t| t.recurring_donation_plan_id.is_some())
            .count();
        assert!(monthly > 300 && monthly < 900, "{monthly} monthly gifts");
        let foreign = d
            .transactions
            .iter()
            .filter(|t| t.raw_currency_code.as_deref() != Some("USD"))
            .count();
        assert!(foreign > 300, "{foreign} foreign-currency gifts");
        assert!(d
            .transactions
            .iter()
            .all(|t| t.currency_code.as_deref() == Some("USD")));
        let ids: std::collections::HashSet<i64> = d.supporters.iter().map(|s| s.id).collect();
        let orphans = d
            .transactions
            .iter()
            .filter(|t| !ids.contains(&t.supporter_id.unwrap()))
            .count();
        assert!((1..=30).contains(&orphans), "{orphans} orphans");
        let success = d
            .transactions
            .iter()
            .filter(|t| t.status.as_ref() == "success")
            .count();
        assert!(success as f64 / d.transactions.len() as f64 > 0.85);
    }

    #[test]
    fn supporters_include_duplicates_bad_emails_and_null_names() {
        let d = generate_org(42, 0, &counts());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for s in &d.supporters {
            *seen.entry(s.email_address.to_lowercase()).or_default() += 1;
        }
        let dup = d
            .supporters
            .iter()
            .filter(|s| seen[&s.email_address.to_lowercase()] > 1)
            .count();
        let n = d.supporters.len() as f64;
        assert!(
            dup as f64 / n > 0.02 && (dup as f64 / n) < 0.08,
            "{dup} duplicated"
        );
        let valid = |e: &str| {
            let parts: Vec<&str> = e.split('@').collect();
            parts.len() == 2
                && !parts[0].is_empty()
                && !e.contains(' ')
                && !e.contains("..")
                && parts[1].contains('.')
        };
        let invalid = d
            .supporters
            .iter()
            .filter(|s| !valid(&s.email_address))
            .count();
        assert!(
            invalid as f64 / n > 0.005 && (invalid as f64 / n) < 0.02,
            "{invalid} invalid"
        );
        assert!(d.supporters.iter().any(|s| s.first_name.is_none()));
        assert!(d.supporters.iter().any(|s| s.last_name.is_none()));
        let opt_in = d.supporters.iter().filter(|s| s.opt_in).count() as f64 / n;
        assert!((0.55..0.65).contains(&opt_in));
        assert!(d
            .supporters
            .iter()
            .any(|s| s.postal_code.is_some() && s.city.is_none()));
    }

    #[test]
    fn plans_have_statuses_and_dates() {
        let d = generate_org(42, 0, &counts());
        assert!(d
            .plans
            .iter()
            .any(|p| p.status.as_ref() == "canceled" && p.canceled_at.is_some()));
        assert!(
            d.plans
                .iter()
                .filter(|p| p.status.as_ref() == "active")
                .count()
                > d.plans.len() / 2
        );
        assert!(d
            .plans
            .iter()
            .filter(|p| p.status.as_ref() == "active")
            .all(|p| p.next_processing_date.is_some()));
    }
}
