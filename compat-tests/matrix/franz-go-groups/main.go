// Consumer-group scenario for franz-go (kgo + kadm), written the way a
// franz-go user would: every group member is its own kgo.Client with
// kgo.ConsumerGroup, kgo.DisableAutoCommit and kgo.BlockRebalanceOnPoll,
// committing synchronously with CommitRecords after every poll (and
// CommitUncommittedOffsets in OnPartitionsRevoked) before allowing a
// rebalance; kadm for DescribeGroups, ListGroups, FetchOffsets,
// ListEndOffsets, LeaveGroup (by instance id), DeleteOffsets and
// DeleteGroups.
//
// Usage: scenario BOOTSTRAP TOPIC_PREFIX
//
// Steps (see ../README.md for the contract):
//
//  1. three 6-partition topics; 600 keyed records into the main one (each
//     later step produces more and checks each record is consumed exactly
//     once, by the member owning its partition);
//  2. three members of one group (default balancer, cooperative-sticky):
//     two partitions each once stable, every record consumed exactly once,
//     committed offsets = end offsets;
//  3. one member leaves (Close sends LeaveGroup): the other two take over
//     its partitions; the time is printed;
//  4. seven members on six partitions: exactly one idle;
//  5. cooperative-sticky: a third member joining takes one partition from
//     each of the two others, nothing else moves or is revoked;
//  6. static membership (kgo.InstanceID): a member closed (franz-go sends
//     no LeaveGroup for static members; checked with DescribeGroups) and
//     restarted with the same instance id gets its partitions back; for the
//     follower in the same generation with no rebalance at all (the other
//     member sees no revoke, no assign, no generation change); for the
//     leader the coordinator must keep it leader (KIP-814), the other member
//     sees no revoke (franz-go may rejoin on purpose, see restartStatic);
//     then both are removed by instance id (kadm LeaveGroup);
//  7. at every stable point DescribeGroups and ListGroups agree with the
//     members (Stable, protocol type consumer, protocol, member ids, client
//     ids, instance ids, assignments); at the end the groups are Empty,
//     OffsetDelete and DeleteGroups work.
//
// Every failed check prints "FAIL <check>: <detail>" and exits 1; success
// prints "RESULT franz-go-groups <version> ok" as the last line.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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

var (
	seeds   []string
	adm     *kadm.Client
	started = time.Now()
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
			if d.Path == "github.com/twmb/franz-go" {
				return d.Version
			}
		}
	}
	return "unknown"
}

// withLog adds franz-go's logging to stderr when SCENARIO_DEBUG is set
// ("info" for info level, anything else for debug).
func withLog(prefix string, opts ...kgo.Opt) []kgo.Opt {
	if l := debugLogger(prefix); l != nil {
		opts = append(opts, kgo.WithLogger(l))
	}
	return opts
}

func debugLogger(prefix string) kgo.Logger {
	v := os.Getenv("SCENARIO_DEBUG")
	if v == "" {
		return nil
	}
	level := kgo.LogLevelDebug
	if v == "info" {
		level = kgo.LogLevelInfo
	}
	return kgo.BasicLogger(os.Stderr, level, func() string {
		return time.Now().Format("15:04:05.000 ") + prefix + " "
	})
}

// joinLogger is a kgo.Logger that notes, from the client's own "joined"
// log line, whether the member was made group leader and in which
// generation (franz-go has no other public way to tell the leader), and
// forwards everything to the debug logger when there is one.
type joinLogger struct {
	m     *member
	inner kgo.Logger
}

func (l *joinLogger) Level() kgo.LogLevel {
	if l.inner != nil && l.inner.Level() > kgo.LogLevelInfo {
		return l.inner.Level()
	}
	return kgo.LogLevelInfo
}

func (l *joinLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if strings.HasPrefix(msg, "joined") {
		var leader bool
		gen := int32(-1)
		for i := 0; i+1 < len(keyvals); i += 2 {
			switch keyvals[i] {
			case "leader":
				leader, _ = keyvals[i+1].(bool)
			case "generation":
				gen, _ = keyvals[i+1].(int32)
			}
		}
		g := l.m.g
		g.mu.Lock()
		l.m.leader, l.m.joinGen = leader, gen
		l.m.joins++
		g.notifyLocked()
		g.mu.Unlock()
	}
	if l.inner != nil && level <= l.inner.Level() {
		l.inner.Log(level, msg, keyvals...)
	}
}

func ctxFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
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

// produce writes n keyed records (values "<tag>-<i>") and waits for every
// acknowledgement.
func produce(check, topic, tag string, n int) []produced {
	cl, err := kgo.NewClient(withLog("producer", kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		fail(check, "producer client: %v", err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range n {
		recs[i] = &kgo.Record{
			Key:   fmt.Appendf(nil, "key-%02d", i%numKeys),
			Value: fmt.Appendf(nil, "%s-%d", tag, i),
		}
	}
	ctx, cancel := ctxFor(waitLimit)
	defer cancel()
	var out []produced
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			fail(check, "produce %s: %v", r.Record.Value, r.Err)
		}
		out = append(out, produced{string(r.Record.Value), r.Record.Partition, r.Record.Offset})
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
	protocol string // expected balancer protocol name

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
	cl         *kgo.Client
	stop       context.CancelFunc
	done       chan struct{}

	// guarded by g.mu
	active     bool
	owned      map[int32]bool
	assigns    int     // OnPartitionsAssigned calls with partitions
	revokes    int     // OnPartitionsRevoked calls with partitions
	revoked    []int32 // every partition ever revoked
	lost       []int32 // every partition ever lost
	memberID   string  // from GroupMetadata at the last assignment
	generation int32
	leader     bool  // from the client's last "joined" log line
	joinGen    int32 // generation of that join
	joins      int   // successful JoinGroups
}

func (g *group) start(name string, balancer kgo.GroupBalancer, instanceID string) *member {
	m := &member{
		g:          g,
		name:       name,
		clientID:   "fg-groups-" + name,
		instanceID: instanceID,
		done:       make(chan struct{}),
		owned:      map[int32]bool{},
		active:     true,
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(m.clientID),
		kgo.ConsumerGroup(g.name),
		kgo.ConsumeTopics(g.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(balancer),
		kgo.HeartbeatInterval(heartbeatInterval),
		kgo.SessionTimeout(sessionTimeout),
		kgo.RebalanceTimeout(rebalanceTimeout),
		kgo.OnPartitionsAssigned(m.onAssigned),
		kgo.OnPartitionsRevoked(m.onRevoked),
		kgo.OnPartitionsLost(m.onLost),
	}
	if instanceID != "" {
		opts = append(opts, kgo.InstanceID(instanceID))
	}
	opts = append(opts, kgo.WithLogger(&joinLogger{m: m, inner: debugLogger(name)}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		fail("member-client", "%s: %v", name, err)
	}
	m.cl = cl
	g.mu.Lock()
	g.members = append(g.members, m)
	g.notifyLocked()
	g.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.run(ctx)
	return m
}

// run is the member's poll loop: poll, record, commit synchronously, then
// allow the rebalance that BlockRebalanceOnPoll held back.
func (m *member) run(ctx context.Context) {
	defer close(m.done)
	for {
		fs := m.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			m.cl.AllowRebalance()
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			m.g.addErr("%s: fetch %s/%d: %v", m.name, t, p, err)
		})
		recs := fs.Records()
		if len(recs) > 0 {
			m.g.record(m, recs)
			cctx, cancel := ctxFor(15 * time.Second)
			if err := m.cl.CommitRecords(cctx, recs...); err != nil {
				m.g.addErr("%s: CommitRecords (%d records): %v", m.name, len(recs), err)
			}
			cancel()
		}
		m.cl.AllowRebalance()
	}
}

func (g *group) record(m *member, recs []*kgo.Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range recs {
		if r.Topic != g.topic {
			g.errs = append(g.errs, fmt.Sprintf("%s: record from topic %q", m.name, r.Topic))
			continue
		}
		if !m.owned[r.Partition] {
			g.errs = append(g.errs, fmt.Sprintf("%s: consumed %s/%d@%d, a partition it does not own (owns %v)", m.name, r.Topic, r.Partition, r.Offset, sortedParts(m.owned)))
		}
		v := string(r.Value)
		g.seen[v] = append(g.seen[v], consumption{m.name, r.Partition, r.Offset})
	}
	g.notifyLocked()
}

func (m *member) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	memberID, gen := cl.GroupMetadata()
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	m.memberID, m.generation = memberID, gen
	if ps := assigned[g.topic]; len(ps) > 0 {
		m.assigns++
		for _, p := range ps {
			if m.owned[p] {
				g.errs = append(g.errs, fmt.Sprintf("%s: assigned partition %d it already owns", m.name, p))
			}
			m.owned[p] = true
		}
	}
	g.notifyLocked()
}

func (m *member) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	// With BlockRebalanceOnPoll and a commit after every poll nothing is
	// uncommitted here; commit anyway, as a manual committer should.
	if len(cl.UncommittedOffsets()) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := cl.CommitUncommittedOffsets(cctx); err != nil {
			m.g.addErr("%s: commit on revoke: %v", m.name, err)
		}
		cancel()
	}
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if ps := revoked[g.topic]; len(ps) > 0 {
		m.revokes++
		for _, p := range ps {
			delete(m.owned, p)
			m.revoked = append(m.revoked, p)
		}
	}
	g.notifyLocked()
}

