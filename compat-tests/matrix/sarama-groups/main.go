// Consumer-group scenario for IBM/sarama, written the way a sarama user
// would: every group member is its own sarama.ConsumerGroup driven by a
// ConsumerGroupHandler, Consume called in a loop, auto-commit disabled
// (Consumer.Offsets.AutoCommit.Enable=false) and every consumed message
// marked with session.MarkMessage then committed synchronously with
// session.Commit(); a ClusterAdmin for ListConsumerGroups,
// DescribeConsumerGroups, ListConsumerGroupOffsets,
// RemoveMemberFromConsumerGroup, DeleteConsumerGroupOffset and
// DeleteConsumerGroup; Client.GetOffset for end offsets and a ListGroups v4
// request for group states (ListConsumerGroups returns no state).
//
// Usage: scenario BOOTSTRAP TOPIC_PREFIX
//
// Steps (see ../README.md for the contract):
//
//  1. four 6-partition topics; 600 keyed records into the main one (each
//     later step produces more and checks each record is consumed exactly
//     once, by the member claiming its partition);
//  2. three members of one group (sarama's default strategy, range, an
//     eager protocol): two partitions each once stable, every record
//     consumed exactly once, committed offsets = end offsets;
//  3. one member leaves (Close sends LeaveGroup): the other two take over
//     its partitions; the time is printed;
//  4. seven members on six partitions: exactly one idle;
//  5. cooperative-sticky (sarama's NewBalanceStrategyCooperativeSticky,
//     the KIP-429 incremental protocol; BalanceStrategySticky would be
//     eager): a third member joining takes one partition from each of the
//     two others, no retained claim is stopped, Setup runs once per member;
//  6. static membership (Consumer.Group.InstanceId): a member closed (sarama
//     sends no LeaveGroup for static members; checked with DescribeGroups)
//     and restarted with the same instance id gets its partitions back in
//     the same generation, while the other member's session is untouched
//     (no new session, no claim stopped, same generation); done for the
//     follower, then for the leader, once with range and once with
//     cooperative-sticky; then both are removed by instance id
//     (RemoveMemberFromConsumerGroup, LeaveGroup v3);
//  7. at every stable point DescribeGroups and ListGroups agree with the
//     members (Stable, protocol type consumer, protocol, member ids, client
//     ids, instance ids, assignments); at the end the groups are Empty,
//     OffsetDelete and DeleteGroups work.
//
// Every failed check prints "FAIL <check>: <detail>" and exits 1; success
// prints "RESULT sarama-groups <version> ok" as the last line.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

const (
	numPartitions = 6
	mainRecords   = 600
	batchRecords  = 120
	numKeys       = 60

	heartbeatInterval = 500 * time.Millisecond
	sessionTimeout    = 10 * time.Second // >= Kafka's group.min.session.timeout.ms (6 s)
	rebalanceTimeout  = 10 * time.Second
	waitLimit         = 30 * time.Second // any single awaited condition
)

// kafkaVersion is the protocol level sarama is told the cluster speaks, as
// in ../sarama (JoinGroup v8, SyncGroup v5, Heartbeat v4, LeaveGroup v5,
// OffsetCommit v8, DescribeGroups v5, ListGroups v5).
var kafkaVersion = sarama.V4_0_0_0

var (
	addrs    []string
	admin    sarama.ClusterAdmin
	client   sarama.Client
	producer sarama.SyncProducer
	started  = time.Now()
)

func fail(check string, format string, args ...any) {
	fmt.Printf("FAIL %s: %s\n", check, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func step(format string, args ...any) {
	fmt.Printf("-- [%6.2fs] "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
}

func clientVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/IBM/sarama" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func newConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	cfg.Version = kafkaVersion
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Heartbeat.Interval = heartbeatInterval
	cfg.Consumer.Group.Session.Timeout = sessionTimeout
	cfg.Consumer.Group.Rebalance.Timeout = rebalanceTimeout
	return cfg
}

func sortedParts(set map[int32]bool) []int32 {
	var out []int32
	for p, ok := range set {
		if ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// ---------------------------------------------------------------------------
// Produced records

type produced struct {
	value     string
	partition int32
	offset    int64
}

// produce writes n keyed records (values "<tag>-<i>"), acks=all.
func produce(check, topic, tag string, n int) []produced {
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range n {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%02d", i%numKeys)),
			Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", tag, i)),
		}
	}
	if err := producer.SendMessages(msgs); err != nil {
		fail(check, "SendMessages(%d to %s): %v", n, topic, err)
	}
	out := make([]produced, n)
	for i, m := range msgs {
		out[i] = produced{fmt.Sprintf("%s-%d", tag, i), m.Partition, m.Offset}
	}
	return out
}

// ---------------------------------------------------------------------------
// Group and members

type consumption struct {
	member    string
	partition int32
	offset    int64
}

// group tracks the members of one consumer group and what they consumed.
// Every change is announced by closing and replacing `changed`, so waits
// are event driven.
type group struct {
	name     string
	topic    string
	protocol string // expected protocol (strategy) name

	mu       sync.Mutex
	changed  chan struct{}
	members  []*member
	produced []produced
	seen     map[string][]consumption
	errs     []string
}

func newGroup(name, topic, protocol string) *group {
	return &group{name: name, topic: topic, protocol: protocol, changed: make(chan struct{}), seen: map[string][]consumption{}}
}

func (g *group) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *group) addErr(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs = append(g.errs, fmt.Sprintf(format, args...))
	g.notifyLocked()
}

// waitFor blocks until cond (evaluated under g.mu) holds; fails after limit
// or as soon as a member reported an error.
func (g *group) waitFor(check string, limit time.Duration, cond func() (bool, string)) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		ok, state := cond()
		ch := g.changed
		errs := slices.Clone(g.errs)
		g.mu.Unlock()
		if len(errs) > 0 {
			fail(check, "client errors in group %s: %s", g.name, strings.Join(errs, "; "))
		}
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			fail(check, "not reached within %s: %s", limit, state)
		}
	}
}

