//! The group state machine, without sockets or clocks: `now` is a number.

use bytes::Bytes;

use super::group::{
    code, Group, GroupConfig, JoinRequest, JoinResult, Outbound, Reply, State, SyncResult,
};

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn cfg(delay: u64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: delay,
        min_session_timeout_ms: 6_000,
        max_session_timeout_ms: 300_000,
    }
}

fn req(member: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member.to_string(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

/// Joins a new member the v4+ way: MEMBER_ID_REQUIRED, then join with it.
fn join_new(g: &mut Group, now: u64) -> String {
    let id = match g.join(now, req("", &["range"])) {
        Reply::Now(r) => {
            assert_eq!(r.error, code::MEMBER_ID_REQUIRED);
            r.member_id
        }
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    assert_eq!(g.join(now, req(&id, &["range"])), Reply::Later(id.clone()));
    id
}

fn joins(out: &[Outbound]) -> Vec<(String, JoinResult)> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Join(id, r) => Some((id.clone(), r.clone())),
            _ => None,
        })
        .collect()
}

fn syncs(out: &[Outbound]) -> Vec<(String, SyncResult)> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Sync(id, r) => Some((id.clone(), r.clone())),
            _ => None,
        })
        .collect()
}

/// Brings a group of `n` members to Stable; returns ids, leader first.
fn stable_group(g: &mut Group, n: usize, now: u64) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| join_new(g, now)).collect();
    // The initial delay (3 s) is extended once because members joined
    // during it; the join completes at the second deadline.
    g.tick(now + 3_000);
    g.tick(now + 6_000);
    let done = joins(&g.take_outbox());
    assert_eq!(done.len(), n);
    let leader = done[0].1.leader.clone();
    let gen = g.generation();
    let assignments = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(format!("a-{id}"))))
        .collect();
    for id in ids.iter().filter(|i| **i != leader) {
        assert_eq!(
            g.sync(now + 10_000, id, None, gen, None, None, vec![]),
            Reply::Later(id.clone())
        );
    }
    assert_eq!(
        g.sync(now + 10_000, &leader, None, gen, None, None, assignments),
        Reply::Later(leader.clone())
    );
    assert_eq!(syncs(&g.take_outbox()).len(), n);
    assert_eq!(g.state(), State::Stable);
    let mut out = vec![leader.clone()];
    out.extend(ids.into_iter().filter(|i| *i != leader));
    out
}

#[test]
fn single_member_joins_and_syncs() {
    let mut g = Group::new("g", cfg(0));
    let id = join_new(&mut g, 0);
    // Initial delay 0: the join completes at once.
    let done = joins(&g.take_outbox());
    assert_eq!(done.len(), 1);
    let r = &done[0].1;
    assert_eq!(
        (r.error, r.generation, r.leader.as_str()),
        (0, 1, id.as_str())
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1, "the leader gets the member list");
    assert_eq!(g.state(), State::CompletingRebalance);
    let sync = g.sync(
        1,
        &id,
        None,
        1,
        Some("consumer"),
        Some("range"),
        vec![(id.clone(), Bytes::from_static(b"A"))],
    );
    assert_eq!(sync, Reply::Later(id.clone()));
    let s = syncs(&g.take_outbox());
    assert_eq!(s[0].1.assignment, Bytes::from_static(b"A"));
    assert_eq!(g.state(), State::Stable);
    assert_eq!(g.heartbeat(2, &id, None, 1), code::NONE);
}

#[test]
fn initial_delay_waits_for_late_joiners_and_only_the_leader_gets_members() {
    let mut g = Group::new("g", cfg(3_000));
    let a = join_new(&mut g, 0);
    g.tick(2_000);
    assert!(g.take_outbox().is_empty());
    // A member joining during the delay extends it.
    let b = join_new(&mut g, 2_500);
    g.tick(3_000);
    assert!(
        joins(&g.take_outbox()).is_empty(),
        "delay extended by the new member"
    );
    g.tick(6_000);
    let done = joins(&g.take_outbox());
    assert_eq!(done.len(), 2);
    for (id, r) in &done {
        assert_eq!(r.generation, 1);
        assert_eq!(r.leader, a);
        assert_eq!(r.members.len(), if *id == a { 2 } else { 0 });
    }
    assert!(done.iter().any(|(id, _)| *id == b));
}

