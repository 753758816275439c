//! Fundraising Effectiveness Project (FEP) figures, folded one supporter at a time: donor
//! and dollar retention between a previous period P and the current period C of equal length,
//! gain/loss attribution, LYBUNT and SYBUNT, recurring-plan health, refunds and chargebacks,
//! average and median gift and giving bands. Definitions (docs/analytics.md cites them): the
//! FEP's (AFP / Urban Institute, "Fundraising Effectiveness Survey Report" glossary), counting
//! successful gifts only, so a refunded or charged-back gift does not count as giving.
//!
//! Memory holds one supporter's gifts, the counters, the bounded LYBUNT/SYBUNT lists and a
//! histogram of gift amounts (one entry per distinct amount) for the exact median.

use super::period::{Period, Window, DAY};
use super::recurring::per_month;
use crate::domain::aggregates::to_cents;
use crate::domain::{RecurringPlan, Timestamp};
use chrono::{Datelike, Months, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// A gift's outcome as the FEP figures see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftStatus {
    Success,
    Refunded,
    /// Classy `cb_lost`: a chargeback the organization lost.
    ChargebackLost,
    /// Classy `cb_initiated`: a chargeback under way.
    ChargebackInitiated,
    /// Anything else (failed, pending, canceled, voided, test, or unknown).
    Other,
}

impl GiftStatus {
    /// From a stored gift: `success` wins; otherwise the Classy status, when known.
    pub fn of(success: bool, status: Option<&str>) -> Self {
        if success {
            return GiftStatus::Success;
        }
        match status.map(str::trim) {
            Some("success") => GiftStatus::Success,
            Some("refunded") => GiftStatus::Refunded,
            Some("cb_lost") => GiftStatus::ChargebackLost,
            Some("cb_initiated") => GiftStatus::ChargebackInitiated,
            _ => GiftStatus::Other,
        }
    }
}

/// One gift of a supporter (amount: total gross, in cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FepGift {
    pub date: i64,
    pub gross: i64,
    pub status: GiftStatus,
}

/// What the FEP pass is asked for besides the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FepOptions {
    /// Length of the LYBUNT and SYBUNT lists (the counts are always complete).
    pub limit: usize,
    /// First month (1–12) of the fiscal year LYBUNT and SYBUNT count in; 1 = calendar year.
    pub fiscal_year_start_month: u32,
}

impl Default for FepOptions {
    fn default() -> Self {
        FepOptions {
            limit: 20,
            fiscal_year_start_month: 1,
        }
    }
}

fn midnight(d: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .timestamp()
}

/// The previous period P and the current period C for `period` as of `now`: C is the period;
/// P is the calendar year before for a year, the same dates a year earlier for `ytd`, the
/// `n` months before for `nm`, and otherwise the window of equal length just before C.
pub fn comparison_windows(period: &Period, now: Timestamp) -> (Window, Window) {
    let c = period.resolve(now);
    let p = match *period {
        Period::Year(y) => Period::Year(y - 1).resolve(now),
        Period::YearToDate => {
            let back = |t: i64| {
                Timestamp::from_unix(t)
                    .0
                    .checked_sub_months(Months::new(12))
                    .map_or(t - 365 * DAY, |d| d.timestamp())
            };
            Window {
                start: back(c.start),
                end: back(c.end),
            }
        }
        Period::LastMonths(n) => Window {
            start: now
                .0
                .checked_sub_months(Months::new(2 * n))
                .map_or(i64::MIN / 4, |d| d.timestamp()),
            end: c.start,
        },
        Period::LastDays(_) | Period::Dates(..) => c.previous(),
    };
    (p, c)
}

/// A fiscal year: its label (the calendar year it ends in) and `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalYear {
    pub label: i32,
    pub start: i64,
    pub end: i64,
}

impl FiscalYear {
    /// The fiscal year holding `t`, for years starting on the first of `start_month`.
    pub fn of(t: i64, start_month: u32) -> FiscalYear {
        let m = start_month.clamp(1, 12);
        let d = Timestamp::from_unix(t).0.date_naive();
        let y = if d.month() >= m {
            d.year()
        } else {
            d.year() - 1
        };
        Self::starting(y, m)
    }

    fn starting(year: i32, m: u32) -> FiscalYear {
        let start = NaiveDate::from_ymd_opt(year, m, 1).expect("first of a month");
        let end = NaiveDate::from_ymd_opt(year + 1, m, 1).expect("first of a month");
        FiscalYear {
            label: if m == 1 { year } else { year + 1 },
            start: midnight(start),
            end: midnight(end),
        }
    }