type member struct {
	g          *group
	name       string
	clientID   string
	instanceID string
	cg         sarama.ConsumerGroup
	cancel     context.CancelFunc
	done       chan struct{}

	// guarded by g.mu
	active      bool
	sess        sarama.ConsumerGroupSession // the current session
	owned       map[int32]bool              // partitions with a running ConsumeClaim
	sessions    int                         // Setup calls
	claimStarts int
	claimStops  int
	stopped     []int32 // partitions whose ConsumeClaim ended, in order
}

func (g *group) start(name string, strategy sarama.BalanceStrategy, instanceID string) *member {
	m := &member{
		g:          g,
		name:       name,
		clientID:   "sarama-groups-" + name,
		instanceID: instanceID,
		done:       make(chan struct{}),
		owned:      map[int32]bool{},
		active:     true,
	}
	cfg := newConfig(m.clientID)
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	cfg.Consumer.Group.InstanceId = instanceID
	cg, err := sarama.NewConsumerGroup(addrs, g.name, cfg)
	if err != nil {
		fail("member-client", "%s: NewConsumerGroup: %v", name, err)
	}
	m.cg = cg
	g.mu.Lock()
	g.members = append(g.members, m)
	g.notifyLocked()
	g.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		for err := range cg.Errors() {
			g.addErr("%s: %v", name, err)
		}
	}()
	go func() {
		defer close(m.done)
		for {
			// With an eager strategy every rebalance ends Consume; the
			// loop joins the next generation. With a cooperative one
			// Consume lasts across rebalances.
			err := cg.Consume(ctx, []string{g.topic}, m)
			if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
				return
			}
			if err != nil {
				g.addErr("%s: Consume: %v", name, err)
				return
			}
		}
	}()
	return m
}

// Setup implements sarama.ConsumerGroupHandler.
func (m *member) Setup(sess sarama.ConsumerGroupSession) error {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	m.sess = sess
	m.sessions++
	g.notifyLocked()
	return nil
}

// Cleanup implements sarama.ConsumerGroupHandler: a last synchronous
// commit before the session's claims are released.
func (m *member) Cleanup(sess sarama.ConsumerGroupSession) error {
	sess.Commit()
	return nil
}

// ConsumeClaim implements sarama.ConsumerGroupHandler: record, mark and
// commit synchronously (whenever the claim has nothing buffered, and
// before returning), until the claim is released.
func (m *member) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	g := m.g
	p := claim.Partition()
	g.mu.Lock()
	if claim.Topic() != g.topic {
		g.errs = append(g.errs, fmt.Sprintf("%s: claim on topic %q", m.name, claim.Topic()))
	}
	if m.owned[p] {
		g.errs = append(g.errs, fmt.Sprintf("%s: second claim on partition %d", m.name, p))
	}
	m.owned[p] = true
	m.claimStarts++
	g.notifyLocked()
	g.mu.Unlock()
	defer func() {
		sess.Commit()
		g.mu.Lock()
		delete(m.owned, p)
		m.claimStops++
		m.stopped = append(m.stopped, p)
		g.notifyLocked()
		g.mu.Unlock()
	}()
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			g.record(m, msg)
			sess.MarkMessage(msg, "")
			if len(claim.Messages()) == 0 {
				sess.Commit()
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (g *group) record(m *member, msg *sarama.ConsumerMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := string(msg.Value)
	g.seen[v] = append(g.seen[v], consumption{m.name, msg.Partition, msg.Offset})
	g.notifyLocked()
}

// close closes the consumer group: Consume returns, the last commit is
// made in ConsumeClaim/Cleanup, and a dynamic member sends LeaveGroup (a
// static one, with an InstanceId, does not).
func (m *member) close() time.Duration {
	t0 := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- m.cg.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			m.g.addErr("%s: Close: %v", m.name, err)
		}
	case <-time.After(waitLimit):
		fail("member-close", "%s: Close did not return within %s", m.name, waitLimit)
	}
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(waitLimit):
		fail("member-close", "%s: Consume loop did not stop within %s", m.name, waitLimit)
	}
	d := time.Since(t0)
	m.g.mu.Lock()
	m.active = false
	m.owned = map[int32]bool{}
	m.g.notifyLocked()
	m.g.mu.Unlock()
	return d
}

