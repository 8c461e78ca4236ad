// Transactions scenario for IBM/sarama, written the way a sarama user
// would: transactional SyncProducers (Producer.Transaction.ID, Idempotent,
// Net.MaxOpenRequests=1, acks=all) with BeginTxn / CommitTxn / AbortTxn, a
// consume-transform-produce loop in a sarama.ConsumerGroup that hands the
// consumed offsets to the transaction with AddMessageToTxn (the
// sendOffsetsToTransaction of sarama), and sarama Consumers with
// Consumer.IsolationLevel ReadCommitted / ReadUncommitted.
//
// Usage: scenario BOOTSTRAP TOPIC_PREFIX
//
// Steps:
//
//  1. producers P and Q (transactional ids) and an idempotent plain
//     producer write to one 3-partition topic, transactions interleaved on
//     every partition: P commits while Q is open and Q aborts, then the
//     other way round, then one after the other; a new producer with P's
//     transactional id fences P (P's CommitTxn fails, its records are
//     aborted);
//  2. a read_committed consumer sees exactly the committed and plain
//     records, a read_uncommitted one every record, each at the partition
//     and offset its produce was acknowledged at;
//  3. a consumer group (read_committed, auto-commit off) turns an input
//     topic of N records into an output topic, one transaction per batch
//     with the batch's offsets added by AddMessageToTxn (group id only on
//     odd rounds, with the session's generation and member id on even
//     ones); one round is aborted, the session restarted from the
//     committed offsets and the round redone; at the end read_committed
//     sees exactly N output records, one per input, read_uncommitted also
//     the aborted round's, and the group's committed offsets equal the
//     input's end offsets.
//
// Every failed check prints "FAIL <check>: <detail>" and exits 1; success
// prints "RESULT sarama-txn <version> ok" as the last line.
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
	numPartitions = 3
	txnRecords    = 30 // records per transaction in step 1 (10 per partition)
	etlInputs     = 300
	etlBatchMax   = 25 // records per consume-transform-produce transaction
	etlAbortRound = 3  // the round that is aborted (1-based)

	waitLimit = 30 * time.Second // any single awaited condition
)

// kafkaVersion is the protocol level sarama is told the cluster speaks, as
// in ../sarama and ../sarama-groups.
var kafkaVersion = sarama.V4_0_0_0

var (
	addrs   []string
	admin   sarama.ClusterAdmin
	client  sarama.Client
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
	// Every record names its partition, so each transaction covers all.
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	return cfg
}

// bounded runs a client call that can retry for long (sarama retries
// FindCoordinator and InitProducerId well past any useful time when the
// broker has no transaction coordinator) and fails the check after
// waitLimit instead of hanging.
func bounded[T any](check, what string, fn func() T) T {
	ch := make(chan T, 1)
	go func() { ch <- fn() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		fail(check, "%s did not return within %s (SCENARIO_DEBUG=1 shows the client log)", what, waitLimit)
		panic("unreachable")
	}
}

// newProducer is an idempotent SyncProducer; transactional when txnID is
// set. Idempotence needs one request in flight per connection.
func newProducer(check, name, txnID string) sarama.SyncProducer {
	cfg := newConfig("sarama-txn-" + name)
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	if txnID != "" {
		cfg.Producer.Transaction.ID = txnID
		cfg.Producer.Transaction.Timeout = 60 * time.Second
	}
	type res struct {
		p   sarama.SyncProducer
		err error
	}
	r := bounded(check, fmt.Sprintf("NewSyncProducer(%s) (FindCoordinator, InitProducerId)", name), func() res {
		p, err := sarama.NewSyncProducer(addrs, cfg)
		return res{p, err}
	})
	p, err := r.p, r.err
	if err != nil {
		fail(check, "NewSyncProducer(%s, transactional id %q): %v", name, txnID, err)
	}
	return p
}

// rec is one produced or consumed record.
type rec struct {
	value     string
	partition int32
	offset    int64
}

