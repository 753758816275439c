//! In-memory store. Each org × entity keeps its records in a Vec in id order plus an index of
//! positions sorted by (updated_at, id), so the common incremental reads (`id>X` by id,
//! `updated_at>=X` by updated_at) are a binary search and a slice. Other queries scan once and
//! cache the matching positions until the next mutation.

use super::generate::{Blank, OrgData};
use super::model::*;
use super::record::{Accessor, Record, Scalar};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};

/// Filter comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// A parsed filter operand, typed after the field it compares with.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Null,
    Int(i64),
    Num(f64),
    Str(String),
    Bool(bool),
    Time(i64),
    Date(i32),
}

/// A validated `filter={field}{op}{value}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    pub value: Operand,
}

/// A validated `sort={field}:asc|desc`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sort {
    pub field: String,
    pub desc: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            field: "id".into(),
            desc: false,
        }
    }
}

/// Orders two values of one field; nulls sort first, like SQL ascending.
pub fn cmp_scalar(a: &Scalar, b: &Scalar) -> Ordering {
    use Scalar::*;
    match (a, b) {
        (Null, Null) => Ordering::Equal,
        (Null, _) => Ordering::Less,
        (_, Null) => Ordering::Greater,
        (Int(x), Int(y)) => x.cmp(y),
        (Str(x), Str(y)) => x.cmp(y),
        (Bool(x), Bool(y)) => x.cmp(y),
        (Time(x), Time(y)) => x.cmp(y),
        (Date(x), Date(y)) => x.cmp(y),
        (x, y) => num(x).partial_cmp(&num(y)).unwrap_or(Ordering::Equal),
    }
}

fn num(s: &Scalar) -> f64 {
    match s {
        Scalar::Int(v) => *v as f64,
        Scalar::Num(v) => *v,
        Scalar::Bool(b) => *b as i64 as f64,
        Scalar::Time(v) => *v as f64,
        Scalar::Date(v) => *v as f64,
        _ => f64::NAN,
    }
}

impl Filter {
    /// Whether a record value satisfies the filter. A null value only matches `!=` (against a
    /// non-null operand) and `=null`.
    pub fn matches(&self, v: Scalar) -> bool {
        let ord = match (&self.value, v) {
            (Operand::Null, Scalar::Null) => Some(Ordering::Equal),
            (Operand::Null, _) | (_, Scalar::Null) => None,
            (Operand::Int(x), Scalar::Int(y)) => Some(y.cmp(x)),
            (Operand::Int(x), y) => num(&y).partial_cmp(&(*x as f64)),
            (Operand::Num(x), y) => num(&y).partial_cmp(x),
            (Operand::Str(x), Scalar::Str(y)) => Some(y.cmp(x.as_str())),
            (Operand::Bool(x), Scalar::Bool(y)) => Some(y.cmp(x)),
            (Operand::Time(x), Scalar::Time(y)) => Some(y.cmp(x)),
            (Operand::Date(x), Scalar::Date(y)) => Some(y.cmp(x)),
            _ => None,
        };
        match (self.op, ord) {
            (Op::Ne, None) => true,
            (_, None) => false,
            (Op::Lt, Some(o)) => o == Ordering::Less,
            (Op::Le, Some(o)) => o != Ordering::Greater,
            (Op::Gt, Some(o)) => o == Ordering::Greater,
            (Op::Ge, Some(o)) => o != Ordering::Less,
            (Op::Eq, Some(o)) => o == Ordering::Equal,
            (Op::Ne, Some(o)) => o != Ordering::Equal,
        }
    }
}

/// The records a query selects, in answer order, as positions into `Table::records`.
pub enum Selection {
    /// `records[start..end]`, possibly walked backwards.
    ById {
        start: usize,
        end: usize,
        desc: bool,
    },
    /// `by_updated[start..end]`, possibly walked backwards.
    ByUpdated {
        start: usize,
        end: usize,
        desc: bool,
    },
    List(Arc<Vec<u32>>),
}