    pub fn previous(&self) -> FiscalYear {
        let m = Timestamp::from_unix(self.start).0.month();
        let y = Timestamp::from_unix(self.start).0.year();
        Self::starting(y - 1, m)
    }

    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }
}

/// Retention from P to C (FEP): overall, of new donors (first gift ever in P), of repeat
/// donors (gave in P and before P), and in dollars.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Retention {
    /// Donors who gave in P.
    pub donors_previous: u64,
    /// Donors who gave in C.
    pub donors_current: u64,
    /// Donors who gave in both P and C.
    pub retained: u64,
    /// `retained / donors_previous`.
    pub rate: Option<f64>,
    /// Donors whose first gift ever fell in P.
    pub new_donors_previous: u64,
    pub new_donors_retained: u64,
    pub new_donor_rate: Option<f64>,
    /// Donors who gave in P and also before P.
    pub repeat_donors_previous: u64,
    pub repeat_donors_retained: u64,
    pub repeat_donor_rate: Option<f64>,
    /// Dollars (cents) given in P.
    pub dollars_previous_cents: i64,
    /// Dollars (cents) given in C.
    pub dollars_current_cents: i64,
    /// Dollars (cents) given in C by donors who gave in P.
    pub dollars_retained_cents: i64,
    /// `dollars_retained_cents / dollars_previous_cents` (FEP gift or dollar retention).
    pub dollar_rate: Option<f64>,
}

/// One line of the gain/loss attribution: donors, and the dollars (cents) the line adds to
/// (gains) or takes from (losses) the change between P and C.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub donors: i64,
    pub cents: i64,
}

/// FEP gain/loss attribution from P to C. Dollars: new and recaptured their giving in C,
/// upgraded the increase, downgraded the decrease, lapsed their giving in P, same nothing.
/// `net` = gains − losses = C − P, in donors and in dollars.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GainLoss {
    /// First gift ever in C.
    pub new: Flow,
    /// Gave in C, not in P, but before P.
    pub recaptured: Flow,
    /// Gave in P and C, more in C.
    pub upgraded: Flow,
    /// Gave in P and C, the same amount.
    pub same: Flow,
    /// Gave in P and C, less in C.
    pub downgraded: Flow,
    /// Gave in P, not in C.
    pub lapsed: Flow,
    /// new + recaptured (donors); new + recaptured + upgraded (dollars).
    pub gains: Flow,
    /// lapsed (donors); downgraded + lapsed (dollars).
    pub losses: Flow,
    pub net: Flow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LapseKind {
    /// Gave Last Year But Unfortunately Not This (year to date).
    Lybunt,
    /// Gave Some Year But Unfortunately Not This (nor last year).
    Sybunt,
}

/// A LYBUNT or SYBUNT donor as the fold sees them, before their supporter record is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lapse {
    pub kind: LapseKind,
    /// The fiscal year (label) of their last gift.
    pub last_year: i32,
    /// Their giving in that year (cents): the dollars at risk.
    pub amount_cents: i64,
    pub last_gift_at: i64,
}

/// One row of a LYBUNT or SYBUNT list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapsedDonor {
    pub supporter_id: u64,
    pub name: Option<String>,
    /// The fiscal year (label: the calendar year it ends in) of their last gift.
    pub last_year: i32,
    /// Their giving in that year (cents).
    pub amount_cents: i64,
    pub last_gift_at: i64,
    /// Opted in with a usable address: the Mailchimp push would subscribe them.
    pub mailchimp_consent: bool,
}

/// LYBUNT or SYBUNT: complete counts and a list of the largest, capped by the limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapsedGroup {
    pub donors: u64,
    /// Their giving in their last giving year (cents).
    pub dollars_at_risk_cents: i64,
    /// How many of them the Mailchimp push would subscribe (opt-in and a usable address).
    pub mailchimp_consented: u64,
    /// The largest by dollars at risk (then by id), at most the limit.
    pub list: Vec<LapsedDonor>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapsedReport {
    pub fiscal_year_start_month: u32,
    /// The fiscal year holding the end of C ("this year", to date).
    pub this_year: i32,
    pub last_year: i32,
    pub lybunt: LapsedGroup,
    pub sybunt: LapsedGroup,
}

