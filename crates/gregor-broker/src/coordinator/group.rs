//! One consumer group under the classic protocol, as a state machine.
//!
//! No I/O and no clock: every call takes `now` (milliseconds on any
//! monotonic scale), so the whole protocol is tested without sockets or
//! sleeps. Replies that complete later (JoinGroup when the join phase ends,
//! SyncGroup when the leader's assignment arrives) are left in an outbox
//! that the caller drains after every call.
//!
//! The rules follow Kafka's classic group coordinator (`GroupMetadata`,
//! `GroupCoordinator`, and `GroupMetadataManager` in Kafka 4).

/// A timeout from the wire in ms; a negative one counts as 0 (it must
/// never turn into an endless wait).
fn ms(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
use bytes::Bytes;

/// Error codes the coordinator answers with (Kafka's `Errors`).
pub mod code {
    #![allow(missing_docs)]
    use kafka_protocol::ResponseError;
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = ResponseError::UnknownServerError.code();
    pub const COORDINATOR_NOT_AVAILABLE: i16 = ResponseError::CoordinatorNotAvailable.code();
    pub const NOT_COORDINATOR: i16 = ResponseError::NotCoordinator.code();
    pub const ILLEGAL_GENERATION: i16 = ResponseError::IllegalGeneration.code();
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = ResponseError::InconsistentGroupProtocol.code();
    pub const INVALID_GROUP_ID: i16 = ResponseError::InvalidGroupId.code();
    pub const UNKNOWN_MEMBER_ID: i16 = ResponseError::UnknownMemberId.code();
    pub const INVALID_SESSION_TIMEOUT: i16 = ResponseError::InvalidSessionTimeout.code();
    pub const REBALANCE_IN_PROGRESS: i16 = ResponseError::RebalanceInProgress.code();
    pub const GROUP_ID_NOT_FOUND: i16 = ResponseError::GroupIdNotFound.code();
    pub const NON_EMPTY_GROUP: i16 = ResponseError::NonEmptyGroup.code();
    pub const MEMBER_ID_REQUIRED: i16 = ResponseError::MemberIdRequired.code();
    pub const FENCED_INSTANCE_ID: i16 = ResponseError::FencedInstanceId.code();
}

/// Classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No members (maybe committed offsets).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment distributed.
    Stable,
    /// Deleted.
    Dead,
}

impl State {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// Broker settings the group needs.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
}

/// A JoinGroup request, decoded.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// Member id; empty for a new member.
    pub member_id: String,
    /// Static membership id (KIP-345).
    pub instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v1+; session timeout before).
    pub rebalance_timeout_ms: i32,
    /// Usually "consumer".
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member must first obtain a member id (KIP-394).
    pub require_known_member_id: bool,
    /// v9+: the client understands `skip_assignment` (KIP-814).
    pub supports_skip_assignment: bool,
}

/// One member as the leader sees it in a JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Metadata for the selected protocol.
    pub metadata: Bytes,
}

/// A JoinGroup reply.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    /// Error code.
    pub error: i16,
    /// Generation, -1 on error.
    pub generation: i32,
    /// Group protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader: String,
    /// The member's own id.
    pub member_id: String,
    /// KIP-814: a static leader that rejoined without a rebalance must not
    /// run the assignment again.
    pub skip_assignment: bool,
    /// Members with metadata: only for the leader.
    pub members: Vec<JoinMember>,
}

impl JoinResult {
    /// The reply of a failed join.
    pub(crate) fn error(member_id: &str, error: i16) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }
}

/// A SyncGroup reply.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    /// Error code.
    pub error: i16,
    /// Group protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: i16) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Answer now, or later through the outbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T> {
    /// The reply.
    Now(T),
    /// Comes out of [`Group::take_outbox`] for this member id (for a new
    /// member, the id just assigned).
    Later(String),
}

/// A reply completed by some later event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A waiting JoinGroup completes.
    Join(String, JoinResult),
    /// A waiting SyncGroup completes.
    Sync(String, SyncResult),
}