func (r rec) String() string { return fmt.Sprintf("%s@%d/%d", r.value, r.partition, r.offset) }

func sortRecs(rs []rec) []rec {
	out := slices.Clone(rs)
	sort.Slice(out, func(i, j int) bool {
		if out[i].partition != out[j].partition {
			return out[i].partition < out[j].partition
		}
		return out[i].offset < out[j].offset
	})
	return out
}

// expectSame fails unless got and want hold the same records (value,
// partition and offset), listing the differences.
func expectSame(check string, got, want []rec) {
	g, w := sortRecs(got), sortRecs(want)
	if slices.Equal(g, w) {
		return
	}
	inW := map[rec]bool{}
	for _, r := range w {
		inW[r] = true
	}
	inG := map[rec]int{}
	var extra, missing []string
	for _, r := range g {
		inG[r]++
		if !inW[r] || inG[r] > 1 {
			extra = append(extra, r.String())
		}
	}
	for _, r := range w {
		if inG[r] == 0 {
			missing = append(missing, r.String())
		}
	}
	fail(check, "got %d records, want %d; unexpected/duplicate %d %s; missing %d %s",
		len(g), len(w), len(extra), head(extra), len(missing), head(missing))
}

func head(s []string) string {
	if len(s) > 8 {
		return fmt.Sprintf("%v ...", s[:8])
	}
	return fmt.Sprint(s)
}

// send writes n records "<tag>-<i>" round robin over the partitions and
// waits for every acknowledgement.
func send(check string, p sarama.SyncProducer, topic, tag string, n int) []rec {
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range n {
		msgs[i] = &sarama.ProducerMessage{
			Topic:     topic,
			Key:       sarama.StringEncoder(fmt.Sprintf("%s-key-%d", tag, i%numPartitions)),
			Value:     sarama.StringEncoder(fmt.Sprintf("%s-%d", tag, i)),
			Partition: int32(i % numPartitions),
		}
	}
	if err := bounded(check, "SendMessages", func() error { return p.SendMessages(msgs) }); err != nil {
		fail(check, "SendMessages(%d %s records): %v", n, tag, err)
	}
	out := make([]rec, n)
	for i, m := range msgs {
		out[i] = rec{fmt.Sprintf("%s-%d", tag, i), m.Partition, m.Offset}
	}
	return out
}

func beginTxn(check string, p sarama.SyncProducer) {
	if err := p.BeginTxn(); err != nil {
		fail(check, "BeginTxn: %v", err)
	}
	if st := p.TxnStatus(); st&sarama.ProducerTxnFlagInTransaction == 0 {
		fail(check, "after BeginTxn the status is %v, want InTransaction", st)
	}
}

func commitTxn(check string, p sarama.SyncProducer) {
	if err := bounded(check, "CommitTxn", p.CommitTxn); err != nil {
		fail(check, "CommitTxn: %v", err)
	}
	if st := p.TxnStatus(); st != sarama.ProducerTxnFlagReady {
		fail(check, "after CommitTxn the status is %v, want Ready", st)
	}
}

func abortTxn(check string, p sarama.SyncProducer) {
	if err := bounded(check, "AbortTxn", p.AbortTxn); err != nil {
		fail(check, "AbortTxn: %v", err)
	}
	if st := p.TxnStatus(); st != sarama.ProducerTxnFlagReady {
		fail(check, "after AbortTxn the status is %v, want Ready", st)
	}
}