/// Recurring plans in C (plans are current state: status and dates as stored now).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanHealth {
    /// Status `active` now.
    pub active: u64,
    /// Started (else created) in C.
    pub new: u64,
    /// Status `canceled`, canceled in C.
    pub canceled: u64,
    /// Status `failing` now (payments being retried).
    pub failing: u64,
    /// Status `failed`, last updated in C.
    pub failed: u64,
    /// Status `paused` now.
    pub paused: u64,
    /// Monthly recurring revenue now: active plans, amounts normalized to a month (cents).
    pub mrr_cents: i64,
    /// MRR of the plans live at the start of C (started before it, not ended before it).
    pub mrr_at_start_cents: i64,
    /// MRR of the plans live at the start of C that were canceled in C.
    pub churned_mrr_cents: i64,
    /// `churned_mrr_cents / mrr_at_start_cents`.
    pub mrr_churn_rate: Option<f64>,
    /// Plans counted above whose frequency is unknown (left out of every MRR figure).
    pub unknown_frequency: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountCents {
    pub count: u64,
    pub cents: i64,
}

/// Gifts dated in C whose status is now refunded or a chargeback (gross amounts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunds {
    pub refunded: CountCents,
    pub chargebacks_lost: CountCents,
    pub chargebacks_initiated: CountCents,
    pub total: CountCents,
}

/// Successful gifts in C.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftFigures {
    pub gifts: u64,
    pub donors: u64,
    pub gross_cents: i64,
    pub average_gift_cents: Option<i64>,
    /// The middle gift amount (the mean of the two middle ones for an even count, rounded).
    pub median_gift_cents: Option<i64>,
}

/// Donors by their giving in C: `[min, max)` in cents, `max` open for the top band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivingBand {
    pub label: String,
    pub min_cents: i64,
    pub max_cents: Option<i64>,
    pub donors: u64,
    pub cents: i64,
}

/// The band floors (cents): under $100, $100–$999.99, $1,000–$9,999.99, $10,000 and over.
pub const BAND_FLOORS: [(i64, &str); 4] = [
    (0, "under $100"),
    (10_000, "$100–$999"),
    (100_000, "$1,000–$9,999"),
    (1_000_000, "$10,000+"),
];

/// Every FEP figure of one organization for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FepReport {
    pub org_id: u64,
    pub as_of: i64,
    pub period: String,
    pub previous: Window,
    pub current: Window,
    pub retention: Retention,
    pub gain_loss: GainLoss,
    pub lapsed: LapsedReport,
    pub recurring: PlanHealth,
    pub refunds: Refunds,
    pub gifts: GiftFigures,
    pub bands: Vec<GivingBand>,
}

