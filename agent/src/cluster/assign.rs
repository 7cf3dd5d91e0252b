//! Assignments as a difference (Kafka Connect's incremental cooperative rebalancing, KIP-415):
//! keep every assignment that is still valid, place new and orphaned syncs on the least
//! loaded agents, and move syncs only as far as needed for every agent to hold the floor or
//! the ceiling of the average. Never "revoke all".

use std::collections::{BTreeMap, BTreeSet};

/// sync id → agent id.
pub type Plan = BTreeMap<String, String>;

pub fn rebalance(current: &Plan, syncs: &BTreeSet<String>, agents: &BTreeSet<String>) -> Plan {
    let mut plan: Plan = current
        .iter()
        .filter(|(sync, agent)| syncs.contains(*sync) && agents.contains(*agent))
        .map(|(s, a)| (s.clone(), a.clone()))
        .collect();
    if agents.is_empty() {
        return Plan::new();
    }
    let mut load: BTreeMap<&String, Vec<String>> = agents.iter().map(|a| (a, Vec::new())).collect();
    for (sync, agent) in &plan {
        load.get_mut(agent)
            .expect("only live agents kept")
            .push(sync.clone());
    }
    let least_loaded = |load: &BTreeMap<&String, Vec<String>>| -> String {
        load.iter()
            .min_by_key(|(a, s)| (s.len(), **a))
            .map(|(a, _)| a.to_string())
            .expect("agents")
    };
    // New and orphaned syncs go to whoever has least.
    let orphans: Vec<&String> = syncs.iter().filter(|s| !plan.contains_key(*s)).collect();
    for sync in orphans {
        let agent = least_loaded(&load);
        load.get_mut(&agent).expect("agent").push(sync.clone());
        plan.insert(sync.clone(), agent);
    }
    // Then move from agents above the ceiling, or above the floor while someone is below it.
    let n = agents.len();
    let floor = syncs.len() / n;
    let ceil = floor + usize::from(!syncs.len().is_multiple_of(n));
    loop {
        // Ties break by agent id, so every leader computes the same plan.
        let (most, most_n) = load
            .iter()
            .max_by_key(|(a, s)| (s.len(), std::cmp::Reverse(**a)))
            .map(|(a, s)| (a.to_string(), s.len()))
            .expect("agents");
        let (least, least_n) = load
            .iter()
            .min_by_key(|(a, s)| (s.len(), **a))
            .map(|(a, s)| (a.to_string(), s.len()))
            .expect("agents");
        let needed = most_n > ceil || (least_n < floor && most_n > floor);
        if !needed || most_n <= least_n + 1 {
            break;
        }
        let moved = {
            let list = load.get_mut(&most).expect("agent");
            list.sort();
            list.pop().expect("non-empty")
        };
        load.get_mut(&least).expect("agent").push(moved.clone());
        plan.insert(moved, least);
    }
    plan
}

/// How many syncs changed agent between two plans (ignoring syncs only one of them has).
pub fn moves(before: &Plan, after: &Plan) -> usize {
    before
        .iter()
        .filter(|(s, a)| after.get(*s).is_some_and(|b| b != *a))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> BTreeSet<String> {
        (0..n).map(|i| format!("{prefix}{i:02}")).collect()
    }

    fn counts(plan: &Plan) -> Vec<usize> {
        let mut per: BTreeMap<&String, usize> = BTreeMap::new();
        for a in plan.values() {
            *per.entry(a).or_default() += 1;
        }
        let mut v: Vec<usize> = per.into_values().collect();
        v.sort();
        v
    }

    #[test]
    fn thirty_syncs_on_three_agents_are_ten_each() {
        let plan = rebalance(&Plan::new(), &ids("s", 30), &ids("a", 3));
        assert_eq!(plan.len(), 30);
        assert_eq!(counts(&plan), vec![10, 10, 10]);
    }

    #[test]
    fn a_fourth_agent_takes_at_most_eight_and_nothing_else_moves() {
        let syncs = ids("s", 30);
        let three = rebalance(&Plan::new(), &syncs, &ids("a", 3));
        let four = rebalance(&three, &syncs, &ids("a", 4));
        assert_eq!(counts(&four), vec![7, 7, 8, 8]);
        let moved = moves(&three, &four);
        assert!(moved <= 8, "{moved} moved");
        assert!(
            four.iter()
                .filter(|(s, a)| three[*s] != **a)
                .all(|(_, a)| a == "a03"),
            "only moves to the new agent"
        );
    }

    #[test]
    fn a_dead_agents_syncs_are_spread_and_others_stay() {
        let syncs = ids("s", 30);
        let four = rebalance(&Plan::new(), &syncs, &ids("a", 4));
        let mut three_agents = ids("a", 4);
        three_agents.remove("a01");
        let after = rebalance(&four, &syncs, &three_agents);
        assert_eq!(counts(&after), vec![10, 10, 10]);
        for (s, a) in &four {
            if a != "a01" {
                assert_eq!(&after[s], a, "{s} kept its live agent");
            }
        }
    }

    #[test]
    fn disabled_syncs_are_revoked_and_stable_plans_stay_put() {
        let mut syncs = ids("s", 10);
        let agents = ids("a", 2);
        let plan = rebalance(&Plan::new(), &syncs, &agents);
        assert_eq!(
            rebalance(&plan, &syncs, &agents),
            plan,
            "no change, no moves"
        );
        syncs.remove("s03");
        let after = rebalance(&plan, &syncs, &agents);
        assert!(!after.contains_key("s03"));
        assert!(moves(&plan, &after) <= 1);
        assert!(rebalance(&plan, &syncs, &BTreeSet::new()).is_empty());
    }
}