func (m *member) memberID() string {
	if m.sess == nil {
		return ""
	}
	return m.sess.MemberID()
}

func (m *member) generation() int32 {
	if m.sess == nil {
		return -1
	}
	return m.sess.GenerationID()
}

func (g *group) activeLocked() []*member {
	var out []*member
	for _, m := range g.members {
		if m.active {
			out = append(out, m)
		}
	}
	return out
}

// balancedLocked: every partition claimed by exactly one active member, and
// the sorted per-member counts equal want.
func (g *group) balancedLocked(want []int) (bool, string) {
	owner := map[int32]string{}
	var counts []int
	var desc []string
	for _, m := range g.activeLocked() {
		ps := sortedParts(m.owned)
		counts = append(counts, len(ps))
		desc = append(desc, fmt.Sprintf("%s=%v", m.name, ps))
		for _, p := range ps {
			if o, dup := owner[p]; dup {
				return false, fmt.Sprintf("partition %d claimed by %s and %s (%s)", p, o, m.name, strings.Join(desc, " "))
			}
			owner[p] = m.name
		}
	}
	sort.Ints(counts)
	state := fmt.Sprintf("claims %s", strings.Join(desc, " "))
	return len(owner) == numPartitions && slices.Equal(counts, want), state
}

// waitStable waits until the members' claims are balanced as want (sorted
// partition counts) and DescribeGroups/ListGroups agree with them (step 7).
// Returns the owner of every partition.
func (g *group) waitStable(check string, want []int) map[int32]*member {
	deadline := time.Now().Add(waitLimit)
	var why string
	for {
		g.waitFor(check, time.Until(deadline), func() (bool, string) { return g.balancedLocked(want) })
		var ok bool
		ok, why = g.describeAgrees()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			fail(check+"-describe", "DescribeGroups/ListGroups never agreed with the members: %s", why)
		}
		g.mu.Lock()
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	owners := map[int32]*member{}
	for _, m := range g.activeLocked() {
		for p := range m.owned {
			owners[p] = m
		}
	}
	return owners
}

// listGroupStates sends ListGroups v4 (with states) to every broker:
// ClusterAdmin.ListConsumerGroups returns only the protocol types.
func listGroupStates() (map[string]sarama.GroupData, error) {
	out := map[string]sarama.GroupData{}
	for _, b := range client.Brokers() {
		if err := b.Open(client.Config()); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
			return nil, err
		}
		resp, err := b.ListGroups(&sarama.ListGroupsRequest{Version: 4})
		if err != nil {
			return nil, err
		}
		if !errors.Is(resp.Err, sarama.ErrNoError) {
			return nil, resp.Err
		}
		for name, d := range resp.GroupsData {
			out[name] = d
		}
	}
	return out, nil
}