fn rate(num: i64, den: i64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

type ListKey = (i64, Reverse<u64>);

#[derive(Default)]
struct ListFold {
    group: LapsedGroup,
    heap: BinaryHeap<Reverse<(ListKey, u64)>>,
    rows: HashMap<u64, LapsedDonor>,
}

impl ListFold {
    fn add(&mut self, row: LapsedDonor, limit: usize) {
        let g = &mut self.group;
        g.donors += 1;
        g.dollars_at_risk_cents += row.amount_cents;
        g.mailchimp_consented += row.mailchimp_consent as u64;
        if limit == 0 {
            return;
        }
        let id = row.supporter_id;
        self.heap
            .push(Reverse(((row.amount_cents, Reverse(id)), id)));
        self.rows.insert(id, row);
        if self.heap.len() > limit {
            let Reverse((_, out)) = self.heap.pop().expect("non-empty");
            self.rows.remove(&out);
        }
    }

    fn finish(self) -> LapsedGroup {
        let mut g = self.group;
        g.list = self.rows.into_values().collect();
        g.list
            .sort_by_key(|r| (Reverse(r.amount_cents), r.supporter_id));
        g
    }
}

/// The donor side of the FEP figures, fed one supporter at a time.
pub struct FepFold {
    previous: Window,
    current: Window,
    options: FepOptions,
    this_year: FiscalYear,
    last_year: FiscalYear,
    retention: Retention,
    gl: GainLoss,
    lybunt: ListFold,
    sybunt: ListFold,
    refunds: Refunds,
    gifts: GiftFigures,
    amounts: BTreeMap<i64, u64>,
    bands: Vec<GivingBand>,
    scratch: Vec<FepGift>,
}

impl FepFold {
    pub fn new(previous: Window, current: Window, options: FepOptions) -> Self {
        let this_year = FiscalYear::of(current.end - 1, options.fiscal_year_start_month);
        let bands = BAND_FLOORS
            .iter()
            .enumerate()
            .map(|(i, (min, label))| GivingBand {
                label: label.to_string(),
                min_cents: *min,
                max_cents: BAND_FLOORS.get(i + 1).map(|(m, _)| *m),
                donors: 0,
                cents: 0,
            })
            .collect();
        FepFold {
            previous,
            current,
            options,
            this_year,
            last_year: this_year.previous(),
            retention: Retention::default(),
            gl: GainLoss::default(),
            lybunt: ListFold::default(),
            sybunt: ListFold::default(),
            refunds: Refunds::default(),
            gifts: GiftFigures::default(),
            amounts: BTreeMap::new(),
            bands,
            scratch: Vec::new(),
        }
    }

    /// Feeds one supporter's gifts (any status, any order); each supporter exactly once.
    /// Returns the LYBUNT/SYBUNT classification, which the caller completes with
    /// [`FepFold::lapsed`] once it has read the supporter's consent and name.
    pub fn supporter(&mut self, gifts: &[FepGift]) -> Option<Lapse> {
        let c = self.current;
        let end = c.end;
        for g in gifts.iter().filter(|g| c.contains(g.date)) {
            let slot = match g.status {
                GiftStatus::Refunded => &mut self.refunds.refunded,
                GiftStatus::ChargebackLost => &mut self.refunds.chargebacks_lost,
                GiftStatus::ChargebackInitiated => &mut self.refunds.chargebacks_initiated,
                GiftStatus::Success | GiftStatus::Other => continue,
            };
            slot.count += 1;
            slot.cents += g.gross;
            self.refunds.total.count += 1;
            self.refunds.total.cents += g.gross;
        }
        let mut ok = std::mem::take(&mut self.scratch);
        ok.clear();
        ok.extend(
            gifts
                .iter()
                .filter(|g| g.status == GiftStatus::Success && g.date < end),
        );
        ok.sort_by_key(|g| g.date);
        let lapse = self.fold(&ok);
        self.scratch = ok;
        lapse
    }

    fn fold(&mut self, gifts: &[FepGift]) -> Option<Lapse> {
        let first = gifts.first()?.date;
        let (p, c) = (self.previous, self.current);
        let (mut in_p, mut in_c, mut gave_p, mut gave_c) = (0i64, 0i64, false, false);
        for g in gifts {
            if p.contains(g.date) {
                in_p += g.gross;
                gave_p = true;
            }
            if c.contains(g.date) {
                in_c += g.gross;
                gave_c = true;
                self.gifts.gifts += 1;
                self.gifts.gross_cents += g.gross;
                *self.amounts.entry(g.gross).or_default() += 1;
            }
        }
        let before_p = first < p.start;
        let r = &mut self.retention;
        r.dollars_previous_cents += in_p;
        r.dollars_current_cents += in_c;
        if gave_p {
            r.donors_previous += 1;
            let new_in_p = p.contains(first);
            r.new_donors_previous += new_in_p as u64;
            r.repeat_donors_previous += before_p as u64;
            if gave_c {
                r.retained += 1;
                r.new_donors_retained += new_in_p as u64;
                r.repeat_donors_retained += before_p as u64;
                r.dollars_retained_cents += in_c;
            }
        }
        if gave_c {
            r.donors_current += 1;
            self.gifts.donors += 1;
            let band = self
                .bands
                .iter_mut()
                .rev()
                .find(|b| in_c >= b.min_cents)
                .unwrap_or_else(|| unreachable!("the lowest band starts at 0"));
            band.donors += 1;
            band.cents += in_c;
        }
        let gl = &mut self.gl;
        let add = |f: &mut Flow, cents: i64| {
            f.donors += 1;
            f.cents += cents;
        };
        match (gave_p, gave_c) {
            (false, true) if c.contains(first) => add(&mut gl.new, in_c),
            (false, true) => add(&mut gl.recaptured, in_c),
            (true, true) if in_c > in_p => add(&mut gl.upgraded, in_c - in_p),
            (true, true) if in_c < in_p => add(&mut gl.downgraded, in_p - in_c),
            (true, true) => add(&mut gl.same, 0),
            (true, false) => add(&mut gl.lapsed, in_p),
            (false, false) => {}
        }
        self.lapse(gifts)
    }

    fn lapse(&self, gifts: &[FepGift]) -> Option<Lapse> {
        let (this, last) = (self.this_year, self.last_year);
        let last_gift = gifts.last()?.date;
        if this.contains(last_gift) {
            return None;
        }
        let (kind, year) = if last.contains(last_gift) {
            (LapseKind::Lybunt, last)
        } else {
            (
                LapseKind::Sybunt,
                FiscalYear::of(last_gift, self.options.fiscal_year_start_month),
            )
        };
        Some(Lapse {
            kind,
            last_year: year.label,
            amount_cents: gifts
                .iter()
                .filter(|g| year.contains(g.date))
                .map(|g| g.gross)
                .sum(),
            last_gift_at: last_gift,
        })
    }

    /// Records a LYBUNT or SYBUNT donor with their consent and name.
    pub fn lapsed(&mut self, id: u64, lapse: Lapse, consent: bool, name: Option<String>) {
        let row = LapsedDonor {
            supporter_id: id,
            name,
            last_year: lapse.last_year,
            amount_cents: lapse.amount_cents,
            last_gift_at: lapse.last_gift_at,
            mailchimp_consent: consent,
        };
        let limit = self.options.limit;
        match lapse.kind {
            LapseKind::Lybunt => self.lybunt.add(row, limit),
            LapseKind::Sybunt => self.sybunt.add(row, limit),
        }
    }

    /// The donor-side figures: (retention, gain/loss, lapsed, refunds, gifts, bands).
    pub fn finish(
        self,
    ) -> (
        Retention,
        GainLoss,
        LapsedReport,
        Refunds,
        GiftFigures,
        Vec<GivingBand>,
    ) {
        let mut r = self.retention;
        r.rate = rate(r.retained as i64, r.donors_previous as i64);
        r.new_donor_rate = rate(r.new_donors_retained as i64, r.new_donors_previous as i64);
        r.repeat_donor_rate = rate(
            r.repeat_donors_retained as i64,
            r.repeat_donors_previous as i64,
        );
        r.dollar_rate = rate(r.dollars_retained_cents, r.dollars_previous_cents);
        let mut gl = self.gl;
        gl.gains = Flow {
            donors: gl.new.donors + gl.recaptured.donors,
            cents: gl.new.cents + gl.recaptured.cents + gl.upgraded.cents,
        };
        gl.losses = Flow {
            donors: gl.lapsed.donors,
            cents: gl.downgraded.cents + gl.lapsed.cents,
        };
        gl.net = Flow {
            donors: gl.gains.donors - gl.losses.donors,
            cents: gl.gains.cents - gl.losses.cents,
        };
        let mut gifts = self.gifts;
        if gifts.gifts > 0 {
            gifts.average_gift_cents =
                Some((gifts.gross_cents as f64 / gifts.gifts as f64).round() as i64);
            gifts.median_gift_cents = Some(median(&self.amounts, gifts.gifts));
        }
        let lapsed = LapsedReport {
            fiscal_year_start_month: self.options.fiscal_year_start_month.clamp(1, 12),
            this_year: self.this_year.label,
            last_year: self.last_year.label,
            lybunt: self.lybunt.finish(),
            sybunt: self.sybunt.finish(),
        };
        (r, gl, lapsed, self.refunds, gifts, self.bands)
    }
}

/// The exact median of `n` amounts held as a histogram (amount → how many).
fn median(amounts: &BTreeMap<i64, u64>, n: u64) -> i64 {
    let nth = |k: u64| {
        let mut seen = 0;
        for (a, c) in amounts {
            seen += c;
            if seen > k {
                return *a;
            }
        }
        unreachable!("k < n")
    };
    if n % 2 == 1 {
        nth(n / 2)
    } else {
        ((nth(n / 2 - 1) + nth(n / 2)) as f64 / 2.0).round() as i64
    }
}

/// When a plan began: started, else created.
fn plan_start(p: &RecurringPlan) -> i64 {
    p.started_at.or(p.created_at).unwrap_or(p.updated_at).unix()
}

/// When a plan stopped, if it did: canceled at, or last updated for a failed or ended plan.
fn plan_end(p: &RecurringPlan) -> Option<i64> {
    match p.status.as_deref() {
        Some("canceled") => Some(p.canceled_at.unwrap_or(p.updated_at).unix()),
        Some("failed") | Some("ended") => Some(p.updated_at.unix()),
        _ => None,
    }
}

/// Whether a plan was giving at `t`: begun before it, not stopped before it, and not a
/// draft or an abandoned attempt.
pub fn plan_live_at(p: &RecurringPlan, t: i64) -> bool {
    !matches!(p.status.as_deref(), Some("draft") | Some("attempted"))
        && plan_start(p) < t
        && plan_end(p).is_none_or(|e| e >= t)
}

/// Recurring-plan health over C, one plan at a time.
pub struct PlanFold {
    current: Window,
    h: PlanHealth,
    mrr: f64,
    start: f64,
    churned: f64,
}

impl PlanFold {
    pub fn new(current: Window) -> Self {
        PlanFold {
            current,
            h: PlanHealth::default(),
            mrr: 0.0,
            start: 0.0,
            churned: 0.0,
        }
    }

    pub fn plan(&mut self, p: &RecurringPlan) {
        let c = self.current;
        let status = p.status.as_deref().unwrap_or("");
        let monthly = per_month(p.frequency.as_deref())
            .map(|k| to_cents(p.donation_amount.unwrap_or(0.0)) as f64 * k);
        let h = &mut self.h;
        let live_at_start = plan_live_at(p, c.start);
        let canceled_in_c = status == "canceled" && plan_end(p).is_some_and(|e| c.contains(e));
        match status {
            "active" => h.active += 1,
            "failing" => h.failing += 1,
            "paused" => h.paused += 1,
            "failed" if c.contains(p.updated_at.unix()) => h.failed += 1,
            _ => {}
        }
        h.canceled += canceled_in_c as u64;
        if c.contains(plan_start(p)) && !matches!(status, "draft" | "attempted") {
            h.new += 1;
        }
        let counted = status == "active" || live_at_start;
        match monthly {
            Some(m) => {
                if status == "active" {
                    self.mrr += m;
                }
                if live_at_start {
                    self.start += m;
                    if canceled_in_c {
                        self.churned += m;
                    }
                }
            }
            None if counted => h.unknown_frequency += 1,
            None => {}
        }
    }

    pub fn finish(self) -> PlanHealth {
        let mut h = self.h;
        h.mrr_cents = self.mrr.round() as i64;
        h.mrr_at_start_cents = self.start.round() as i64;
        h.churned_mrr_cents = self.churned.round() as i64;
        h.mrr_churn_rate = rate(h.churned_mrr_cents, h.mrr_at_start_cents);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        Timestamp::parse(s).unwrap().unix()
    }

    /// P = 2024, C = 2025, as of 2026-01-01.
    fn fold() -> FepFold {
        let (p, c) =
            comparison_windows(&Period::Year(2025), Timestamp::parse("2026-03-01").unwrap());
        FepFold::new(p, c, FepOptions::default())
    }

    fn ok(date: &str, dollars: i64) -> FepGift {
        FepGift {
            date: ts(date),
            gross: dollars * 100,
            status: GiftStatus::Success,
        }
    }

    fn with(date: &str, dollars: i64, status: GiftStatus) -> FepGift {
        FepGift {
            date: ts(date),
            gross: dollars * 100,
            status,
        }
    }

    #[test]
    fn windows_compare_like_with_like() {
        let now = Timestamp::parse("2026-06-15T12:00:00Z").unwrap();
        let (p, c) = comparison_windows(&Period::Year(2025), now);
        assert_eq!((p.start, p.end), (ts("2024-01-01"), ts("2025-01-01")));
        assert_eq!((c.start, c.end), (ts("2025-01-01"), ts("2026-01-01")));
        let (p, c) = comparison_windows(&Period::LastMonths(12), now);
        assert_eq!(p.start, ts("2024-06-15T12:00:00Z"));
        assert_eq!(p.end, c.start);
        let (p, c) = comparison_windows(&Period::LastDays(30), now);
        assert_eq!((p.len(), p.end), (30 * DAY, c.start));
        let (p, c) = comparison_windows(&Period::YearToDate, now);
        assert_eq!(
            (p.start, p.end),
            (ts("2025-01-01"), ts("2025-06-15T12:00:00Z"))
        );
        assert_eq!(c.start, ts("2026-01-01"));
        let f = FiscalYear::of(ts("2025-06-30T23:59:59Z"), 7);
        assert_eq!(
            (f.label, f.start, f.end),
            (2025, ts("2024-07-01"), ts("2025-07-01"))
        );
        assert_eq!(FiscalYear::of(ts("2025-07-01"), 7).label, 2026);
        assert_eq!(FiscalYear::of(ts("2025-07-01"), 1).label, 2025);
        assert_eq!(f.previous().start, ts("2023-07-01"));
    }

    #[test]
    fn retention_and_gain_loss_follow_the_fep_definitions() {
        let mut f = fold();
        // Upgraded: first gift before P, 50 in P, 80 in C (repeat donor, retained).
        assert_eq!(
            f.supporter(&[
                ok("2023-05-01", 10),
                ok("2024-03-01", 50),
                ok("2025-02-01", 80)
            ]),
            None
        );
        // Recaptured: gave before P, not in P, in C.
        f.supporter(&[ok("2022-05-01", 20), ok("2025-04-01", 30)]);
        // New in C.
        f.supporter(&[ok("2025-06-01", 100)]);
        // New in P, downgraded (70 → 40): new-donor retained.
        f.supporter(&[ok("2024-02-01", 70), ok("2025-02-01", 40)]);
        // New in P, lapsed; a refund in C does not count as giving (nor a chargeback).
        f.supporter(&[
            ok("2024-08-01", 25),
            with("2025-03-01", 500, GiftStatus::Refunded),
            with("2025-03-02", 60, GiftStatus::ChargebackLost),
        ]);
        // Same: 35 in each, in two gifts in C; a refunded P gift is netted out.
        f.supporter(&[
            ok("2024-04-01", 35),
            with("2024-04-02", 1000, GiftStatus::Refunded),
            ok("2025-01-05", 15),
            ok("2025-11-05", 20),
        ]);
        // Gifts after C ends are ignored.
        f.supporter(&[ok("2026-02-01", 999)]);
        let (r, gl, _, refunds, gifts, bands) = f.finish();
        assert_eq!(r.donors_previous, 4);
        assert_eq!(r.donors_current, 5);
        assert_eq!(r.retained, 3);
        assert_eq!(r.rate, Some(0.75));
        // New in P: the downgraded, the lapsed and the same; repeat: the upgraded.
        assert_eq!((r.new_donors_previous, r.new_donors_retained), (3, 2));
        assert_eq!((r.repeat_donors_previous, r.repeat_donors_retained), (1, 1));
        assert_eq!(r.dollars_previous_cents, (50 + 70 + 25 + 35) * 100);
        assert_eq!(r.dollars_retained_cents, (80 + 40 + 35) * 100);
        assert_eq!(r.dollar_rate, Some(155.0 / 180.0));
        assert_eq!(
            gl.new,
            Flow {
                donors: 1,
                cents: 10_000
            }
        );
        assert_eq!(
            gl.recaptured,
            Flow {
                donors: 1,
                cents: 3_000
            }
        );
        assert_eq!(
            gl.upgraded,
            Flow {
                donors: 1,
                cents: 3_000
            }
        );
        assert_eq!(
            gl.same,
            Flow {
                donors: 1,
                cents: 0
            }
        );
        assert_eq!(
            gl.downgraded,
            Flow {
                donors: 1,
                cents: 3_000
            }
        );
        assert_eq!(
            gl.lapsed,
            Flow {
                donors: 1,
                cents: 2_500
            }
        );
        assert_eq!(gl.net.donors, 5 - 4);
        assert_eq!(
            gl.net.cents,
            r.dollars_current_cents - r.dollars_previous_cents
        );
        assert_eq!(
            refunds.refunded,
            CountCents {
                count: 1,
                cents: 50_000
            }
        );
        assert_eq!(
            refunds.chargebacks_lost,
            CountCents {
                count: 1,
                cents: 6_000
            }
        );
        assert_eq!(refunds.total.count, 2);
        // Gifts in C: 80, 30, 100, 40, 15, 20 → median (30 + 40) / 2.
        assert_eq!(gifts.gifts, 6);
        assert_eq!(gifts.median_gift_cents, Some(3_500));
        assert_eq!(gifts.average_gift_cents, Some(4_750));
        assert_eq!(bands[0].donors, 4); // 80, 30, 40, 35
        assert_eq!(bands[1].donors, 1); // 100
        assert_eq!(bands[1].cents, 10_000);
    }

    #[test]
    fn lybunt_and_sybunt_with_dollars_at_risk_and_a_bounded_list() {
        // As of the end of 2025 (C = 2025): this year 2025, last year 2024.
        let mut f = fold();
        let l = f
            .supporter(&[
                ok("2023-03-01", 5),
                ok("2024-03-01", 40),
                ok("2024-09-01", 60),
            ])
            .unwrap();
        assert_eq!(
            (l.kind, l.last_year, l.amount_cents),
            (LapseKind::Lybunt, 2024, 10_000)
        );
        f.lapsed(1, l, true, Some("Ada".into()));
        let s = f
            .supporter(&[ok("2021-03-01", 5), ok("2022-12-31", 70)])
            .unwrap();
        assert_eq!(
            (s.kind, s.last_year, s.amount_cents),
            (LapseKind::Sybunt, 2022, 7_000)
        );
        f.lapsed(2, s, false, None);
        for id in 3..30 {
            let s = f.supporter(&[ok("2020-01-01", id)]).unwrap();
            f.lapsed(id as u64, s, id % 2 == 0, None);
        }
        assert_eq!(
            f.supporter(&[ok("2024-01-01", 5), ok("2025-12-31", 1)]),
            None
        );
        let (.., lapsed, _, _, _) = {
            let (a, b, c, d, e, g) = f.finish();
            (a, b, c, d, e, g)
        };
        assert_eq!((lapsed.this_year, lapsed.last_year), (2025, 2024));
        assert_eq!(lapsed.lybunt.donors, 1);
        assert_eq!(lapsed.lybunt.dollars_at_risk_cents, 10_000);
        assert_eq!(lapsed.lybunt.mailchimp_consented, 1);
        assert_eq!(lapsed.sybunt.donors, 28);
        assert_eq!(lapsed.sybunt.mailchimp_consented, 13);
        assert_eq!(lapsed.sybunt.list.len(), 20);
        assert_eq!(lapsed.sybunt.list[0].supporter_id, 2);
        assert_eq!(lapsed.sybunt.list[1].supporter_id, 29);
        // A fiscal year starting in July: the 2024-09 gift is in FY2025 (this year).
        let (p, c) =
            comparison_windows(&Period::Year(2025), Timestamp::parse("2026-03-01").unwrap());
        let mut f = FepFold::new(
            p,
            c,
            FepOptions {
                limit: 5,
                fiscal_year_start_month: 7,
            },
        );
        let l = f
            .supporter(&[ok("2024-09-01", 60), ok("2025-05-01", 10)])
            .unwrap();
        // End of C = 2025-12-31, in FY2026; FY2025 = 2024-07..2025-07.
        assert_eq!(
            (l.kind, l.last_year, l.amount_cents),
            (LapseKind::Lybunt, 2025, 7_000)
        );
    }

    fn plan(
        status: &str,
        amount: f64,
        freq: &str,
        started: &str,
        canceled: Option<&str>,
        updated: &str,
    ) -> RecurringPlan {
        serde_json::from_value(serde_json::json!({"id": 1, "supporter_id": 1,
            "donation_amount": amount, "frequency": freq, "status": status,
            "started_at": started, "canceled_at": canceled, "updated_at": updated}))
        .unwrap()
    }

    #[test]
    fn plan_health_and_mrr_churn() {
        let c = Window {
            start: ts("2025-01-01"),
            end: ts("2026-01-01"),
        };
        let mut f = PlanFold::new(c);
        f.plan(&plan(
            "active",
            10.0,
            "monthly",
            "2024-01-01",
            None,
            "2024-01-01",
        ));
        f.plan(&plan(
            "active",
            120.0,
            "yearly",
            "2025-03-01",
            None,
            "2025-03-01",
        )); // new
        f.plan(&plan(
            "canceled",
            30.0,
            "monthly",
            "2023-01-01",
            Some("2025-06-01"),
            "2025-06-01",
        )); // churned
        f.plan(&plan(
            "canceled",
            5.0,
            "monthly",
            "2023-01-01",
            Some("2024-06-01"),
            "2024-06-01",
        )); // before C
        f.plan(&plan(
            "failing",
            20.0,
            "monthly",
            "2024-05-01",
            None,
            "2025-12-01",
        ));
        f.plan(&plan(
            "paused",
            15.0,
            "quarterly",
            "2024-05-01",
            None,
            "2025-12-01",
        ));
        f.plan(&plan(
            "failed",
            50.0,
            "monthly",
            "2024-05-01",
            None,
            "2025-02-01",
        ));
        f.plan(&plan(
            "draft",
            50.0,
            "monthly",
            "2025-05-01",
            None,
            "2025-05-01",
        ));
        let h = f.finish();
        assert_eq!((h.active, h.new, h.canceled), (2, 1, 1));
        assert_eq!((h.failing, h.failed, h.paused), (1, 1, 1));
        assert_eq!(h.mrr_cents, 1_000 + 1_000);
        // Live at the start: 10 + 30 + 20 + 5 (15 quarterly) + 50.
        assert_eq!(h.mrr_at_start_cents, 1_000 + 3_000 + 2_000 + 500 + 5_000);
        assert_eq!(h.churned_mrr_cents, 3_000);
        assert_eq!(h.mrr_churn_rate, Some(3_000.0 / 11_500.0));
    }

    #[test]
    fn median_of_a_histogram() {
        let m: BTreeMap<i64, u64> = [(100, 2), (300, 1), (1000, 1)].into_iter().collect();
        assert_eq!(median(&m, 4), 200);
        let m: BTreeMap<i64, u64> = [(100, 2), (300, 1)].into_iter().collect();
        assert_eq!(median(&m, 3), 100);
    }
}