#[test]
fn followers_wait_for_the_leader_assignment() {
    let mut g = Group::new("g", cfg(3_000));
    let ids = stable_group(&mut g, 3, 0);
    // Each member got its own assignment.
    assert_eq!(
        g.members()
            .iter()
            .filter(|m| m.assignment.starts_with(b"a-"))
            .count(),
        3
    );
    // A sync in Stable answers at once with the member's assignment.
    match g.sync(20_000, &ids[1], None, g.generation(), None, None, vec![]) {
        Reply::Now(r) => assert_eq!(r.assignment, Bytes::from(format!("a-{}", ids[1]))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_member_triggers_a_rebalance_that_others_learn_by_heartbeat() {
    let mut g = Group::new("g", cfg(3_000));
    let ids = stable_group(&mut g, 2, 0);
    let gen = g.generation();
    let c = join_new(&mut g, 11_000);
    assert_eq!(g.state(), State::PreparingRebalance);
    assert_eq!(
        g.heartbeat(11_001, &ids[0], None, gen),
        code::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        g.heartbeat(11_001, "nobody", None, gen),
        code::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        g.heartbeat(11_001, &ids[1], None, gen - 1),
        code::ILLEGAL_GENERATION
    );
    // Everyone rejoins: the join completes without waiting for the timeout.
    for id in &ids {
        assert_eq!(
            g.join(11_002, req(id, &["range"])),
            Reply::Later(id.clone())
        );
    }
    let done = joins(&g.take_outbox());
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|(_, r)| r.generation == gen + 1));
    assert!(done.iter().any(|(id, _)| *id == c));
    // A sync from the old generation is refused.
    assert_eq!(
        g.sync(11_003, &ids[1], None, gen, None, None, vec![]),
        Reply::Now(SyncResult {
            error: code::ILLEGAL_GENERATION,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new()
        })
    );
}

#[test]
fn a_silent_member_is_removed_after_the_session_timeout() {
    let mut g = Group::new("g", cfg(3_000));
    let ids = stable_group(&mut g, 2, 0);
    // Only ids[0] keeps heartbeating.
    assert_eq!(g.heartbeat(15_000, &ids[0], None, 1), code::NONE);
    g.tick(19_999);
    assert_eq!(g.state(), State::Stable);
    g.tick(20_000 + 1);
    assert_eq!(g.state(), State::PreparingRebalance);
    assert!(!g.has_member(&ids[1]));
    assert_eq!(
        g.heartbeat(20_002, &ids[0], None, 1),
        code::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        g.join(20_003, req(&ids[0], &["range"])),
        Reply::Later(ids[0].clone())
    );
    let done = joins(&g.take_outbox());
    assert_eq!((done.len(), done[0].1.generation), (1, 2));
}

#[test]
fn leaving_is_an_immediate_rebalance_and_the_last_leaving_empties_the_group() {
    let mut g = Group::new("g", cfg(3_000));
    let ids = stable_group(&mut g, 2, 0);
    assert_eq!(g.leave(12_000, &ids[1], None), code::NONE);
    assert_eq!(g.state(), State::PreparingRebalance);
    assert_eq!(g.leave(12_000, &ids[1], None), code::UNKNOWN_MEMBER_ID);
    assert_eq!(
        g.join(12_001, req(&ids[0], &["range"])),
        Reply::Later(ids[0].clone())
    );
    assert_eq!(joins(&g.take_outbox()).len(), 1);
    assert_eq!(g.leave(12_002, &ids[0], None), code::NONE);
    assert_eq!(g.state(), State::Empty);
}

#[test]
fn the_leader_leaving_mid_rebalance_hands_leadership_on() {
    let mut g = Group::new("g", cfg(3_000));
    let ids = stable_group(&mut g, 3, 0);
    let leader = ids[0].clone();
    // A follower rejoins with new metadata, which starts a rebalance (a
    // rejoin with unchanged metadata would just get the current state);
    // then the leader leaves.
    assert_eq!(
        g.join(11_000, req(&ids[1], &["range", "roundrobin"])),
        Reply::Later(ids[1].clone())
    );
    assert_eq!(g.leave(11_001, &leader, None), code::NONE);
    assert_eq!(
        g.join(11_002, req(&ids[2], &["range"])),
        Reply::Later(ids[2].clone())
    );
    let done = joins(&g.take_outbox());
    assert_eq!(done.len(), 2);
    let new_leader = &done[0].1.leader;
    assert_ne!(*new_leader, leader);
    assert!(ids[1..].contains(new_leader));
    for (id, r) in &done {
        assert_eq!(r.members.len(), if id == new_leader { 2 } else { 0 });
    }
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let mut g = Group::new("g", cfg(3_000));
    let ids = stable_group(&mut g, 2, 0);
    assert_eq!(
        g.join(11_000, req(&ids[0], &["range"])),
        Reply::Later(ids[0].clone())
    );
    // ids[1] keeps heartbeating (told REBALANCE_IN_PROGRESS) but never rejoins.
    for t in [12_000, 20_000, 28_000, 36_000] {
        assert_eq!(
            g.heartbeat(t, &ids[1], None, 1),
            code::REBALANCE_IN_PROGRESS
        );
        g.tick(t);
    }
    g.tick(11_000 + REBALANCE as u64 - 1);
    assert!(g.take_outbox().is_empty());
    g.tick(11_000 + REBALANCE as u64);
    let done = joins(&g.take_outbox());
    assert_eq!(done.len(), 1);
    assert!(!g.has_member(&ids[1]));
    assert_eq!(
        g.heartbeat(41_001, &ids[1], None, 2),
        code::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_member_that_never_syncs_is_removed() {
    let mut g = Group::new("g", cfg(3_000));
    let short = |id: &str| {
        let mut r = req(id, &["range"]);
        r.rebalance_timeout_ms = 5_000;
        r.require_known_member_id = false;
        r
    };
    assert!(matches!(g.join(0, short("")), Reply::Later(_)));
    assert!(matches!(g.join(0, short("")), Reply::Later(_)));
    g.tick(3_000);
    assert_eq!(
        g.state(),
        State::PreparingRebalance,
        "extended: b joined during the delay"
    );
    g.tick(5_000);
    let done = joins(&g.take_outbox());
    assert_eq!(g.state(), State::CompletingRebalance);
    let a = done[0].1.leader.clone();
    let b = done
        .iter()
        .map(|(id, _)| id.clone())
        .find(|id| *id != a)
        .unwrap_or_default();
    let gen = g.generation();
    assert_eq!(
        g.sync(
            5_001,
            &a,
            None,
            gen,
            None,
            None,
            vec![(a.clone(), Bytes::from_static(b"x"))]
        ),
        Reply::Later(a.clone())
    );
    let _ = g.take_outbox();
    // b got its JoinGroup reply but never sends SyncGroup: out after the
    // rebalance timeout, before any session could expire.
    g.tick(9_999);
    assert!(g.has_member(&b));
    g.tick(10_000);
    assert!(!g.has_member(&b));
    assert!(g.has_member(&a));
    assert_eq!(g.state(), State::PreparingRebalance);
}

#[test]
fn static_member_restart_keeps_its_assignment_without_a_rebalance() {
    let mut g = Group::new("g", cfg(0));
    let mut first = req("", &["range"]);
    first.instance_id = Some("instance-1".into());
    let old = match g.join(0, first.clone()) {
        Reply::Later(id) => id,
        other => panic!("{other:?}"),
    };
    let _ = g.take_outbox();
    assert_eq!(
        g.sync(
            1,
            &old,
            Some("instance-1"),
            1,
            None,
            None,
            vec![(old.clone(), Bytes::from_static(b"P0"))]
        ),
        Reply::Later(old.clone())
    );
    let _ = g.take_outbox();
    assert_eq!(g.state(), State::Stable);
    // The process restarts: same instance id, no member id.
    let new = match g.join(5_000, first) {
        Reply::Now(r) => {
            assert_eq!(
                (r.error, r.generation),
                (0, 1),
                "same generation: no rebalance"
            );
            assert!(r.skip_assignment, "the static leader must not assign again");
            r.member_id
        }
        other => panic!("expected an immediate reply, got {other:?}"),
    };
    assert_ne!(new, old);
    assert_eq!(g.state(), State::Stable);
    match g.sync(5_001, &new, Some("instance-1"), 1, None, None, vec![]) {
        Reply::Now(r) => assert_eq!(r.assignment, Bytes::from_static(b"P0")),
        other => panic!("{other:?}"),
    }
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(5_002, &old, Some("instance-1"), 1),
        code::FENCED_INSTANCE_ID
    );
    // A pre-KIP-814 client restarting again is shown the previous leader id
    // and no members, so that it does not run the assignment.
    let mut old_client = req("", &["range"]);
    old_client.instance_id = Some("instance-1".into());
    old_client.supports_skip_assignment = false;
    match g.join(6_000, old_client) {
        Reply::Now(r) => {
            assert_eq!(
                (r.error, r.generation, r.leader.as_str()),
                (0, 1, new.as_str())
            );
            assert!(r.members.is_empty() && !r.skip_assignment);
            assert_ne!(r.member_id, new);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        g.validate_commit(&old, Some("instance-1"), 1),
        Err(code::FENCED_INSTANCE_ID)
    );
}

#[test]
fn bad_joins_are_refused() {
    let mut g = Group::new("g", cfg(0));
    let mut r = req("", &["range"]);
    r.session_timeout_ms = 10;
    assert!(matches!(
        g.join(0, r),
        Reply::Now(JoinResult {
            error: code::INVALID_SESSION_TIMEOUT,
            ..
        })
    ));
    let _ = join_new(&mut g, 0);
    let mut other = req("", &["roundrobin"]);
    other.require_known_member_id = false;
    assert!(matches!(
        g.join(1, other),
        Reply::Now(JoinResult {
            error: code::INCONSISTENT_GROUP_PROTOCOL,
            ..
        })
    ));
    assert!(matches!(
        g.join(1, req("ghost", &["range"])),
        Reply::Now(JoinResult {
            error: code::UNKNOWN_MEMBER_ID,
            ..
        })
    ));
}

#[test]
fn the_protocol_all_members_support_wins() {
    let mut g = Group::new("g", cfg(0));
    let mut a = req("", &["cooperative-sticky", "range"]);
    a.require_known_member_id = false;
    let mut b = req("", &["range", "cooperative-sticky"]);
    b.require_known_member_id = false;
    let mut c = req("", &["roundrobin", "range"]);
    c.require_known_member_id = false;
    assert!(matches!(g.join(0, a), Reply::Later(_)));
    let _ = g.take_outbox();
    // Group is CompletingRebalance with one member; two more join.
    assert!(matches!(g.join(1, b), Reply::Later(_)));
    assert!(matches!(g.join(1, c), Reply::Later(_)));
    // The first member must rejoin for the phase to complete.
    let first = g.members()[0].id.clone();
    assert!(matches!(
        g.join(2, req(&first, &["cooperative-sticky", "range"])),
        Reply::Later(_)
    ));
    let done = joins(&g.take_outbox());
    assert_eq!(done.len(), 3);
    assert!(done
        .iter()
        .all(|(_, r)| r.protocol_name.as_deref() == Some("range")));
}

#[test]
fn commits_from_assign_users_and_from_members() {
    let mut g = Group::new("g", cfg(3_000));
    assert_eq!(g.validate_commit("", None, -1), Ok(()));
    let ids = stable_group(&mut g, 1, 0);
    assert_eq!(
        g.validate_commit("", None, -1),
        Err(code::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(g.validate_commit(&ids[0], None, 1), Ok(()));
    assert_eq!(
        g.validate_commit(&ids[0], None, 0),
        Err(code::ILLEGAL_GENERATION)
    );
}

#[test]
fn static_rejoin_with_new_metadata_but_same_protocol_does_not_rebalance() {
    let mut g = Group::new("g", cfg(0));
    let mut first = req("", &["cooperative-sticky"]);
    first.instance_id = Some("i".into());
    let old = match g.join(0, first.clone()) {
        Reply::Later(id) => id,
        other => panic!("{other:?}"),
    };
    let _ = g.take_outbox();
    let _ = g.sync(
        1,
        &old,
        Some("i"),
        1,
        None,
        None,
        vec![(old.clone(), Bytes::from_static(b"P"))],
    );
    let _ = g.take_outbox();
    // A cooperative member's subscription lists what it owns: the bytes
    // change between incarnations, the protocol does not.
    let mut again = first.clone();
    again.protocols = vec![("cooperative-sticky".into(), Bytes::from_static(b"owned: P"))];
    match g.join(2, again) {
        Reply::Now(r) => assert_eq!((r.error, r.generation), (0, 1)),
        other => panic!("expected no rebalance, got {other:?}"),
    }
    assert_eq!(g.state(), State::Stable);
    assert_eq!(
        g.members()[0].protocols[0].1,
        Bytes::from_static(b"owned: P")
    );
    // A protocol the group cannot keep selecting does rebalance.
    let mut other = first;
    other.protocols = vec![
        ("range".into(), Bytes::new()),
        ("cooperative-sticky".into(), Bytes::new()),
    ];
    assert!(matches!(g.join(3, other), Reply::Later(_)));
    assert_ne!(g.state(), State::Stable);
}