// describeAgrees compares DescribeConsumerGroups, ListConsumerGroups and
// ListGroups with the active members' own view (member id, client id,
// instance id, claims).
func (g *group) describeAgrees() (bool, string) {
	described, err := admin.DescribeConsumerGroups([]string{g.name})
	if err != nil {
		return false, fmt.Sprintf("DescribeConsumerGroups: %v", err)
	}
	if len(described) != 1 || described[0].GroupId != g.name {
		return false, fmt.Sprintf("DescribeConsumerGroups returned %d groups", len(described))
	}
	d := described[0]
	if !errors.Is(d.Err, sarama.ErrNoError) {
		return false, fmt.Sprintf("DescribeConsumerGroups error: %v", d.Err)
	}
	if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != g.protocol {
		return false, fmt.Sprintf("state=%q protocolType=%q protocol=%q, want Stable/consumer/%s", d.State, d.ProtocolType, d.Protocol, g.protocol)
	}
	g.mu.Lock()
	active := g.activeLocked()
	byID := map[string]*member{}
	own := map[string][]int32{}
	for _, m := range active {
		id := m.memberID()
		byID[id] = m
		own[id] = sortedParts(m.owned)
	}
	g.mu.Unlock()
	if len(d.Members) != len(active) {
		return false, fmt.Sprintf("%d members described, %d active", len(d.Members), len(active))
	}
	for id, dm := range d.Members {
		m, ok := byID[id]
		if !ok {
			return false, fmt.Sprintf("described member %q is none of the active members' ids", id)
		}
		if dm.MemberId != id {
			return false, fmt.Sprintf("member %s: described under %q with member id %q", m.name, id, dm.MemberId)
		}
		if dm.ClientId != m.clientID {
			return false, fmt.Sprintf("member %s: client id %q, want %q", m.name, dm.ClientId, m.clientID)
		}
		if dm.ClientHost == "" {
			return false, fmt.Sprintf("member %s: empty client host", m.name)
		}
		gotInst := ""
		if dm.GroupInstanceId != nil {
			gotInst = *dm.GroupInstanceId
		}
		if gotInst != m.instanceID {
			return false, fmt.Sprintf("member %s: instance id %q, want %q", m.name, gotInst, m.instanceID)
		}
		meta, err := dm.GetMemberMetadata()
		if err != nil || meta == nil || !slices.Equal(meta.Topics, []string{g.topic}) {
			return false, fmt.Sprintf("member %s: subscription metadata %+v (%v), want topics [%s]", m.name, meta, err, g.topic)
		}
		asg, err := dm.GetMemberAssignment()
		if err != nil {
			return false, fmt.Sprintf("member %s: assignment: %v", m.name, err)
		}
		var got []int32
		if asg != nil {
			for t, ps := range asg.Topics {
				if t != g.topic {
					return false, fmt.Sprintf("member %s: assigned topic %q", m.name, t)
				}
				got = append(got, ps...)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, own[id]) && !(len(got) == 0 && len(own[id]) == 0) {
			return false, fmt.Sprintf("member %s: described assignment %v, member claims %v", m.name, got, own[id])
		}
	}
	types, err := admin.ListConsumerGroups()
	if err != nil {
		return false, fmt.Sprintf("ListConsumerGroups: %v", err)
	}
	if types[g.name] != "consumer" {
		return false, fmt.Sprintf("ListConsumerGroups: protocol type %q (listed %v), want consumer", types[g.name], len(types))
	}
	states, err := listGroupStates()
	if err != nil {
		return false, fmt.Sprintf("ListGroups v4: %v", err)
	}
	if st := states[g.name]; st.GroupState != "Stable" {
		return false, fmt.Sprintf("ListGroups v4: state %q, want Stable", st.GroupState)
	}
	return true, ""
}

// expectConsumed waits until every record produced so far was consumed,
// then checks each was consumed exactly once, and (when owners is given)
// by the owner of its partition.
func (g *group) expectConsumed(check string, batch []produced, owners map[int32]*member) {
	g.mu.Lock()
	g.produced = append(g.produced, batch...)
	g.mu.Unlock()
	g.waitFor(check, waitLimit, func() (bool, string) {
		missing := 0
		first := ""
		for _, p := range g.produced {
			if len(g.seen[p.value]) == 0 {
				if missing == 0 {
					first = fmt.Sprintf("%s (partition %d offset %d)", p.value, p.partition, p.offset)
				}
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d records not consumed yet, first %s", missing, len(g.produced), first)
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.seen) != len(g.produced) {
		fail(check, "consumed %d distinct values, produced %d", len(g.seen), len(g.produced))
	}
	for _, p := range g.produced {
		cs := g.seen[p.value]
		if len(cs) != 1 {
			fail(check+"-exactly-once", "%s consumed %d times: %+v", p.value, len(cs), cs)
		}
		if cs[0].partition != p.partition || cs[0].offset != p.offset {
			fail(check, "%s consumed at %d@%d, produced at %d@%d", p.value, cs[0].partition, cs[0].offset, p.partition, p.offset)
		}
	}
	if owners != nil {
		for _, p := range batch {
			if c := g.seen[p.value][0]; c.member != owners[p.partition].name {
				fail(check+"-owner", "%s (partition %d) consumed by %s, owner is %s", p.value, p.partition, c.member, owners[p.partition].name)
			}
		}
	}
}

// committed returns the group's committed offset of every partition of its
// topic (-1 when none), through ClusterAdmin.ListConsumerGroupOffsets.
func (g *group) committed() (map[int32]int64, error) {
	parts := make([]int32, numPartitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	resp, err := admin.ListConsumerGroupOffsets(g.name, map[string][]int32{g.topic: parts})
	if err != nil {
		return nil, err
	}
	if !errors.Is(resp.Err, sarama.ErrNoError) {
		return nil, resp.Err
	}
	out := map[int32]int64{}
	for _, p := range parts {
		b := resp.GetBlock(g.topic, p)
		if b == nil {
			return nil, fmt.Errorf("no block for partition %d", p)
		}
		if !errors.Is(b.Err, sarama.ErrNoError) {
			return nil, fmt.Errorf("partition %d: %w", p, b.Err)
		}
		out[p] = b.Offset
	}
	return out, nil
}

// expectCommittedAtEnd polls ListConsumerGroupOffsets until the committed
// offset of every partition equals its end offset (Client.GetOffset newest).
func (g *group) expectCommittedAtEnd(check string) map[int32]int64 {
	deadline := time.Now().Add(waitLimit)
	for {
		committed, err := g.committed()
		if err != nil {
			fail(check, "ListConsumerGroupOffsets: %v", err)
		}
		var diffs []string
		for p := range int32(numPartitions) {
			end, err := client.GetOffset(g.topic, p, sarama.OffsetNewest)
			if err != nil {
				fail(check, "GetOffset(%d, newest): %v", p, err)
			}
			if committed[p] != end {
				diffs = append(diffs, fmt.Sprintf("p%d committed %d end %d", p, committed[p], end))
			}
		}
		if len(diffs) == 0 {
			return committed
		}
		if time.Now().After(deadline) {
			fail(check, "committed offsets never reached the end offsets: %s", strings.Join(diffs, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *group) expectState(check, state string, members int) {
	deadline := time.Now().Add(waitLimit)
	for {
		described, err := admin.DescribeConsumerGroups([]string{g.name})
		if err != nil {
			fail(check, "DescribeConsumerGroups: %v", err)
		}
		states, err := listGroupStates()
		if err != nil {
			fail(check, "ListGroups: %v", err)
		}
		var d *sarama.GroupDescription
		if len(described) == 1 {
			d = described[0]
		}
		if d != nil && errors.Is(d.Err, sarama.ErrNoError) && d.State == state && len(d.Members) == members && states[g.name].GroupState == state {
			return
		}
		if time.Now().After(deadline) {
			fail(check, "group %s: described %+v, listed %+v; want %s with %d members", g.name, d, states[g.name], state, members)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------

func createTopic(topic string) {
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: numPartitions, ReplicationFactor: 1}, false); err != nil {
		fail("create-topic", "CreateTopic(%s, %d partitions): %v", topic, numPartitions, err)
	}
	// Kafka propagates metadata asynchronously: wait for every leader.
	deadline := time.Now().Add(waitLimit)
	for {
		err := client.RefreshMetadata(topic)
		var parts []int32
		if err == nil {
			parts, err = client.Partitions(topic)
		}
		if err == nil && len(parts) == numPartitions {
			ready := true
			for _, p := range parts {
				if _, lerr := client.Leader(topic, p); lerr != nil {
					ready = false
				}
			}
			if ready {
				return
			}
		}
		if time.Now().After(deadline) {
			fail("create-topic", "%s: not every partition has a leader after %s (%v, partitions %v)", topic, waitLimit, err, parts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: scenario BOOTSTRAP TOPIC_PREFIX")
		os.Exit(2)
	}
	bootstrap, prefix := os.Args[1], os.Args[2]
	time.AfterFunc(180*time.Second, func() { fail("timeout", "scenario did not finish within 180s") })
	version := clientVersion()
	addrs = strings.Split(bootstrap, ",")
	if os.Getenv("SCENARIO_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
	run := time.Now().UnixNano()
	name := func(what string) string { return fmt.Sprintf("%ssg-%s-%d", prefix, what, run) }
	mainTopic, coopTopic, staticTopic, staticCoopTopic := name("main"), name("coop"), name("static"), name("static-coop")

	step("sarama %s (protocol %s) consumer groups against %s", version, kafkaVersion, bootstrap)

	var err error
	client, err = sarama.NewClient(addrs, newConfig("sarama-groups-admin"))
	if err != nil {
		fail("client", "%v", err)
	}
	defer client.Close()
	admin, err = sarama.NewClusterAdminFromClient(client)
	if err != nil {
		fail("admin-client", "%v", err)
	}
	producer, err = sarama.NewSyncProducer(addrs, newConfig("sarama-groups-producer"))
	if err != nil {
		fail("producer", "%v", err)
	}
	defer producer.Close()

	// 1. Topics and the first records.
	for _, t := range []string{mainTopic, coopTopic, staticTopic, staticCoopTopic} {
		createTopic(t)
	}
	first := produce("produce", mainTopic, "main", mainRecords)
	perPart := map[int32]int{}
	for _, p := range first {
		perPart[p.partition]++
	}
	if len(perPart) != numPartitions {
		fail("produce", "%d keyed records landed on %d partitions, want all %d", mainRecords, len(perPart), numPartitions)
	}
	step("1. created 4 topics with %d partitions, produced %d keyed records to %s (per partition %v)", numPartitions, mainRecords, mainTopic, perPart)

	// 2. Three members, sarama's default strategy (range, eager).
	rng := sarama.NewBalanceStrategyRange()
	gm := newGroup(name("main"), mainTopic, rng.Name())
	t0 := time.Now()
	m1 := gm.start("m1", rng, "")
	m2 := gm.start("m2", rng, "")
	m3 := gm.start("m3", rng, "")
	owners := gm.waitStable("three-members-stable", []int{2, 2, 2})
	step("2. three members stable after %v: %s", time.Since(t0).Round(time.Millisecond), ownersString(owners))
	gm.expectConsumed("three-members-consume", first, nil)
	committed := gm.expectCommittedAtEnd("three-members-committed")
	step("2. all %d records consumed exactly once; committed offsets = end offsets %v", mainRecords, committed)
	owners = gm.waitStable("three-members-stable", []int{2, 2, 2})
	gm.expectConsumed("three-members-owners", produce("produce", mainTopic, "main-b2", batchRecords), owners)
	gm.expectCommittedAtEnd("three-members-committed")
	step("2. %d more records each consumed once, by its partition's owner", batchRecords)

	// 3. m3 leaves cleanly.
	gm.mu.Lock()
	m3Parts := sortedParts(m3.owned)
	gm.mu.Unlock()
	t0 = time.Now()
	closeTook := m3.close()
	owners = gm.waitStable("leave-takeover", []int{3, 3})
	took := time.Since(t0)
	for _, p := range m3Parts {
		if o := owners[p]; o != m1 && o != m2 {
			fail("leave-takeover", "partition %d of m3 went to %v", p, o)
		}
	}
	step("3. m3 left (Close %v); m1 and m2 own all partitions %v after the leave (rebalance after leave)", closeTook.Round(time.Millisecond), took.Round(time.Millisecond))
	fmt.Printf("TIMING rebalance-after-leave %dms\n", took.Milliseconds())
	gm.expectConsumed("leave-consume", produce("produce", mainTopic, "main-b3", batchRecords), owners)
	gm.expectCommittedAtEnd("leave-committed")
	step("3. %d more records each consumed once by the new owners: %s", batchRecords, ownersString(owners))

	// 4. Seven members on six partitions.
	t0 = time.Now()
	for i := 4; i <= 8; i++ {
		gm.start(fmt.Sprintf("m%d", i), rng, "")
	}
	owners = gm.waitStable("seven-members", []int{0, 1, 1, 1, 1, 1, 1})
	gm.mu.Lock()
	var idle *member
	for _, m := range gm.activeLocked() {
		if len(m.owned) == 0 {
			idle = m
		}
	}
	gm.mu.Unlock()
	step("4. seven members stable after %v, idle: %s; %s", time.Since(t0).Round(time.Millisecond), idle.name, ownersString(owners))
	gm.expectConsumed("seven-members-consume", produce("produce", mainTopic, "main-b4", batchRecords), owners)
	gm.expectCommittedAtEnd("seven-members-committed")
	gm.mu.Lock()
	for v, cs := range gm.seen {
		if strings.HasPrefix(v, "main-b4-") && cs[0].member == idle.name {
			fail("seven-members-idle", "idle member %s consumed %s", idle.name, v)
		}
	}
	gm.mu.Unlock()
	closeAll(gm)
	gm.expectConsumed("main-final-exactly-once", nil, nil) // nothing consumed twice while leaving
	gm.expectState("main-empty", "Empty", 0)
	committed = gm.expectCommittedAtEnd("main-final-committed")
	step("4. %d more records consumed once, none by the idle member; all members left, group Empty, committed %v", batchRecords, committed)

	// 5. Cooperative-sticky: adding a member moves only some partitions.
	// Each member needs its own strategy instance (it is stateful).
	coopName := sarama.NewBalanceStrategyCooperativeSticky().Name()
	gc := newGroup(name("coop"), coopTopic, coopName)
	c1 := gc.start("c1", sarama.NewBalanceStrategyCooperativeSticky(), "")
	c2 := gc.start("c2", sarama.NewBalanceStrategyCooperativeSticky(), "")
	gc.waitStable("coop-two-stable", []int{3, 3})
	gc.expectConsumed("coop-consume", produce("produce", coopTopic, "coop", batchRecords), nil)
	gc.expectCommittedAtEnd("coop-committed")
	gc.mu.Lock()
	before := map[*member][]int32{c1: sortedParts(c1.owned), c2: sortedParts(c2.owned)}
	stopsBefore := map[*member]int{c1: len(c1.stopped), c2: len(c2.stopped)}
	gc.mu.Unlock()
	t0 = time.Now()
	c3 := gc.start("c3", sarama.NewBalanceStrategyCooperativeSticky(), "")
	owners = gc.waitStable("coop-three-stable", []int{2, 2, 2})
	took = time.Since(t0)
	gc.mu.Lock()
	var moved []string
	for _, m := range []*member{c1, c2} {
		now := sortedParts(m.owned)
		for _, p := range now {
			if !slices.Contains(before[m], p) {
				fail("coop-sticky", "%s gained partition %d (had %v, has %v): only the new member may gain", m.name, p, before[m], now)
			}
		}
		stopped := slices.Clone(m.stopped[stopsBefore[m]:])
		slices.Sort(stopped)
		var lostHere []int32
		for _, p := range before[m] {
			if !slices.Contains(now, p) {
				lostHere = append(lostHere, p)
			}
		}
		if len(lostHere) != 1 || !slices.Equal(stopped, lostHere) {
			fail("coop-sticky", "%s: had %v, now %v, claims stopped %v: want exactly one partition moved and only its claim stopped", m.name, before[m], now, stopped)
		}
		if m.sessions != 1 {
			fail("coop-sticky", "%s: Setup ran %d times, want once (a cooperative rebalance keeps the session)", m.name, m.sessions)
		}
		moved = append(moved, fmt.Sprintf("%s %v->%v (stopped %v)", m.name, before[m], now, stopped))
	}
	gc.mu.Unlock()
	step("5. cooperative-sticky: c3 joined, stable after %v; moved only %s; c3 got %v", took.Round(time.Millisecond), strings.Join(moved, ", "), partsOf(owners, c3))
	gc.expectConsumed("coop-consume-after", produce("produce", coopTopic, "coop-b2", batchRecords/2), owners)
	gc.expectCommittedAtEnd("coop-committed-after")
	closeAll(gc)
	gc.expectConsumed("coop-final-exactly-once", nil, nil)
	gc.expectState("coop-empty", "Empty", 0)

	// 6. Static membership, first with the default strategy (range, eager:
	// any rebalance would end the other member's session), then with
	// cooperative-sticky (whose subscription metadata carries the owned
	// partitions and generation, so a restarted member's JoinGroup
	// metadata differs from its previous one).
	gs := staticScenario("static", name("static"), staticTopic, rng.Name(), func() sarama.BalanceStrategy { return rng })
	gsc := staticScenario("static-coop", name("static-coop"), staticCoopTopic, coopName, sarama.NewBalanceStrategyCooperativeSticky)

	// 7. OffsetDelete and DeleteGroups on the now empty groups.
	for _, p := range []int32{0, 1} {
		if err := admin.DeleteConsumerGroupOffset(gc.name, coopTopic, p); err != nil {
			fail("offset-delete", "DeleteConsumerGroupOffset(%s, %s, %d): %v", gc.name, coopTopic, p, err)
		}
	}
	offs, err := gc.committed()
	if err != nil {
		fail("offset-delete", "ListConsumerGroupOffsets: %v", err)
	}
	for p := range int32(numPartitions) {
		if deleted := offs[p] < 0; deleted != (p <= 1) {
			fail("offset-delete", "partition %d: committed %d after deleting partitions 0 and 1", p, offs[p])
		}
	}
	step("7. OffsetDelete removed the committed offsets of partitions 0 and 1 only: %v", offs)
	groups := []string{gm.name, gc.name, gs.name, gsc.name}
	for _, gname := range groups {
		if err := admin.DeleteConsumerGroup(gname); err != nil {
			fail("delete-groups", "DeleteConsumerGroup(%s): %v", gname, err)
		}
	}
	types, err := admin.ListConsumerGroups()
	if err != nil {
		fail("delete-groups", "ListConsumerGroups: %v", err)
	}
	for _, gname := range groups {
		if _, ok := types[gname]; ok {
			fail("delete-groups", "%s still listed after DeleteConsumerGroup", gname)
		}
	}
	offs, err = gm.committed()
	if err != nil {
		fail("delete-groups", "ListConsumerGroupOffsets after delete: %v", err)
	}
	for p, o := range offs {
		if o >= 0 {
			fail("delete-groups", "%s: partition %d still has committed offset %d after DeleteConsumerGroup", gm.name, p, o)
		}
	}
	step("7. DeleteConsumerGroup removed the %d groups and their offsets", len(groups))

	fmt.Printf("RESULT sarama-groups %s ok\n", version)
}

// staticScenario: two static members (s-a joins first so it is the
// leader); the follower is restarted, then the leader; finally both are
// closed (no LeaveGroup) and removed by instance id.
func staticScenario(label, groupName, topic, protocol string, strategy func() sarama.BalanceStrategy) *group {
	g := newGroup(groupName, topic, protocol)
	sa := g.start("s-a", strategy(), "static-a")
	g.waitStable(label+"-one", []int{6})
	sb := g.start("s-b", strategy(), "static-b")
	g.waitStable(label+"-stable", []int{3, 3})
	g.expectConsumed(label+"-consume", produce("produce", topic, "static", batchRecords), nil)
	g.expectCommittedAtEnd(label + "-committed")
	step("6. [%s, %s] static members s-a (static-a, joined first: leader) and s-b (static-b) stable", label, protocol)
	sb = restartStatic(g, label, sb, sa, strategy(), "follower")
	sa = restartStatic(g, label, sa, sb, strategy(), "leader")
	// Closing static members sends no LeaveGroup: they stay members until
	// removed by instance id (KIP-345 admin LeaveGroup).
	sa.close()
	sb.close()
	g.expectConsumed(label+"-final-exactly-once", nil, nil)
	g.expectState(label+"-closed-still-members", "Stable", 2)
	left, err := admin.RemoveMemberFromConsumerGroup(g.name, []string{"static-a", "static-b"})
	if err != nil {
		fail(label+"-remove", "RemoveMemberFromConsumerGroup: %v", err)
	}
	if len(left.Members) != 2 {
		fail(label+"-remove", "%d member responses, want 2: %+v", len(left.Members), left.Members)
	}
	for _, mr := range left.Members {
		if !errors.Is(mr.Err, sarama.ErrNoError) || mr.GroupInstanceId == nil {
			fail(label+"-remove", "member response %+v", mr)
		}
	}
	g.expectState(label+"-empty", "Empty", 0)
	step("6. [%s] both static members removed by instance id (LeaveGroup v3): group Empty", label)
	return g
}

// restartStatic closes static member r (no LeaveGroup), checks it is still
// a member, restarts it with the same instance id and checks it gets the
// same partitions back in the same generation while `other` keeps its
// session (no new Setup, no claim stopped, same generation and member id).
func restartStatic(g *group, label string, r, other *member, strategy sarama.BalanceStrategy, role string) *member {
	check := label + "-rejoin-" + role
	g.mu.Lock()
	parts := sortedParts(r.owned)
	otherParts := sortedParts(other.owned)
	otherSessions, otherStops := other.sessions, other.claimStops
	oldID, gen := r.memberID(), r.generation()
	otherID, otherGen := other.memberID(), other.generation()
	g.mu.Unlock()
	if otherGen != gen {
		fail(check, "%s in generation %d, %s in %d", r.name, gen, other.name, otherGen)
	}

	r.close()
	// No LeaveGroup: the group still has both members, stable.
	described, err := admin.DescribeConsumerGroups([]string{g.name})
	if err != nil || len(described) != 1 {
		fail(check, "DescribeConsumerGroups: %v (%d groups)", err, len(described))
	}
	d := described[0]
	if _, still := d.Members[oldID]; d.State != "Stable" || len(d.Members) != 2 || !still {
		fail(check, "after closing static %s: state %q, %d members, its member id %s present %v; want Stable with it still there (static members do not leave on close)", r.name, d.State, len(d.Members), oldID, still)
	}
	// Records for its partitions while it is away.
	batch := produce("produce", g.topic, "static-"+r.name+"-away", batchRecords/2)

	t0 := time.Now()
	nr := g.start(r.name, strategy, r.instanceID)
	g.waitFor(check, waitLimit, func() (bool, string) {
		return slices.Equal(sortedParts(nr.owned), parts), fmt.Sprintf("%s claims %v, want %v", nr.name, sortedParts(nr.owned), parts)
	})
	took := time.Since(t0)
	owners := g.waitStable(check, []int{3, 3})
	g.expectConsumed(check+"-consume", batch, owners)
	g.expectCommittedAtEnd(check + "-committed")

	g.mu.Lock()
	defer g.mu.Unlock()
	if other.sessions != otherSessions || other.claimStops != otherStops || !slices.Equal(sortedParts(other.owned), otherParts) {
		fail(check, "%s saw a rebalance: sessions %d->%d, claims stopped %d->%d, claims %v->%v", other.name, otherSessions, other.sessions, otherStops, other.claimStops, otherParts, sortedParts(other.owned))
	}
	if id, ngen := other.memberID(), other.generation(); id != otherID || ngen != gen {
		fail(check, "%s: member/generation %s/%d -> %s/%d, want unchanged", other.name, otherID, gen, id, ngen)
	}
	if nr.generation() != gen || nr.sessions != 1 {
		fail(check, "restarted %s: %d session(s), generation %d, want one session in the unchanged generation %d", nr.name, nr.sessions, nr.generation(), gen)
	}
	if nr.memberID() == oldID {
		fail(check, "restarted %s kept member id %s; the coordinator should hand a new one", nr.name, oldID)
	}
	step("6. [%s] static %s (%s) restarted: same partitions %v back after %v (static rejoin), generation %d unchanged, %s kept its session; %d records consumed once",
		label, r.name, role, parts, took.Round(time.Millisecond), gen, other.name, len(batch))
	fmt.Printf("TIMING %s-rejoin-%s %dms\n", label, role, took.Milliseconds())
	return nr
}

func closeAll(g *group) {
	g.mu.Lock()
	active := g.activeLocked()
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range active {
		wg.Go(func() { m.close() })
	}
	wg.Wait()
}

func ownersString(owners map[int32]*member) string {
	var parts []string
	for p := range int32(numPartitions) {
		if m := owners[p]; m != nil {
			parts = append(parts, fmt.Sprintf("p%d:%s", p, m.name))
		}
	}
	return strings.Join(parts, " ")
}

func partsOf(owners map[int32]*member, m *member) []int32 {
	var out []int32
	for p, o := range owners {
		if o == m {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