func (m *member) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	g := m.g
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range lost[g.topic] {
		delete(m.owned, p)
		m.lost = append(m.lost, p)
	}
	g.notifyLocked()
}

// close stops the poll loop and closes the client. For a dynamic member
// Close sends LeaveGroup; for a static one (InstanceID) it does not.
func (m *member) close() time.Duration {
	m.stop()
	select {
	case <-m.done:
	case <-time.After(waitLimit):
		fail("member-close", "%s: poll loop did not stop within %s", m.name, waitLimit)
	}
	t0 := time.Now()
	closed := make(chan struct{})
	go func() { m.cl.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitLimit):
		fail("member-close", "%s: Close did not return within %s", m.name, waitLimit)
	}
	d := time.Since(t0)
	m.g.mu.Lock()
	m.active = false
	m.owned = map[int32]bool{}
	m.g.notifyLocked()
	m.g.mu.Unlock()
	return d
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

// balancedLocked: every partition owned by exactly one active member, and
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
				return false, fmt.Sprintf("partition %d owned by %s and %s (%s)", p, o, m.name, strings.Join(desc, " "))
			}
			owner[p] = m.name
		}
	}
	sort.Ints(counts)
	state := fmt.Sprintf("assignment %s", strings.Join(desc, " "))
	return len(owner) == numPartitions && slices.Equal(counts, want), state
}

// waitStable waits until the members' own view is balanced as want (sorted
// partition counts) and DescribeGroups/ListGroups agree with it (step 7).
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