// consumeAll reads every partition of topic from the oldest offset at the
// given isolation level until the committed sentinel "<topic>-end" record
// of every partition arrived (records come in offset order per partition,
// so nothing before it is still to come). Returns the records before the
// sentinels.
func consumeAll(check, topic string, level sarama.IsolationLevel) []rec {
	cfg := newConfig("sarama-txn-consumer")
	cfg.Consumer.IsolationLevel = level
	consumer, err := sarama.NewConsumer(addrs, cfg)
	if err != nil {
		fail(check, "NewConsumer: %v", err)
	}
	defer consumer.Close()
	type msgOrErr struct {
		m   *sarama.ConsumerMessage
		err error
	}
	ch := make(chan msgOrErr)
	done := make(chan struct{})
	defer close(done)
	for p := range int32(numPartitions) {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail(check, "ConsumePartition(%s, %d): %v", topic, p, err)
		}
		defer pc.AsyncClose()
		go func() {
			for {
				var v msgOrErr
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					v.m = m
				case e, ok := <-pc.Errors():
					if !ok {
						return
					}
					v.err = e
				case <-done:
					return
				}
				select {
				case ch <- v:
				case <-done:
					return
				}
			}
		}()
	}
	sentinel := topic + "-end-"
	timeout := time.NewTimer(waitLimit)
	defer timeout.Stop()
	var out []rec
	ended := map[int32]bool{}
	for len(ended) < numPartitions {
		select {
		case v := <-ch:
			if v.err != nil {
				fail(check, "consume %s: %v", topic, v.err)
			}
			m := v.m
			val := string(m.Value)
			if ended[m.Partition] {
				fail(check, "%s@%d/%d after the sentinel", val, m.Partition, m.Offset)
			}
			if strings.HasPrefix(val, sentinel) {
				ended[m.Partition] = true
				continue
			}
			out = append(out, rec{val, m.Partition, m.Offset})
		case <-timeout.C:
			fail(check, "sentinels of %d of %d partitions not consumed within %s (%d records so far)", len(ended), numPartitions, waitLimit, len(out))
		}
	}
	return out
}

// endTopic commits one sentinel record per partition in a transaction of
// its own, for consumeAll.
func endTopic(check, topic, txnID string) {
	p := newProducer(check, "end", txnID)
	defer p.Close()
	beginTxn(check, p)
	send(check, p, topic, topic+"-end", numPartitions)
	commitTxn(check, p)
}

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

// ---------------------------------------------------------------------------
// Steps 1 and 2: interleaved transactions.

func interleaved(topic, idPrefix string) {
	check := "txn-interleaved"
	txnP, txnQ := idPrefix+"sgt-p", idPrefix+"sgt-q"
	p := newProducer(check, "p", txnP)
	q := newProducer(check, "q", txnQ)
	defer q.Close()
	plain := newProducer(check, "plain", "")
	defer plain.Close()
	if !p.IsTransactional() || !q.IsTransactional() || plain.IsTransactional() {
		fail(check, "IsTransactional: p %v q %v plain %v", p.IsTransactional(), q.IsTransactional(), plain.IsTransactional())
	}
	var committed, aborted []rec

	// Round 1: both open on every partition, plain records after them;
	// P commits while Q is open, then Q aborts.
	beginTxn(check, p)
	beginTxn(check, q)
	committed = append(committed, send(check, p, topic, "p1", txnRecords)...)
	aborted = append(aborted, send(check, q, topic, "q1", txnRecords)...)
	committed = append(committed, send(check, plain, topic, "plain1", 9)...)
	commitTxn(check, p)
	abortTxn(check, q)
	// Round 2: the other way round.
	beginTxn(check, q)
	beginTxn(check, p)
	committed = append(committed, send(check, q, topic, "q2", txnRecords)...)
	aborted = append(aborted, send(check, p, topic, "p2", txnRecords)...)
	commitTxn(check, q)
	abortTxn(check, p)
	// Round 3: one after the other.
	beginTxn(check, p)
	committed = append(committed, send(check, p, topic, "p3", txnRecords)...)
	commitTxn(check, p)
	beginTxn(check, q)
	aborted = append(aborted, send(check, q, topic, "q3", txnRecords)...)
	abortTxn(check, q)
	committed = append(committed, send(check, plain, topic, "plain2", 6)...)
	step("1. P committed while Q was open, Q aborted; then Q committed and P aborted; then one after the other")

	// Zombie fencing: a new producer with P's transactional id (its
	// InitProducerId bumps the epoch) aborts P's open transaction, and P
	// can no longer commit.
	beginTxn(check, p)
	aborted = append(aborted, send(check, p, topic, "zombie", txnRecords)...)
	p2 := newProducer(check, "p-new", txnP)
	defer p2.Close()
	err := bounded("fencing", "the fenced producer's CommitTxn", p.CommitTxn)
	if err == nil {
		fail("fencing", "the old producer of %s committed after a new one initialised the transactional id", txnP)
	}
	if !errors.Is(err, sarama.ErrProducerFenced) && !errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		fail("fencing", "old producer's CommitTxn: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if st := p.TxnStatus(); st&sarama.ProducerTxnFlagFatalError == 0 {
		fail("fencing", "old producer's status after being fenced: %v, want FatalError", st)
	}
	p.Close()
	var kerr sarama.KError
	errors.As(err, &kerr)
	step("1. a new producer with transactional id %s fenced the old one: CommitTxn failed with error code %d (%v)", txnP, int16(kerr), err)
	// The new producer works.
	beginTxn(check, p2)
	committed = append(committed, send(check, p2, topic, "p4", txnRecords)...)
	commitTxn(check, p2)

	endTopic(check, topic, idPrefix+"sgt-end")
	got := consumeAll("read-committed", topic, sarama.ReadCommitted)
	expectSame("read-committed", got, committed)
	step("2. read_committed: exactly the %d committed and plain records, none of the %d aborted", len(got), len(aborted))
	got = consumeAll("read-uncommitted", topic, sarama.ReadUncommitted)
	expectSame("read-uncommitted", got, append(slices.Clone(committed), aborted...))
	step("2. read_uncommitted: all %d records, each at its acknowledged partition and offset", len(got))
}

