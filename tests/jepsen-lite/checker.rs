//! Checkers: a WGL/Lowe linearizability search with memoization for per-key read/write/CAS
//! registers, and a set checker.
//!
//! Every write writes a globally unique value, so the register search can be pruned: an
//! indeterminate (`Unknown`) write that no read and no successful CAS ever observed is the same
//! as one linearized at the very end, and is dropped (iterated to a fixpoint, since an observed
//! unknown CAS makes its expected value observed too). Failed reads carry no information and are
//! dropped; CASes that answered `false` are dropped (Knossos-style).

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::collections::HashSet;

/// What a client asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Read,
    Write(String),
    Cas { expect: String, new: String },
}

/// What it learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A read's value (`None`: not found).
    Read(Option<String>),
    /// A write, or a CAS that answered true.
    Done,
    /// A CAS that answered false.
    CasFailed,
    /// Timed out or lost: it may or may not have taken effect.
    Unknown,
}

/// One completed (or abandoned) operation on one key.
#[derive(Debug, Clone)]
pub struct Op {
    pub id: usize,
    pub proc: u64,
    pub call_ns: u64,
    /// `u64::MAX` for `Unknown`: it may take effect any time after its call.
    pub ret_ns: u64,
    pub input: Input,
    pub output: Output,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// The op that no order could place, with the ops around it.
    NotLinearizable {
        op: usize,
        window: Vec<usize>,
    },
    /// The search ran out of budget: counts as a failure (a slow search must not hide a bug).
    Unknown,
}

type State = Option<String>;

/// The register model; `None` when the op cannot be placed in `s`.
fn step(s: &State, input: &Input, output: &Output) -> Option<State> {
    match (input, output) {
        (Input::Read, Output::Read(v)) => (v == s).then(|| s.clone()),
        (Input::Write(v), Output::Done | Output::Unknown) => Some(Some(v.clone())),
        (Input::Cas { expect, new }, Output::Done) => (s.as_ref() == Some(expect)).then(|| Some(new.clone())),
        (Input::Cas { expect, new }, Output::Unknown) => {
            Some(if s.as_ref() == Some(expect) { Some(new.clone()) } else { s.clone() })
        }
        _ => None,
    }
}