impl Selection {
    pub fn len(&self) -> usize {
        match self {
            Selection::ById { start, end, .. } | Selection::ByUpdated { start, end, .. } => {
                end - start
            }
            Selection::List(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Position (into `records`) of the `i`-th selected record.
    pub fn position<R>(&self, table: &Table<R>, i: usize) -> usize {
        match *self {
            Selection::ById { start, end, desc } => {
                if desc {
                    end - 1 - i
                } else {
                    start + i
                }
            }
            Selection::ByUpdated { start, end, desc } => {
                table.by_updated[if desc { end - 1 - i } else { start + i }] as usize
            }
            Selection::List(ref l) => l[i] as usize,
        }
    }
}

/// One org × entity.
pub struct Table<R> {
    /// Ascending id; new records get ids above every existing one, so pushes keep the order.
    pub records: Vec<R>,
    /// Positions sorted by (updated_at, id).
    pub by_updated: Vec<u32>,
    cache: Mutex<HashMap<String, Arc<Vec<u32>>>>,
    /// Fault injection: fields served verbatim in place of a record's own (by id), to model
    /// an upstream record that breaks the published schema. Empty unless a test sets it.
    pub corrupt: HashMap<i64, serde_json::Map<String, serde_json::Value>>,
}

const CACHE_ENTRIES: usize = 32;

impl<R: Record> Table<R> {
    pub fn new(mut records: Vec<R>) -> Self {
        records.sort_unstable_by_key(|r| r.id());
        let mut by_updated: Vec<u32> = (0..records.len() as u32).collect();
        by_updated.sort_unstable_by_key(|&p| {
            (records[p as usize].updated_at(), records[p as usize].id())
        });
        Table {
            records,
            by_updated,
            cache: Mutex::new(HashMap::new()),
            corrupt: HashMap::new(),
        }
    }

    pub fn position_of(&self, id: i64) -> Option<usize> {
        self.records.binary_search_by_key(&id, |r| r.id()).ok()
    }

    fn updated_key(&self, pos: u32) -> (i64, i64) {
        let r = &self.records[pos as usize];
        (r.updated_at(), r.id())
    }

    fn invalidate(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    pub fn insert(&mut self, rec: R) {
        let pos = self.records.len() as u32;
        let key = (rec.updated_at(), rec.id());
        self.records.push(rec);
        let at = self
            .by_updated
            .partition_point(|&p| self.updated_key(p) < key);
        self.by_updated.insert(at, pos);
        self.invalidate();
    }

    /// Replaces the record at `pos` (same id), keeping the updated_at index in order.
    pub fn replace(&mut self, pos: usize, rec: R) {
        let old = self.updated_key(pos as u32);
        let at = self
            .by_updated
            .partition_point(|&p| self.updated_key(p) < old);
        debug_assert_eq!(self.by_updated[at] as usize, pos);
        self.by_updated.remove(at);
        self.records[pos] = rec;
        let key = self.updated_key(pos as u32);
        let at = self
            .by_updated
            .partition_point(|&p| self.updated_key(p) < key);
        self.by_updated.insert(at, pos as u32);
        self.invalidate();
    }

    /// Sets `updated_at` on many records at once (one index rebuild).
    pub fn touch(&mut self, positions: &[usize], t: i64) {
        for &p in positions {
            self.records[p].set_updated_at(t);
        }
        let records = &self.records;
        self.by_updated.sort_unstable_by_key(|&p| {
            (records[p as usize].updated_at(), records[p as usize].id())
        });
        self.invalidate();
    }

    /// Resolves a query. `cache_key` identifies (filter, sort) for the scan cache.
    pub fn select(&self, filter: Option<&Filter>, sort: &Sort, cache_key: &str) -> Selection {
        let range_op = |f: &Filter| matches!(f.op, Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq);
        match (filter, sort.field.as_str()) {
            (None, "id") => {
                return Selection::ById {
                    start: 0,
                    end: self.records.len(),
                    desc: sort.desc,
                };
            }
            // Descending updated_at must still break ties by ascending id, which a backwards
            // walk of the index would not do: those queries take the (cached) scan path.
            (None, "updated_at") if !sort.desc => {
                return Selection::ByUpdated {
                    start: 0,
                    end: self.by_updated.len(),
                    desc: false,
                };
            }
            (Some(f), "id") if f.field == "id" && range_op(f) => {
                let get = |i: usize| self.records[i].id();
                if let Some(v) = int_operand(&f.value) {
                    let (start, end) = bounds(self.records.len(), f.op, v, get);
                    return Selection::ById {
                        start,
                        end,
                        desc: sort.desc,
                    };
                }
            }
            (Some(f), "updated_at") if f.field == "updated_at" && range_op(f) && !sort.desc => {
                if let Operand::Time(v) = f.value {
                    let get = |i: usize| self.records[self.by_updated[i] as usize].updated_at();
                    let (start, end) = bounds(self.by_updated.len(), f.op, v, get);
                    return Selection::ByUpdated {
                        start,
                        end,
                        desc: false,
                    };
                }
            }
            _ => {}
        }
        if let Some(hit) = self.cache.lock().expect("cache lock").get(cache_key) {
            return Selection::List(hit.clone());
        }
        let list = Arc::new(self.scan(filter, sort));
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(cache_key.to_string(), list.clone());
        Selection::List(list)
    }

    fn scan(&self, filter: Option<&Filter>, sort: &Sort) -> Vec<u32> {
        let mut out: Vec<u32> = match filter {
            Some(f) => {
                let acc: Accessor<R> = R::accessor(&f.field).expect("filter field validated");
                (0..self.records.len() as u32)
                    .filter(|&p| f.matches(acc(&self.records[p as usize])))
                    .collect()
            }
            None => (0..self.records.len() as u32).collect(),
        };
        if sort.field != "id" || sort.desc {
            let acc: Accessor<R> = R::accessor(&sort.field).expect("sort field validated");
            let recs = &self.records;
            // Stable sort over id order: ties stay in ascending id order in both directions.
            out.sort_by(|&a, &b| {
                let o = cmp_scalar(&acc(&recs[a as usize]), &acc(&recs[b as usize]));
                if sort.desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        out
    }
}

fn int_operand(v: &Operand) -> Option<i64> {
    match v {
        Operand::Int(i) => Some(*i),
        _ => None,
    }
}

/// Index range of a sorted column where `value op v` holds.
fn bounds(len: usize, op: Op, v: i64, get: impl Fn(usize) -> i64) -> (usize, usize) {
    let first_ge = partition(len, |i| get(i) < v);
    let first_gt = partition(len, |i| get(i) <= v);
    match op {
        Op::Lt => (0, first_ge),
        Op::Le => (0, first_gt),
        Op::Gt => (first_gt, len),
        Op::Ge => (first_ge, len),
        Op::Eq => (first_ge, first_gt),
        Op::Ne => unreachable!("!= is answered by a scan"),
    }
}

fn partition(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// One organization's tables.
pub struct OrgStore {
    pub org: Organization,
    /// The OAuth client that may read this organization.
    pub client_id: String,
    pub supporters: RwLock<Table<Supporter>>,
    pub campaigns: RwLock<Table<Campaign>>,
    pub transactions: RwLock<Table<Transaction>>,
    pub plans: RwLock<Table<RecurringDonationPlan>>,
}

/// A served list entity: its URL segment, its table and its id counter.
pub trait Entity: Record + Blank {
    const PATH: &'static str;
    fn table(org: &OrgStore) -> &RwLock<Table<Self>>;
    fn id_counter(store: &Store) -> &AtomicI64;
}

impl Entity for Supporter {
    const PATH: &'static str = "supporters";
    fn table(org: &OrgStore) -> &RwLock<Table<Self>> {
        &org.supporters
    }
    fn id_counter(store: &Store) -> &AtomicI64 {
        &store.next_ids[0]
    }
}

impl Entity for Campaign {
    const PATH: &'static str = "campaigns";
    fn table(org: &OrgStore) -> &RwLock<Table<Self>> {
        &org.campaigns
    }
    fn id_counter(store: &Store) -> &AtomicI64 {
        &store.next_ids[1]
    }
}

impl Entity for Transaction {
    const PATH: &'static str = "transactions";
    fn table(org: &OrgStore) -> &RwLock<Table<Self>> {
        &org.transactions
    }
    fn id_counter(store: &Store) -> &AtomicI64 {
        &store.next_ids[2]
    }
}

impl Entity for RecurringDonationPlan {
    const PATH: &'static str = "recurring-donation-plans";
    fn table(org: &OrgStore) -> &RwLock<Table<Self>> {
        &org.plans
    }
    fn id_counter(store: &Store) -> &AtomicI64 {
        &store.next_ids[3]
    }
}

/// The four list entities, as named in URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    Supporters,
    Campaigns,
    Transactions,
    Plans,
}

impl EntityKind {
    pub fn from_path(s: &str) -> Option<Self> {
        Some(match s {
            "supporters" => EntityKind::Supporters,
            "campaigns" => EntityKind::Campaigns,
            "transactions" => EntityKind::Transactions,
            "recurring-donation-plans" => EntityKind::Plans,
            _ => return None,
        })
    }
}

/// Runs a generic expression with `$t` bound to the entity type for a runtime [`EntityKind`].
#[macro_export]
macro_rules! with_entity {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            $crate::data::store::EntityKind::Supporters => {
                type $t = $crate::data::model::Supporter;
                $body
            }
            $crate::data::store::EntityKind::Campaigns => {
                type $t = $crate::data::model::Campaign;
                $body
            }
            $crate::data::store::EntityKind::Transactions => {
                type $t = $crate::data::model::Transaction;
                $body
            }
            $crate::data::store::EntityKind::Plans => {
                type $t = $crate::data::model::RecurringDonationPlan;
                $body
            }
        }
    };
}

/// An OAuth client and the organizations it may read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppInfo {
    pub client_id: String,
    pub client_secret: String,
    pub organizations: Vec<i64>,
}

pub struct Store {
    pub orgs: BTreeMap<i64, Arc<OrgStore>>,
    pub apps: Vec<AppInfo>,
    /// Next id per entity (supporters, campaigns, transactions, plans), shared by all orgs.
    pub next_ids: [AtomicI64; 4],
}

impl Store {
    pub fn new(data: Vec<OrgData>, apps: Vec<AppInfo>) -> Self {
        let owner: HashMap<i64, String> = apps
            .iter()
            .flat_map(|a| {
                a.organizations
                    .iter()
                    .map(move |o| (*o, a.client_id.clone()))
            })
            .collect();
        let mut max = [0i64; 4];
        let mut orgs = BTreeMap::new();
        for d in data {
            let last = |ids: Option<i64>, m: &mut i64| *m = (*m).max(ids.unwrap_or(0));
            last(d.supporters.iter().map(|r| r.id).max(), &mut max[0]);
            last(d.campaigns.iter().map(|r| r.id).max(), &mut max[1]);
            last(d.transactions.iter().map(|r| r.id).max(), &mut max[2]);
            last(d.plans.iter().map(|r| r.id).max(), &mut max[3]);
            let id = d.org.id;
            orgs.insert(
                id,
                Arc::new(OrgStore {
                    client_id: owner.get(&id).cloned().unwrap_or_default(),
                    org: d.org,
                    supporters: RwLock::new(Table::new(d.supporters)),
                    campaigns: RwLock::new(Table::new(d.campaigns)),
                    transactions: RwLock::new(Table::new(d.transactions)),
                    plans: RwLock::new(Table::new(d.plans)),
                }),
            );
        }
        let bases = [
            super::generate::SUPPORTER_ID_BASE,
            super::generate::CAMPAIGN_ID_BASE,
            super::generate::TRANSACTION_ID_BASE,
            super::generate::PLAN_ID_BASE,
        ];
        let next_ids = std::array::from_fn(|i| AtomicI64::new(max[i].max(bases[i]) + 1));
        Store {
            orgs,
            apps,
            next_ids,
        }
    }

    pub fn next_id<E: Entity>(&self) -> i64 {
        E::id_counter(self).fetch_add(1, AtomicOrdering::SeqCst)
    }
}