// ---------------------------------------------------------------------------
// Step 3: consume-transform-produce in a consumer group.

type etl struct {
	group    string
	output   string
	producer sarama.SyncProducer

	mu          sync.Mutex // one transaction at a time across the claims
	rounds      int
	committedIn map[string]int
	committed   []string // output values committed
	aborted     []string // output values aborted
	offsets     map[int32]int64
	cancel      context.CancelFunc // ends the current session
	restart     bool               // the session was ended by the abort
	done        bool
}

func (e *etl) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (e *etl) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (e *etl) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, m)
		case <-sess.Context().Done():
			return nil
		}
		// Take what is already buffered, up to the batch size.
	drain:
		for len(batch) < etlBatchMax {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if !e.transact(sess, batch) {
			return nil
		}
	}
}

// transact runs one transaction for batch; false when the session is over.
func (e *etl) transact(sess sarama.ConsumerGroupSession, batch []*sarama.ConsumerMessage) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	// After the abort (or the end) the other claims' batches are left for
	// the next session, which starts from the committed offsets.
	if sess.Context().Err() != nil || e.done {
		return false
	}
	check := "etl"
	e.rounds++
	round := e.rounds
	abort := round == etlAbortRound
	beginTxn(check, e.producer)
	out := make([]*sarama.ProducerMessage, len(batch))
	var values []string
	for i, m := range batch {
		out[i] = &sarama.ProducerMessage{
			Topic:     e.output,
			Key:       sarama.ByteEncoder(m.Key),
			Value:     sarama.StringEncoder("out-" + string(m.Value)),
			Partition: m.Partition,
			Headers:   []sarama.RecordHeader{{Key: []byte("src"), Value: fmt.Appendf(nil, "%d/%d", m.Partition, m.Offset)}},
		}
		values = append(values, string(m.Value))
	}
	if err := bounded(check, "SendMessages", func() error { return e.producer.SendMessages(out) }); err != nil {
		fail(check, "round %d: SendMessages(%d): %v", round, len(out), err)
	}
	// Odd rounds: the group id only (TxnOffsetCommit with generation -1
	// and no member id, which Kafka accepts while the group is Stable);
	// even rounds: the session's generation and member id (KIP-447).
	for _, m := range batch {
		var err error
		if round%2 == 1 {
			err = e.producer.AddMessageToTxn(m, e.group, nil)
		} else {
			err = e.producer.AddMessageToTxnWithGroupMetadata(m, sarama.NewConsumerGroupMetadataFromSession(sess, e.group, nil), nil)
		}
		if err != nil {
			fail(check, "round %d: AddMessageToTxn(%s/%d@%d): %v", round, m.Topic, m.Partition, m.Offset, err)
		}
	}
	if abort {
		abortTxn(check, e.producer)
		for _, v := range values {
			e.aborted = append(e.aborted, "out-"+v)
		}
		// Start over from the committed offsets, as a sarama user must:
		// the claims' consumers have moved past the aborted records.
		e.restart = true
		e.cancel()
		return false
	}
	how := "AddMessageToTxn with group id only"
	if round%2 == 0 {
		how = fmt.Sprintf("AddMessageToTxnWithGroupMetadata generation %d member %s", sess.GenerationID(), sess.MemberID())
	}
	commitTxn(fmt.Sprintf("%s-round-%d (%d records, %s)", check, round, len(batch), how), e.producer)
	for i, v := range values {
		e.committedIn[v]++
		if e.committedIn[v] > 1 {
			fail(check+"-exactly-once", "input %s committed in a second transaction (round %d)", v, round)
		}
		e.committed = append(e.committed, "out-"+v)
		m := batch[i]
		e.offsets[m.Partition] = max(e.offsets[m.Partition], m.Offset+1)
	}
	if len(e.committedIn) == etlInputs {
		e.done = true
		e.cancel()
		return false
	}
	return true
}