/// Drops what carries no information (see the module doc).
pub fn prune(ops: &[Op]) -> Vec<Op> {
    let mut seen: HashSet<&str> = HashSet::new();
    for o in ops {
        match (&o.input, &o.output) {
            (Input::Read, Output::Read(Some(v))) => {
                seen.insert(v);
            }
            (Input::Cas { expect, .. }, Output::Done) => {
                seen.insert(expect);
            }
            _ => {}
        }
    }
    loop {
        let before = seen.len();
        for o in ops {
            if let (Input::Cas { expect, new }, Output::Unknown) = (&o.input, &o.output) {
                if seen.contains(new.as_str()) {
                    seen.insert(expect);
                }
            }
        }
        if seen.len() == before {
            break;
        }
    }
    ops.iter()
        .filter(|o| match (&o.input, &o.output) {
            (Input::Read, Output::Read(_)) => true,
            (Input::Read, _) => false,
            (_, Output::CasFailed) => false,
            (Input::Write(v), Output::Unknown) | (Input::Cas { new: v, .. }, Output::Unknown) => {
                seen.contains(v.as_str())
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// WGL search over one key's (pruned) history, starting from "absent".
pub fn check_register(ops: &[Op], budget: u64) -> Verdict {
    let n = ops.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    // Entries: (time, is_return, op). Calls sort before returns at equal times.
    let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        entries.push((o.call_ns, false, i));
        entries.push((o.ret_ns, true, i));
    }
    entries.sort_by_key(|e| (e.0, e.1, e.2));
    // Doubly linked list over entry positions; `head` is a sentinel, `NIL` ends the list.
    const NIL: usize = usize::MAX;
    let len = entries.len();
    let head = len;
    let mut next: Vec<usize> = (0..=len).map(|i| if i + 1 < len { i + 1 } else { NIL }).collect();
    let mut prev: Vec<usize> = (0..=len).map(|i| if i == 0 { head } else { i - 1 }).collect();
    next[head] = 0;
    prev[head] = NIL;
    let mut ret_pos = vec![0usize; n];
    for (pos, e) in entries.iter().enumerate() {
        if e.1 {
            ret_pos[e.2] = pos;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        let (a, b) = (prev[p], next[p]);
        next[a] = b;
        if b != NIL {
            prev[b] = a;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        let (a, b) = (prev[p], next[p]);
        next[a] = p;
        if b != NIL {
            prev[b] = p;
        }
    };
    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut cur = next[head];
    let mut steps = 0u64;
    while next[head] != NIL {
        steps += 1;
        if steps > budget {
            return Verdict::Unknown;
        }
        if cur == NIL {
            // Only returns remain reachable: should not happen (every call precedes its return).
            return Verdict::Unknown;
        }
        let (_, is_ret, op) = entries[cur];
        if !is_ret {
            if let Some(s2) = step(&state, &ops[op].input, &ops[op].output) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), s2.clone())) {
                    stack.push((cur, state.clone()));
                    state = s2;
                    unlink(&mut next, &mut prev, ret_pos[op]);
                    unlink(&mut next, &mut prev, cur);
                    cur = next[head];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            cur = next[cur];
        } else {
            let Some((e, s)) = stack.pop() else {
                let window: Vec<usize> = window_around(ops, op);
                return Verdict::NotLinearizable { op: ops[op].id, window };
            };
            let eop = entries[e].2;
            state = s;
            linearized[eop / 64] &= !(1 << (eop % 64));
            relink(&mut next, &mut prev, e);
            relink(&mut next, &mut prev, ret_pos[eop]);
            cur = next[e];
        }
    }
    Verdict::Linearizable
}

/// Ids of up to 20 ops on each side of `op` in call order.
fn window_around(ops: &[Op], op: usize) -> Vec<usize> {
    let mut by_call: Vec<&Op> = ops.iter().collect();
    by_call.sort_by_key(|o| o.call_ns);
    let at = by_call.iter().position(|o| o.id == ops[op].id).unwrap_or(0);
    by_call[at.saturating_sub(20)..(at + 21).min(by_call.len())].iter().map(|o| o.id).collect()
}

/// Set workload result: acknowledged adds must all be present, nothing unattempted may appear.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SetReport {
    pub lost: BTreeSet<String>,
    pub unexpected: BTreeSet<String>,
    /// Indeterminate adds that did take effect.
    pub recovered: usize,
}

pub fn check_set(acked: &HashSet<String>, attempted: &HashSet<String>, present: &HashSet<String>) -> SetReport {
    SetReport {
        lost: acked.difference(present).cloned().collect(),
        unexpected: present.difference(attempted).cloned().collect(),
        recovered: present.iter().filter(|e| !acked.contains(*e)).count(),
    }
}

/// Groups ops by key.
pub fn by_key(ops: Vec<(String, Op)>) -> HashMap<String, Vec<Op>> {
    let mut out: HashMap<String, Vec<Op>> = HashMap::new();
    for (k, o) in ops {
        out.entry(k).or_default().push(o);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: usize, call: u64, ret: u64, input: Input, output: Output) -> Op {
        Op { id, proc: id as u64, call_ns: call, ret_ns: ret, input, output }
    }
    fn w(v: &str) -> Input {
        Input::Write(v.into())
    }
    fn r(v: Option<&str>) -> Output {
        Output::Read(v.map(str::to_string))
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            op(0, 0, 10, w("a"), Output::Done),
            op(1, 11, 20, Input::Read, r(Some("a"))),
            op(2, 21, 30, Input::Cas { expect: "a".into(), new: "b".into() }, Output::Done),
            op(3, 31, 40, Input::Read, r(Some("b"))),
        ];
        assert_eq!(check_register(&prune(&h), 1_000_000), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_after_acknowledged_write_is_caught() {
        let h = vec![
            op(0, 0, 10, w("a"), Output::Done),
            op(1, 11, 20, w("b"), Output::Done),
            op(2, 21, 30, Input::Read, r(Some("a"))),
        ];
        assert!(matches!(check_register(&prune(&h), 1_000_000), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn concurrent_ops_may_take_either_order() {
        let h = vec![
            op(0, 0, 50, w("a"), Output::Done),
            op(1, 10, 40, Input::Read, r(None)),
            op(2, 20, 60, Input::Read, r(Some("a"))),
        ];
        assert_eq!(check_register(&prune(&h), 1_000_000), Verdict::Linearizable);
    }

    #[test]
    fn unknown_writes_may_or_may_not_happen_and_the_fixpoint_keeps_chains() {
        let h = vec![
            op(0, 0, u64::MAX, w("a"), Output::Unknown),
            op(1, 5, u64::MAX, Input::Cas { expect: "a".into(), new: "b".into() }, Output::Unknown),
            op(2, 10, 20, Input::Cas { expect: "b".into(), new: "c".into() }, Output::Done),
            op(3, 30, 40, Input::Read, r(Some("c"))),
            op(4, 50, u64::MAX, w("never-seen"), Output::Unknown),
        ];
        let pruned = prune(&h);
        assert_eq!(pruned.len(), 4, "the unobserved unknown write is dropped, the chain kept");
        assert_eq!(check_register(&pruned, 1_000_000), Verdict::Linearizable);
        // A read of a value nobody wrote is never linearizable.
        let bad = vec![op(0, 0, 10, Input::Read, r(Some("ghost")))];
        assert!(matches!(check_register(&bad, 1_000), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn set_checker_reports_lost_and_unexpected() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<HashSet<_>>();
        let rep = check_set(&s(&["a", "b"]), &s(&["a", "b", "c"]), &s(&["a", "c", "z"]));
        assert_eq!(rep.lost, ["b".to_string()].into_iter().collect());
        assert_eq!(rep.unexpected, ["z".to_string()].into_iter().collect());
        assert_eq!(rep.recovered, 2);
    }
}