/// A member of the group.
#[derive(Debug, Clone)]
pub struct Member {
    /// Member id.
    pub id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    /// Protocol type.
    pub protocol_type: String,
    /// (name, metadata) by preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Current assignment.
    pub assignment: Bytes,
    awaiting_join: bool,
    awaiting_sync: bool,
    /// Got its JoinGroup reply but has not sent SyncGroup yet.
    pending_sync: bool,
    session_deadline: u64,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A classic consumer group.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    cfg: GroupConfig,
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order: the first becomes leader.
    members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their deadline.
    pending_members: Vec<(String, u64)>,
    join_deadline: Option<u64>,
    /// Initial delayed join (group was Empty): time left to extend into.
    initial_remaining_ms: Option<u64>,
    new_member_during_delay: bool,
    sync_deadline: Option<u64>,
    outbox: Vec<Outbound>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, cfg: GroupConfig) -> Group {
        Group {
            id: id.to_string(),
            cfg,
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending_members: Vec::new(),
            join_deadline: None,
            initial_remaining_ms: None,
            new_member_during_delay: false,
            sync_deadline: None,
            outbox: Vec::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }
    /// Current generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }
    /// Protocol type ("consumer"), once a member joined.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    /// Selected protocol (assignor).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
    /// Leader member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    /// Members in join order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }
    /// True when a member with this id is in the group.
    pub fn has_member(&self, id: &str) -> bool {
        self.member(id).is_some()
    }

    /// Replies completed since the last call.
    pub fn take_outbox(&mut self) -> Vec<Outbound> {
        std::mem::take(&mut self.outbox)
    }

    /// The earliest moment [`Group::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let sessions = self
            .members
            .iter()
            .filter(|m| !m.awaiting_join && !m.awaiting_sync)
            .map(|m| m.session_deadline);
        let pending = self.pending_members.iter().map(|(_, d)| *d);
        sessions
            .chain(pending)
            .chain(self.join_deadline)
            .chain(self.sync_deadline)
            .min()
    }

    /// True for a group that never had a member nor handed out a member id:
    /// a JoinGroup that failed validation leaves nothing behind.
    pub fn is_pristine(&self) -> bool {
        self.state == State::Empty
            && self.generation == 0
            && self.members.is_empty()
            && self.pending_members.is_empty()
    }

    /// Marks the group deleted (DeleteGroups).
    pub fn mark_dead(&mut self) {
        self.state = State::Dead;
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }
    fn static_member(&self, instance: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// KIP-345 fencing: a request naming an instance id must come from the
    /// member currently holding it.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        match instance_id.and_then(|i| self.static_member(i)) {
            Some(m) => m.id != member_id,
            None => false,
        }
    }

    /// The protocols every member supports (and the new ones would too).
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn new_member_id(&mut self, client_id: &str, instance_id: Option<&str>) -> String {
        let uuid = uuid::Uuid::new_v4();
        format!("{}-{}", instance_id.unwrap_or(client_id), uuid)
    }

    /// JoinGroup.
    pub fn join(&mut self, now: u64, req: JoinRequest) -> Reply<JoinResult> {
        if self.state == State::Dead {
            return Reply::Now(JoinResult::error(
                &req.member_id,
                code::COORDINATOR_NOT_AVAILABLE,
            ));
        }
        if req.session_timeout_ms < self.cfg.min_session_timeout_ms
            || req.session_timeout_ms > self.cfg.max_session_timeout_ms
        {
            return Reply::Now(JoinResult::error(
                &req.member_id,
                code::INVALID_SESSION_TIMEOUT,
            ));
        }
        if req.member_id.is_empty() {
            self.join_unknown(now, req)
        } else {
            self.join_known(now, req)
        }
    }

    fn join_unknown(&mut self, now: u64, req: JoinRequest) -> Reply<JoinResult> {
        if !self.supports(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error("", code::INCONSISTENT_GROUP_PROTOCOL));
        }
        let id = self.new_member_id(&req.client_id, req.instance_id.as_deref());
        if let Some(instance) = req.instance_id.clone() {
            if let Some(old) = self.static_member(&instance).map(|m| m.id.clone()) {
                return self.replace_static_member(now, &old, id, req);
            }
            return self.add_member_and_rebalance(now, id, req);
        }
        if req.require_known_member_id {
            // KIP-394: hand out the id; the member joins again with it.
            let deadline = now + ms(req.session_timeout_ms);
            self.pending_members.push((id.clone(), deadline));
            return Reply::Now(JoinResult::error(&id, code::MEMBER_ID_REQUIRED));
        }
        self.add_member_and_rebalance(now, id, req)
    }

    fn join_known(&mut self, now: u64, req: JoinRequest) -> Reply<JoinResult> {
        let id = req.member_id.clone();
        if let Some(pos) = self.pending_members.iter().position(|(p, _)| *p == id) {
            if !self.supports(&req.protocol_type, &req.protocols) {
                return Reply::Now(JoinResult::error(&id, code::INCONSISTENT_GROUP_PROTOCOL));
            }
            self.pending_members.remove(pos);
            return self.add_member_and_rebalance(now, id, req);
        }
        if self.fenced(&id, req.instance_id.as_deref()) {
            return Reply::Now(JoinResult::error(&id, code::FENCED_INSTANCE_ID));
        }
        let Some(member) = self.member(&id) else {
            return Reply::Now(JoinResult::error(&id, code::UNKNOWN_MEMBER_ID));
        };
        if !self.supports(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error(&id, code::INCONSISTENT_GROUP_PROTOCOL));
        }
        let same_protocols = member.protocols == req.protocols;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            State::PreparingRebalance => self.update_member_and_rebalance(now, req),
            State::CompletingRebalance if same_protocols => {
                // A retry of a join that already completed: same answer.
                Reply::Now(self.join_result_for(&id, false))
            }
            State::Stable if same_protocols && !is_leader => {
                Reply::Now(self.join_result_for(&id, false))
            }
            State::CompletingRebalance | State::Stable => {
                self.update_member_and_rebalance(now, req)
            }
            State::Empty | State::Dead => {
                Reply::Now(JoinResult::error(&id, code::UNKNOWN_MEMBER_ID))
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        now: u64,
        id: String,
        req: JoinRequest,
    ) -> Reply<JoinResult> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        let rebalance = if req.rebalance_timeout_ms > 0 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        };
        self.members.push(Member {
            id: id.clone(),
            instance_id: req.instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: ms(req.session_timeout_ms),
            rebalance_timeout_ms: ms(rebalance),
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            awaiting_join: true,
            awaiting_sync: false,
            pending_sync: false,
            session_deadline: now + ms(req.session_timeout_ms),
        });
        if self.leader.is_none() {
            self.leader = Some(id);
        }
        if self.initial_remaining_ms.is_some() {
            self.new_member_during_delay = true;
        }
        let id = self
            .members
            .last()
            .map(|m| m.id.clone())
            .unwrap_or_default();
        match self.state {
            State::Empty | State::Stable | State::CompletingRebalance => {
                self.prepare_rebalance(now)
            }
            _ => {}
        }
        self.maybe_complete_join(now);
        Reply::Later(id)
    }

    fn update_member_and_rebalance(&mut self, now: u64, req: JoinRequest) -> Reply<JoinResult> {
        // A second JoinGroup while one is pending replaces it; the caller
        // answers the first one.
        let id = req.member_id.clone();
        if let Some(m) = self.member_mut(&id) {
            m.protocols = req.protocols;
            m.client_id = req.client_id;
            m.client_host = req.client_host;
            m.session_timeout_ms = ms(req.session_timeout_ms);
            if req.rebalance_timeout_ms > 0 {
                m.rebalance_timeout_ms = ms(req.rebalance_timeout_ms);
            }
            m.awaiting_join = true;
        }
        if self.state != State::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.maybe_complete_join(now);
        Reply::Later(id)
    }

    /// A restarted static member takes over its old identity (KIP-345).
    fn replace_static_member(
        &mut self,
        now: u64,
        old: &str,
        new_id: String,
        req: JoinRequest,
    ) -> Reply<JoinResult> {
        let old = old.to_string();
        // The old incarnation's pending replies are fenced.
        let Some(pos) = self.members.iter().position(|m| m.id == old) else {
            return Reply::Now(JoinResult::error("", code::UNKNOWN_SERVER_ERROR));
        };
        if self.members[pos].awaiting_join {
            self.outbox.push(Outbound::Join(
                old.clone(),
                JoinResult::error(&old, code::FENCED_INSTANCE_ID),
            ));
        }
        if self.members[pos].awaiting_sync {
            self.outbox.push(Outbound::Sync(
                old.clone(),
                SyncResult::error(code::FENCED_INSTANCE_ID),
            ));
        }
        let skip_supported = req.supports_skip_assignment;
        {
            let m = &mut self.members[pos];
            // Kafka's replaceStaticMember swaps the id and keeps the rest
            // (client id and host included); timeouts and protocols follow
            // the new request.
            m.id = new_id.clone();
            m.session_timeout_ms = ms(req.session_timeout_ms);
            if req.rebalance_timeout_ms > 0 {
                m.rebalance_timeout_ms = ms(req.rebalance_timeout_ms);
            }
            m.awaiting_join = false;
            m.awaiting_sync = false;
            m.session_deadline = now + m.session_timeout_ms;
            // Like Kafka, take the new subscription metadata (a
            // cooperative member's changes on every join: it lists what it
            // owns); only a change of the selected protocol rebalances.
            m.protocols = req.protocols.clone();
        }
        let same_protocol = self.select_protocol() == self.protocol;
        let was_leader = self.leader.as_deref() == Some(old.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            State::Stable if same_protocol => {
                // Rejoin without a rebalance: current generation and
                // assignment. A leader is told not to assign again (v9+);
                // an older client is shown the old leader id and no
                // members, so that it does not think it leads (Kafka's
                // answer before KIP-814).
                let r = if was_leader && !skip_supported {
                    let mut r = self.join_result_for(&new_id, false);
                    r.leader = old;
                    r
                } else {
                    let mut r = self.join_result_for(&new_id, was_leader);
                    r.skip_assignment = was_leader;
                    r
                };
                Reply::Now(r)
            }
            _ => {
                let mut req = req;
                req.member_id = new_id;
                self.update_member_and_rebalance(now, req)
            }
        }
    }

    fn max_rebalance_timeout(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    fn prepare_rebalance(&mut self, now: u64) {
        if self.state == State::CompletingRebalance {
            self.reset_assignments_and_fail_syncs(code::REBALANCE_IN_PROGRESS);
        }
        self.sync_deadline = None;
        let timeout = self.max_rebalance_timeout();
        if self.state == State::Empty {
            // Kafka's InitialDelayedJoin: wait for more members to arrive,
            // extending while they do, bounded by the rebalance timeout.
            let delay = self.cfg.initial_rebalance_delay_ms.min(timeout);
            self.join_deadline = Some(now + delay);
            self.initial_remaining_ms = Some(timeout.saturating_sub(delay));
            self.new_member_during_delay = false;
        } else {
            self.join_deadline = Some(now + timeout);
            self.initial_remaining_ms = None;
        }
        self.state = State::PreparingRebalance;
    }

    fn reset_assignments_and_fail_syncs(&mut self, error: i16) {
        for m in &mut self.members {
            m.assignment = Bytes::new();
            if m.awaiting_sync {
                m.awaiting_sync = false;
                self.outbox
                    .push(Outbound::Sync(m.id.clone(), SyncResult::error(error)));
            }
        }
    }

    fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(|m| m.awaiting_join)
    }

    fn maybe_complete_join(&mut self, now: u64) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let due = self.join_deadline.is_some_and(|d| now >= d);
        if self.initial_remaining_ms.is_some() {
            if !due {
                return;
            }
            let remaining = self.initial_remaining_ms.unwrap_or(0);
            if self.new_member_during_delay && remaining > 0 {
                let delay = self.cfg.initial_rebalance_delay_ms.min(remaining);
                self.join_deadline = Some(now + delay);
                self.initial_remaining_ms = Some(remaining - delay);
                self.new_member_during_delay = false;
                return;
            }
        } else if !due && !self.all_joined() {
            return;
        }
        self.complete_join(now);
    }

    fn complete_join(&mut self, now: u64) {
        self.join_deadline = None;
        self.initial_remaining_ms = None;
        // Members that did not rejoin in time are out.
        let (stay, gone): (Vec<Member>, Vec<Member>) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(|m| m.awaiting_join);
        self.members = stay;
        for m in gone {
            if m.awaiting_sync {
                self.outbox.push(Outbound::Sync(
                    m.id.clone(),
                    SyncResult::error(code::UNKNOWN_MEMBER_ID),
                ));
            }
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        self.protocol = self.select_protocol();
        if !self.leader.as_deref().is_some_and(|l| self.has_member(l)) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.state = State::CompletingRebalance;
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
        let ids: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        for m in &mut self.members {
            m.awaiting_join = false;
            m.pending_sync = true;
            m.session_deadline = now + m.session_timeout_ms;
        }
        for id in ids {
            let r = self.join_result_for(&id, self.leader.as_deref() == Some(id.as_str()));
            self.outbox.push(Outbound::Join(id, r));
        }
    }

    /// The protocol every member supports that most members prefer.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let votes = |c: &String| {
            self.members
                .iter()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n)
                        .find(|n| candidates.contains(n))
                        == Some(c)
                })
                .count()
        };
        // Ties go to the earlier candidate in the first member's order.
        let mut best: Option<(&String, usize)> = None;
        for c in &candidates {
            let v = votes(c);
            if best.is_none_or(|(_, bv)| v > bv) {
                best = Some((c, v));
            }
        }
        best.map(|(c, _)| c.clone())
    }

    fn join_result_for(&self, id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: code::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.to_string(),
            skip_assignment: false,
            members: if with_members {
                self.members
                    .iter()
                    .map(|m| JoinMember {
                        member_id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        metadata: m.metadata(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// SyncGroup. `assignments` is only meaningful from the leader.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        now: u64,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncResult> {
        if self.state == State::Dead {
            return Reply::Now(SyncResult::error(code::COORDINATOR_NOT_AVAILABLE));
        }
        if self.fenced(member_id, instance_id) {
            return Reply::Now(SyncResult::error(code::FENCED_INSTANCE_ID));
        }
        if !self.has_member(member_id) {
            return Reply::Now(SyncResult::error(code::UNKNOWN_MEMBER_ID));
        }
        if generation != self.generation {
            return Reply::Now(SyncResult::error(code::ILLEGAL_GENERATION));
        }
        let type_mismatch = protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref());
        let name_mismatch = protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref());
        if type_mismatch || name_mismatch {
            return Reply::Now(SyncResult::error(code::INCONSISTENT_GROUP_PROTOCOL));
        }
        if let Some(m) = self.member_mut(member_id) {
            m.pending_sync = false;
            m.session_deadline = now + m.session_timeout_ms;
        }
        match self.state {
            State::Empty | State::Dead => Reply::Now(SyncResult::error(code::UNKNOWN_MEMBER_ID)),
            State::PreparingRebalance => Reply::Now(SyncResult::error(code::REBALANCE_IN_PROGRESS)),
            State::CompletingRebalance => {
                if let Some(m) = self.member_mut(member_id) {
                    m.awaiting_sync = true;
                }
                if self.leader.as_deref() == Some(member_id) {
                    for m in &mut self.members {
                        // Members the leader left out get an empty assignment.
                        m.assignment = assignments
                            .iter()
                            .find(|(id, _)| *id == m.id)
                            .map(|(_, a)| a.clone())
                            .unwrap_or_default();
                    }
                    self.state = State::Stable;
                    self.complete_syncs();
                }
                Reply::Later(member_id.to_string())
            }
            State::Stable => Reply::Now(self.sync_result_for(member_id)),
        }
    }

    fn sync_result_for(&self, id: &str) -> SyncResult {
        SyncResult {
            error: code::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .member(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    fn complete_syncs(&mut self) {
        let waiting: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_sync)
            .map(|m| m.id.clone())
            .collect();
        for id in waiting {
            let r = self.sync_result_for(&id);
            if let Some(m) = self.member_mut(&id) {
                m.awaiting_sync = false;
            }
            self.outbox.push(Outbound::Sync(id, r));
        }
    }

    /// Heartbeat: an error code.
    pub fn heartbeat(
        &mut self,
        now: u64,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if self.state == State::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if self.fenced(member_id, instance_id) {
            return code::FENCED_INSTANCE_ID;
        }
        if !self.has_member(member_id) {
            return code::UNKNOWN_MEMBER_ID;
        }
        if generation != self.generation {
            return code::ILLEGAL_GENERATION;
        }
        if let Some(m) = self.member_mut(member_id) {
            m.session_deadline = now + m.session_timeout_ms;
        }
        match self.state {
            State::Empty | State::Dead => code::UNKNOWN_MEMBER_ID,
            State::PreparingRebalance => code::REBALANCE_IN_PROGRESS,
            State::CompletingRebalance | State::Stable => code::NONE,
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id when the
    /// member id is empty). Returns the member's error code.
    pub fn leave(&mut self, now: u64, member_id: &str, instance_id: Option<&str>) -> i16 {
        if self.state == State::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        let target = match instance_id {
            Some(instance) => match self.static_member(instance) {
                Some(m) if member_id.is_empty() || m.id == member_id => m.id.clone(),
                Some(_) => return code::FENCED_INSTANCE_ID,
                None => return code::UNKNOWN_MEMBER_ID,
            },
            None => {
                if let Some(pos) = self
                    .pending_members
                    .iter()
                    .position(|(p, _)| p == member_id)
                {
                    self.pending_members.remove(pos);
                    self.maybe_complete_join(now);
                    return code::NONE;
                }
                if !self.has_member(member_id) {
                    return code::UNKNOWN_MEMBER_ID;
                }
                member_id.to_string()
            }
        };
        self.remove_member(now, &target);
        code::NONE
    }

    fn remove_member(&mut self, now: u64, id: &str) {
        let Some(pos) = self.members.iter().position(|m| m.id == id) else {
            return;
        };
        let m = self.members.remove(pos);
        if m.awaiting_join {
            self.outbox.push(Outbound::Join(
                m.id.clone(),
                JoinResult::error(&m.id, code::UNKNOWN_MEMBER_ID),
            ));
        }
        if m.awaiting_sync {
            self.outbox.push(Outbound::Sync(
                m.id.clone(),
                SyncResult::error(code::UNKNOWN_MEMBER_ID),
            ));
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        match self.state {
            State::Stable | State::CompletingRebalance => {
                self.prepare_rebalance(now);
                // With nobody left to wait for, the group empties at once.
                self.maybe_complete_join(now);
            }
            State::PreparingRebalance => self.maybe_complete_join(now),
            State::Empty | State::Dead => {}
        }
    }

    /// Advances timers: expired sessions leave, a due join phase completes,
    /// members that never sent SyncGroup are removed.
    pub fn tick(&mut self, now: u64) {
        self.pending_members.retain(|(_, d)| *d > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.awaiting_join && !m.awaiting_sync && m.session_deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            self.remove_member(now, &id);
        }
        if self.sync_deadline.is_some_and(|d| now >= d) {
            self.sync_deadline = None;
            if matches!(self.state, State::CompletingRebalance | State::Stable) {
                let lagging: Vec<String> = self
                    .members
                    .iter()
                    .filter(|m| m.pending_sync)
                    .map(|m| m.id.clone())
                    .collect();
                for id in lagging {
                    self.remove_member(now, &id);
                }
            }
        }
        self.maybe_complete_join(now);
    }

    /// Offset commit validation (Kafka's `validateOffsetCommit`): `Ok` when
    /// the commit may be stored.
    pub fn validate_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if self.state == State::Dead {
            return Err(code::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && self.state == State::Empty {
            // assign() users commit with generation -1 and no member id.
            return Ok(());
        }
        if self.fenced(member_id, instance_id) {
            return Err(code::FENCED_INSTANCE_ID);
        }
        if !self.has_member(member_id) {
            return Err(code::UNKNOWN_MEMBER_ID);
        }
        if generation != self.generation {
            return Err(code::ILLEGAL_GENERATION);
        }
        if self.state == State::CompletingRebalance {
            return Err(code::REBALANCE_IN_PROGRESS);
        }
        Ok(())
    }
}