func runETL(input, output, group, idPrefix string) {
	check := "etl"
	plain := newProducer(check, "etl-input", "")
	inputs := send(check, plain, input, "in", etlInputs)
	plain.Close()
	inputEnd := map[int32]int64{}
	for _, r := range inputs {
		inputEnd[r.partition] = max(inputEnd[r.partition], r.offset+1)
	}

	cfg := newConfig("sarama-txn-etl")
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cg, err := sarama.NewConsumerGroup(addrs, group, cfg)
	if err != nil {
		fail(check, "NewConsumerGroup: %v", err)
	}
	defer cg.Close()
	go func() {
		for err := range cg.Errors() {
			fail(check, "consumer group error: %v", err)
		}
	}()
	e := &etl{
		group:       group,
		output:      output,
		producer:    newProducer(check, "etl", idPrefix+"sgt-etl"),
		committedIn: map[string]int{},
		offsets:     map[int32]int64{},
	}
	defer e.producer.Close()

	sessions := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		e.mu.Lock()
		e.cancel = cancel
		e.mu.Unlock()
		sessions++
		err := cg.Consume(ctx, []string{input}, e)
		cancel()
		if err != nil {
			fail(check, "Consume (session %d): %v", sessions, err)
		}
		e.mu.Lock()
		done, restart := e.done, e.restart
		e.restart = false
		committedNow := len(e.committedIn)
		offsets := maps(e.offsets)
		e.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			fail(check, "%d of %d inputs committed after %d sessions and %d rounds", committedNow, etlInputs, sessions, e.rounds)
		}
		if restart {
			// The aborted round's offsets were never committed.
			expectGroupOffsets("etl-offsets-after-abort", group, input, offsets)
			step("3. round %d aborted (%d records): group offsets still %v; restarting the session", etlAbortRound, len(e.aborted), offsets)
		}
	}
	if e.rounds <= etlAbortRound {
		fail(check, "only %d rounds: the abort round %d never happened", e.rounds, etlAbortRound)
	}
	step("3. consumer group: %d inputs in %d transactions over %d sessions, round %d (%d records) aborted and redone",
		etlInputs, e.rounds, sessions, etlAbortRound, len(e.aborted))

	expectGroupOffsets("etl-group-offsets", group, input, inputEnd)
	step("3. the group's committed offsets equal the input end offsets %v", inputEnd)

	endTopic(check, output, idPrefix+"sgt-etl-end")
	checkOutput("etl-read-committed", output, sarama.ReadCommitted, e.committed, inputs)
	step("3. read_committed output: exactly %d records, one per input, each on its input's partition", etlInputs)
	checkOutput("etl-read-uncommitted", output, sarama.ReadUncommitted, append(slices.Clone(e.committed), e.aborted...), inputs)
	step("3. read_uncommitted output: %d records (%d of them from the aborted round)", len(e.committed)+len(e.aborted), len(e.aborted))
}