// describeAgrees compares DescribeGroups and ListGroups with the active
// members' own view (member id, client id, instance id, assignment).
func (g *group) describeAgrees() (bool, string) {
	ctx, cancel := ctxFor(10 * time.Second)
	defer cancel()
	described, err := adm.DescribeGroups(ctx, g.name)
	if err != nil {
		return false, fmt.Sprintf("DescribeGroups: %v", err)
	}
	d, ok := described[g.name]
	if !ok {
		return false, "group missing from DescribeGroups"
	}
	if d.Err != nil {
		return false, fmt.Sprintf("DescribeGroups error: %v", d.Err)
	}
	if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != g.protocol {
		return false, fmt.Sprintf("state=%q protocolType=%q protocol=%q, want Stable/consumer/%s", d.State, d.ProtocolType, d.Protocol, g.protocol)
	}
	g.mu.Lock()
	active := g.activeLocked()
	byID := map[string]*member{}
	own := map[string][]int32{}
	for _, m := range active {
		id, _ := m.cl.GroupMetadata()
		byID[id] = m
		own[id] = sortedParts(m.owned)
	}
	g.mu.Unlock()
	if len(d.Members) != len(active) {
		return false, fmt.Sprintf("%d members described, %d active", len(d.Members), len(active))
	}
	for _, dm := range d.Members {
		m, ok := byID[dm.MemberID]
		if !ok {
			return false, fmt.Sprintf("described member %q is none of the active members' ids", dm.MemberID)
		}
		if dm.ClientID != m.clientID {
			return false, fmt.Sprintf("member %s: client id %q, want %q", m.name, dm.ClientID, m.clientID)
		}
		if dm.ClientHost == "" {
			return false, fmt.Sprintf("member %s: empty client host", m.name)
		}
		gotInst := ""
		if dm.InstanceID != nil {
			gotInst = *dm.InstanceID
		}
		if gotInst != m.instanceID {
			return false, fmt.Sprintf("member %s: instance id %q, want %q", m.name, gotInst, m.instanceID)
		}
		meta, ok := dm.Join.AsConsumer()
		if !ok || !slices.Equal(meta.Topics, []string{g.topic}) {
			return false, fmt.Sprintf("member %s: subscription metadata %+v, want topics [%s]", m.name, meta, g.topic)
		}
		asg, ok := dm.Assigned.AsConsumer()
		if !ok {
			return false, fmt.Sprintf("member %s: assignment is not a consumer assignment", m.name)
		}
		var got []int32
		for _, t := range asg.Topics {
			if t.Topic != g.topic {
				return false, fmt.Sprintf("member %s: assigned topic %q", m.name, t.Topic)
			}
			got = append(got, t.Partitions...)
		}
		slices.Sort(got)
		if !slices.Equal(got, own[dm.MemberID]) && !(len(got) == 0 && len(own[dm.MemberID]) == 0) {
			return false, fmt.Sprintf("member %s: described assignment %v, member owns %v", m.name, got, own[dm.MemberID])
		}
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return false, fmt.Sprintf("ListGroups: %v", err)
	}
	lg, ok := listed[g.name]
	if !ok {
		return false, "group missing from ListGroups"
	}
	if lg.ProtocolType != "consumer" || lg.State != "Stable" {
		return false, fmt.Sprintf("ListGroups: protocolType=%q state=%q, want consumer/Stable", lg.ProtocolType, lg.State)
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

// expectCommittedAtEnd polls FetchOffsets until the group's committed
// offset of every partition equals its end offset (ListEndOffsets).
func (g *group) expectCommittedAtEnd(check string) map[int32]int64 {
	deadline := time.Now().Add(waitLimit)
	for {
		ctx, cancel := ctxFor(10 * time.Second)
		ends, err := adm.ListEndOffsets(ctx, g.topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			cancel()
			fail(check, "ListEndOffsets: %v", err)
		}
		committed, err := adm.FetchOffsets(ctx, g.name)
		cancel()
		if err == nil {
			err = committed.Error()
		}
		if err != nil {
			fail(check, "FetchOffsets: %v", err)
		}
		var diffs []string
		got := map[int32]int64{}
		for p := range int32(numPartitions) {
			end, _ := ends.Lookup(g.topic, p)
			c, ok := committed.Lookup(g.topic, p)
			at := int64(-1)
			if ok {
				at = c.At
			}
			got[p] = at
			if at != end.Offset {
				diffs = append(diffs, fmt.Sprintf("p%d committed %d end %d", p, at, end.Offset))
			}
		}
		if len(diffs) == 0 {
			return got
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
		ctx, cancel := ctxFor(10 * time.Second)
		described, err := adm.DescribeGroups(ctx, g.name)
		if err != nil {
			fail(check, "DescribeGroups: %v", err)
		}
		d := described[g.name]
		listed, err := adm.ListGroups(ctx)
		cancel()
		if err != nil {
			fail(check, "ListGroups: %v", err)
		}
		lg, listedOK := listed[g.name]
		if d.Err == nil && d.State == state && len(d.Members) == members && listedOK && lg.State == state {
			return
		}
		if time.Now().After(deadline) {
			fail(check, "group %s: described state %q with %d members (err %v), listed %v %+v; want %s with %d members", g.name, d.State, len(d.Members), d.Err, listedOK, lg, state, members)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------

func createTopic(ctx context.Context, topic string) {
	created, err := adm.CreateTopic(ctx, numPartitions, 1, nil, topic)
	if err != nil {
		fail("create-topic", "CreateTopic(%s, %d partitions): %v", topic, numPartitions, err)
	}
	if created.NumPartitions != numPartitions {
		fail("create-topic", "%s: %d partitions, want %d", topic, created.NumPartitions, numPartitions)
	}
	// Kafka propagates metadata asynchronously: wait for the leaders.
	deadline := time.Now().Add(waitLimit)
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if td, ok := md.Topics[topic]; ok && td.Err == nil && len(td.Partitions) == numPartitions {
				ready := true
				for _, pd := range td.Partitions {
					if pd.Err != nil || pd.Leader < 0 {
						ready = false
					}
				}
				if ready {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			fail("create-topic", "%s: no leader for every partition after %s (%v)", topic, waitLimit, err)
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
	seeds = strings.Split(bootstrap, ",")
	run := time.Now().UnixNano()
	name := func(what string) string { return fmt.Sprintf("%sfgg-%s-%d", prefix, what, run) }
	mainTopic, coopTopic, staticTopic := name("main"), name("coop"), name("static")

	step("franz-go %s consumer groups against %s", version, bootstrap)

	adminCl, err := kgo.NewClient(withLog("admin", kgo.SeedBrokers(seeds...), kgo.ClientID("fg-groups-admin"))...)
	if err != nil {
		fail("admin-client", "%v", err)
	}
	defer adminCl.Close()
	adm = kadm.NewClient(adminCl)
	ctx, cancel := ctxFor(150 * time.Second)
	defer cancel()

	// 1. Topics and the first records.
	for _, t := range []string{mainTopic, coopTopic, staticTopic} {
		createTopic(ctx, t)
	}
	first := produce("produce", mainTopic, "main", mainRecords)
	perPart := map[int32]int{}
	for _, p := range first {
		perPart[p.partition]++
	}
	if len(perPart) != numPartitions {
		fail("produce", "%d keyed records landed on %d partitions, want all %d", mainRecords, len(perPart), numPartitions)
	}
	step("1. created 3 topics with %d partitions, produced %d keyed records to %s (per partition %v)", numPartitions, mainRecords, mainTopic, perPart)

	// 2. Three members, default balancer (cooperative-sticky).
	coop := kgo.CooperativeStickyBalancer()
	gm := newGroup(name("main"), mainTopic, coop.ProtocolName())
	t0 := time.Now()
	m1 := gm.start("m1", coop, "")
	m2 := gm.start("m2", coop, "")
	m3 := gm.start("m3", coop, "")
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
		gm.start(fmt.Sprintf("m%d", i), coop, "")
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
	gc := newGroup(name("coop"), coopTopic, coop.ProtocolName())
	c1 := gc.start("c1", kgo.CooperativeStickyBalancer(), "")
	c2 := gc.start("c2", kgo.CooperativeStickyBalancer(), "")
	gc.waitStable("coop-two-stable", []int{3, 3})
	gc.expectConsumed("coop-consume", produce("produce", coopTopic, "coop", batchRecords), nil)
	gc.expectCommittedAtEnd("coop-committed")
	gc.mu.Lock()
	before := map[*member][]int32{c1: sortedParts(c1.owned), c2: sortedParts(c2.owned)}
	revokesBefore := map[*member]int{c1: len(c1.revoked), c2: len(c2.revoked)}
	gc.mu.Unlock()
	t0 = time.Now()
	c3 := gc.start("c3", kgo.CooperativeStickyBalancer(), "")
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
		rev := m.revoked[revokesBefore[m]:]
		slices.Sort(rev)
		var lostHere []int32
		for _, p := range before[m] {
			if !slices.Contains(now, p) {
				lostHere = append(lostHere, p)
			}
		}
		if len(lostHere) != 1 || !slices.Equal(rev, lostHere) {
			fail("coop-sticky", "%s: had %v, now %v, revoked %v: want exactly one partition moved and only it revoked", m.name, before[m], now, rev)
		}
		if len(m.lost) > 0 {
			fail("coop-sticky", "%s lost partitions %v", m.name, m.lost)
		}
		moved = append(moved, fmt.Sprintf("%s %v->%v (revoked %v)", m.name, before[m], now, rev))
	}
	gc.mu.Unlock()
	step("5. cooperative-sticky: c3 joined, stable after %v; moved only %s; c3 got %v", took.Round(time.Millisecond), strings.Join(moved, ", "), partsOf(owners, c3))
	gc.expectConsumed("coop-consume-after", produce("produce", coopTopic, "coop-b2", batchRecords/2), owners)
	gc.expectCommittedAtEnd("coop-committed-after")
	closeAll(gc)
	gc.expectConsumed("coop-final-exactly-once", nil, nil)
	gc.expectState("coop-empty", "Empty", 0)

	// 6. Static membership. s-a joins first so it is the group leader;
	// the follower s-b is restarted first, then the leader.
	gs := newGroup(name("static"), staticTopic, coop.ProtocolName())
	sa := gs.start("s-a", coop, "static-a")
	gs.waitStable("static-one", []int{6})
	sb := gs.start("s-b", coop, "static-b")
	gs.waitStable("static-stable", []int{3, 3})
	gs.expectConsumed("static-consume", produce("produce", staticTopic, "static", batchRecords), nil)
	gs.expectCommittedAtEnd("static-committed")
	gs.mu.Lock()
	aLeader, bLeader := sa.leader, sb.leader
	gs.mu.Unlock()
	if !aLeader || bLeader {
		fail("static-leader", "s-a leader=%v s-b leader=%v: the first member should stay leader", aLeader, bLeader)
	}
	step("6. static members s-a (static-a, leader) and s-b (static-b) stable")
	sb = restartStatic(gs, sb, sa, coop)
	sa = restartStatic(gs, sa, sb, coop)
	// Closing static members sends no LeaveGroup: they stay members until
	// removed by instance id (KIP-345 admin LeaveGroup).
	sa.close()
	sb.close()
	gs.expectConsumed("static-final-exactly-once", nil, nil)
	gs.expectState("static-closed-still-members", "Stable", 2)
	lctx, lcancel := ctxFor(10 * time.Second)
	left, err := adm.LeaveGroup(lctx, kadm.LeaveGroup(gs.name).InstanceIDs("static-a", "static-b").Reason("compat test done"))
	lcancel()
	if err == nil {
		err = left.Error()
	}
	if err != nil || len(left) != 2 {
		fail("static-remove", "LeaveGroup by instance ids: %v (%d responses: %+v)", err, len(left), left)
	}
	gs.expectState("static-empty", "Empty", 0)
	step("6. both static members removed by instance id (LeaveGroup v3+): group Empty")

	// 7. OffsetDelete and DeleteGroups on the now empty groups.
	dctx, dcancel := ctxFor(10 * time.Second)
	defer dcancel()
	delOffs, err := adm.DeleteOffsets(dctx, gc.name, kadm.TopicsSet{coopTopic: {0: {}, 1: {}}})
	if err == nil {
		err = delOffs.Error()
	}
	if err != nil {
		fail("offset-delete", "DeleteOffsets(%s, %s 0,1): %v", gc.name, coopTopic, err)
	}
	fetched, err := adm.FetchOffsets(dctx, gc.name)
	if err != nil {
		fail("offset-delete", "FetchOffsets: %v", err)
	}
	for p := range int32(numPartitions) {
		o, ok := fetched.Lookup(coopTopic, p)
		deleted := !ok || o.At < 0
		if deleted != (p <= 1) {
			fail("offset-delete", "partition %d: committed %+v (present %v) after deleting partitions 0 and 1", p, o, ok)
		}
	}
	step("7. OffsetDelete removed the committed offsets of partitions 0 and 1 only")
	groups := []string{gm.name, gc.name, gs.name}
	deleted, err := adm.DeleteGroups(dctx, groups...)
	if err != nil {
		fail("delete-groups", "DeleteGroups: %v", err)
	}
	for _, gname := range groups {
		if r, ok := deleted[gname]; !ok || r.Err != nil {
			fail("delete-groups", "%s: %+v (present %v)", gname, r, ok)
		}
	}
	listed, err := adm.ListGroups(dctx)
	if err != nil {
		fail("delete-groups", "ListGroups: %v", err)
	}
	for _, gname := range groups {
		if _, ok := listed[gname]; ok {
			fail("delete-groups", "%s still listed after DeleteGroups", gname)
		}
	}
	fetched, err = adm.FetchOffsets(dctx, gm.name)
	if err == nil {
		err = fetched.Error()
	}
	if err != nil {
		fail("delete-groups", "FetchOffsets after delete: %v", err)
	}
	for _, ps := range fetched {
		for p, o := range ps {
			if o.At >= 0 {
				fail("delete-groups", "%s: partition %d still has committed offset %d after DeleteGroups", gm.name, p, o.At)
			}
		}
	}
	step("7. DeleteGroups removed the 3 groups and their offsets")

	fmt.Printf("RESULT franz-go-groups %s ok\n", version)
}

// restartStatic closes static member r without leaving, checks it is
// still a member, restarts it with the same instance id and checks it gets
// the same partitions back while `other` sees no revoke and no assignment.
//
// A restarted follower must get them in the same generation, with no
// rebalance at all (other's generation unchanged). A restarted leader is
// told by the coordinator that it is the leader but must not assign
// (KIP-814, JoinGroup v9 SkipAssignment); franz-go then balances anyway
// and rejoins on purpose when its own plan differs from the old
// assignment, so for the leader a new generation is allowed as long as
// nothing moves and nothing is revoked.
func restartStatic(g *group, r, other *member, bal kgo.GroupBalancer) *member {
	check := "static-rejoin-" + r.name
	g.mu.Lock()
	parts := sortedParts(r.owned)
	otherParts := sortedParts(other.owned)
	otherAssigns, otherRevokes, otherLost := other.assigns, other.revokes, len(other.lost)
	oldID, wasLeader := r.memberID, r.leader
	g.mu.Unlock()
	otherID, gen := other.cl.GroupMetadata()
	role := "follower"
	if wasLeader {
		role = "leader"
	}

	r.close()
	// No LeaveGroup: the group still has both members, stable.
	ctx, cancel := ctxFor(10 * time.Second)
	described, err := adm.DescribeGroups(ctx, g.name)
	cancel()
	if err != nil {
		fail(check, "DescribeGroups: %v", err)
	}
	d := described[g.name]
	ids := []string{}
	for _, dm := range d.Members {
		ids = append(ids, dm.MemberID)
	}
	if d.State != "Stable" || len(d.Members) != 2 || !slices.Contains(ids, oldID) {
		fail(check, "after closing static %s: state %q members %v, want Stable with its member id %s still there (static members do not leave on close)", r.name, d.State, ids, oldID)
	}
	// Records for its partitions while it is away.
	batch := produce("produce", g.topic, "static-"+r.name+"-away", batchRecords/2)

	t0 := time.Now()
	nr := g.start(r.name, bal, r.instanceID)
	g.waitFor(check, waitLimit, func() (bool, string) {
		return slices.Equal(sortedParts(nr.owned), parts), fmt.Sprintf("%s owns %v, want %v", nr.name, sortedParts(nr.owned), parts)
	})
	took := time.Since(t0)
	owners := g.waitStable(check, []int{3, 3})
	g.expectConsumed(check+"-consume", batch, owners)
	g.expectCommittedAtEnd(check + "-committed")

	g.mu.Lock()
	defer g.mu.Unlock()
	if other.assigns != otherAssigns || other.revokes != otherRevokes || len(other.lost) != otherLost || !slices.Equal(sortedParts(other.owned), otherParts) {
		fail(check, "%s saw a rebalance: assigns %d->%d revokes %d->%d lost %d->%d owned %v->%v", other.name, otherAssigns, other.assigns, otherRevokes, other.revokes, otherLost, len(other.lost), otherParts, sortedParts(other.owned))
	}
	if nr.memberID == oldID {
		fail(check, "restarted %s kept member id %s; the coordinator should hand a new one", nr.name, oldID)
	}
	if nr.leader != wasLeader {
		fail(check, "restarted %s: leader=%v, it was leader=%v before (a static rejoin keeps the role)", nr.name, nr.leader, wasLeader)
	}
	id, ngen := other.cl.GroupMetadata()
	if id != otherID {
		fail(check, "%s: member id %s -> %s, want unchanged", other.name, otherID, id)
	}
	if !wasLeader {
		if ngen != gen {
			fail(check, "%s: generation %d -> %d: the static follower's rejoin caused a rebalance", other.name, gen, ngen)
		}
		if nr.joinGen != gen || nr.joins != 1 {
			fail(check, "restarted %s joined %d time(s), last in generation %d, want once in the unchanged %d", nr.name, nr.joins, nr.joinGen, gen)
		}
	}
	step("6. static %s (%s) restarted: same partitions %v back after %v (static rejoin), generation %d -> %d (joins %d), %s saw no revoke/assign; %d records consumed once",
		r.name, role, parts, took.Round(time.Millisecond), gen, ngen, nr.joins, other.name, len(batch))
	fmt.Printf("TIMING static-rejoin-%s %dms\n", role, took.Milliseconds())
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