func maps(m map[int32]int64) map[int32]int64 {
	out := map[int32]int64{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkOutput consumes the output topic and checks the multiset of values
// and that each output record is on its input's partition.
func checkOutput(check, output string, level sarama.IsolationLevel, want []string, inputs []rec) {
	inPart := map[string]int32{}
	for _, r := range inputs {
		inPart["out-"+r.value] = r.partition
	}
	got := consumeAll(check, output, level)
	var values []string
	for _, r := range got {
		values = append(values, r.value)
		if p, ok := inPart[r.value]; !ok || p != r.partition {
			fail(check, "%s on partition %d, its input was on %d (known %v)", r.value, r.partition, p, ok)
		}
	}
	slices.Sort(values)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(values, w) {
		fail(check, "%d output records, want %d (first got %v, first want %v)", len(values), len(w), values[:min(5, len(values))], w[:min(5, len(w))])
	}
	if len(values) != len(want) {
		fail(check, "%d output records, want %d", len(values), len(want))
	}
}

// expectGroupOffsets polls ListConsumerGroupOffsets until the group's
// committed offsets of topic are exactly want (absent = none); the
// transaction markers that make them visible are written asynchronously.
func expectGroupOffsets(check, group, topic string, want map[int32]int64) {
	deadline := time.Now().Add(waitLimit)
	for {
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
		var state []string
		ok := err == nil
		if err == nil && !errors.Is(resp.Err, sarama.ErrNoError) {
			err, ok = resp.Err, false
		}
		if ok {
			for p := range int32(numPartitions) {
				at := int64(-1)
				if b := resp.GetBlock(topic, p); b != nil {
					if !errors.Is(b.Err, sarama.ErrNoError) {
						ok = false
						state = append(state, fmt.Sprintf("p%d error %v", p, b.Err))
						continue
					}
					at = b.Offset
				}
				w, has := want[p]
				if !has {
					w = -1
				}
				if at != w {
					ok = false
				}
				state = append(state, fmt.Sprintf("p%d %d (want %d)", p, at, w))
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			fail(check, "group %s offsets of %s not reached within %s (err %v): %s", group, topic, waitLimit, err, strings.Join(state, ", "))
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
	name := func(what string) string { return fmt.Sprintf("%ssgt-%s-%d", prefix, what, run) }
	idPrefix := fmt.Sprintf("%s%d-", prefix, run)
	step("sarama %s (protocol %s) transactions against %s", version, kafkaVersion, bootstrap)

	var err error
	client, err = sarama.NewClient(addrs, newConfig("sarama-txn-admin"))
	if err != nil {
		fail("client", "%v", err)
	}
	defer client.Close()
	admin, err = sarama.NewClusterAdminFromClient(client)
	if err != nil {
		fail("admin-client", "%v", err)
	}
	txnTopic, input, output := name("txn"), name("in"), name("out")
	for _, t := range []string{txnTopic, input, output} {
		createTopic(t)
	}
	step("created 3 topics with %d partitions", numPartitions)

	interleaved(txnTopic, idPrefix)
	runETL(input, output, name("etl"), idPrefix)

	fmt.Printf("RESULT sarama-txn %s ok\n", version)
}
