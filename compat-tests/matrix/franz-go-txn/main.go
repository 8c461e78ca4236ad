// Transactions scenario for franz-go (kgo + kadm), written the way a
// franz-go user would: transactional kgo.Clients (kgo.TransactionalID) with
// BeginTransaction / EndTransaction, a kgo.GroupTransactSession for
// consume-transform-produce, and kadm for the transaction admin APIs.
//
// Usage: scenario BOOTSTRAP TOPIC_PREFIX
//
// Steps:
//
//  1. producers A and B (transactional ids) and a plain producer write to
//     one 3-partition topic with transactions interleaved on every
//     partition: A commits while B is still open, then B aborts; the other
//     way round; sequential rounds; while transactions are open the last
//     stable offset (ListOffsets read_committed) stops at the first open
//     transaction's first record and DescribeTransactions, ListTransactions
//     and DescribeProducers show them; a new client with A's transactional
//     id fences A (A's EndTransaction fails, its records are aborted);
//  2. a read_committed consumer sees exactly the committed and plain
//     records, a read_uncommitted one every record, each at the partition
//     and offset its produce was acknowledged at;
//  3. a GroupTransactSession in a consumer group turns an input topic of N
//     records into an output topic, one transaction per poll, one round
//     aborted (TryAbort) in the middle and redone; at the end
//     read_committed sees exactly N output records, one per input,
//     read_uncommitted also the aborted round's, and the group's committed
//     offsets equal the input's end offsets;
//  4. the same with two sessions: m1 alone commits the first half of the
//     input; with the second half produced, m1 holds a transaction open
//     while m2 joins the group, and once the cooperative rebalance revoked
//     one of m1's partitions m1's End(TryCommit) must abort instead; both
//     then finish the input: every input committed exactly once, m2 on the
//     partition it took over, group offsets = end offsets, read_committed
//     output exactly one record per input, read_uncommitted also every
//     aborted transaction's.
//
// Every failed check prints "FAIL <check>: <detail>" and exits 1; success
// prints "RESULT franz-go-txn <version> ok" as the last line.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	numPartitions = 3
	txnRecords    = 30 // records per transaction in step 1 (10 per partition)
	etlInputs     = 300
	etlPollMax    = 40 // records per consume-transform-produce transaction
	etlAbortRound = 3  // the round that is aborted (1-based, counting non-empty polls)

	waitLimit = 30 * time.Second // any single awaited condition
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
	v := os.Getenv("SCENARIO_DEBUG")
	if v == "" {
		return opts
	}
	level := kgo.LogLevelDebug
	if v == "info" {
		level = kgo.LogLevelInfo
	}
	return append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, func() string {
		return time.Now().Format("15:04:05.000 ") + prefix + " "
	})))
}

func ctxFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// waitUntil re-evaluates cond until it holds; the state it describes is on
// the broker (offsets, transaction states) and announces no event.
func waitUntil(check string, cond func() (bool, string)) {
	deadline := time.Now().Add(waitLimit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			fail(check, "not reached within %s: %s", waitLimit, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

func newClient(check, name string, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(withLog(name, append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("fg-txn-" + name)}, opts...)...)...)
	if err != nil {
		fail(check, "client %s: %v", name, err)
	}
	return cl
}

// newTxnProducer is a transactional producer that places every record on
// the partition it names (kgo.ManualPartitioner), so each transaction
// covers every partition.
func newTxnProducer(check, name, txnID, topic string) *kgo.Client {
	return newClient(check, name,
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(60*time.Second),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
}

// produce writes n records "<tag>-<i>" round robin over the partitions and
// waits for every acknowledgement (inside the client's open transaction,
// when it has one).
func produce(check string, cl *kgo.Client, tag string, n int) []rec {
	recs := make([]*kgo.Record, n)
	for i := range n {
		recs[i] = &kgo.Record{
			Key:       fmt.Appendf(nil, "%s-key-%d", tag, i%numPartitions),
			Value:     fmt.Appendf(nil, "%s-%d", tag, i),
			Partition: int32(i % numPartitions),
		}
	}
	ctx, cancel := ctxFor(waitLimit)
	defer cancel()
	var out []rec
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			fail(check, "produce %s: %v", r.Record.Value, r.Err)
		}
		out = append(out, rec{string(r.Record.Value), r.Record.Partition, r.Record.Offset})
	}
	return out
}

func begin(check string, cl *kgo.Client) {
	if err := cl.BeginTransaction(); err != nil {
		fail(check, "BeginTransaction: %v", err)
	}
}

func end(check string, cl *kgo.Client, how kgo.TransactionEndTry) {
	ctx, cancel := ctxFor(waitLimit)
	defer cancel()
	if err := cl.EndTransaction(ctx, how); err != nil {
		fail(check, "EndTransaction(%s): %v", tryName(how), err)
	}
}

func tryName(how kgo.TransactionEndTry) string {
	if how == kgo.TryCommit {
		return "TryCommit"
	}
	return "TryAbort"
}

func producerID(check string, cl *kgo.Client) int64 {
	ctx, cancel := ctxFor(waitLimit)
	defer cancel()
	id, _, err := cl.ProducerID(ctx)
	if err != nil {
		fail(check, "ProducerID: %v", err)
	}
	return id
}

// firstPerPartition: the lowest offset of rs on every partition.
func firstPerPartition(rs []rec) map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range rs {
		if o, ok := out[r.partition]; !ok || r.offset < o {
			out[r.partition] = r.offset
		}
	}
	return out
}

// expectOffsets waits until the last stable offset (ListOffsets with
// read_committed) and the high watermark of every partition are lso and
// hw.
func expectOffsets(check, topic string, lso, hw map[int32]int64) {
	waitUntil(check, func() (bool, string) {
		ctx, cancel := ctxFor(10 * time.Second)
		defer cancel()
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			err = stable.Error()
		}
		if err != nil {
			return false, fmt.Sprintf("ListCommittedOffsets: %v", err)
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			return false, fmt.Sprintf("ListEndOffsets: %v", err)
		}
		ok := true
		var state []string
		for p := range int32(numPartitions) {
			s, _ := stable.Lookup(topic, p)
			e, _ := ends.Lookup(topic, p)
			if s.Offset != lso[p] || e.Offset != hw[p] {
				ok = false
			}
			state = append(state, fmt.Sprintf("p%d lso %d (want %d) hw %d (want %d)", p, s.Offset, lso[p], e.Offset, hw[p]))
		}
		return ok, strings.Join(state, ", ")
	})
}

// expectTxnState waits until DescribeTransactions reports state for txnID
// with producer id pid, and (for Ongoing) the topic's partitions.
func expectTxnState(check, txnID string, pid int64, state, topic string) {
	waitUntil(check, func() (bool, string) {
		ctx, cancel := ctxFor(10 * time.Second)
		defer cancel()
		described, err := adm.DescribeTransactions(ctx, txnID)
		if err != nil {
			return false, fmt.Sprintf("DescribeTransactions: %v", err)
		}
		d, ok := described[txnID]
		if !ok {
			return false, "transactional id missing from DescribeTransactions"
		}
		if d.Err != nil {
			return false, fmt.Sprintf("DescribeTransactions error: %v", d.Err)
		}
		var parts []int32
		for p := range d.Topics[topic] {
			parts = append(parts, p)
		}
		slices.Sort(parts)
		wantParts := []int32{}
		if state == "Ongoing" {
			wantParts = []int32{0, 1, 2}
		}
		if parts == nil {
			parts = []int32{}
		}
		got := fmt.Sprintf("state %s producer id %d partitions of %s %v (topics %v)", d.State, d.ProducerID, topic, parts, d.Topics)
		return d.State == state && d.ProducerID == pid && slices.Equal(parts, wantParts), got + fmt.Sprintf("; want %s, %d, %v", state, pid, wantParts)
	})
}

// consumeAll reads every partition of topic from offset 0 (no group) at the
// given isolation level until the committed sentinel "<topic>-end" record
// of every partition arrived: records are delivered in offset order per
// partition, so nothing before it is still to come. Returns the records
// before the sentinels and checks the sentinels are the last ones.
func consumeAll(check, topic string, level kgo.IsolationLevel, sentinel string) []rec {
	parts := map[int32]kgo.Offset{}
	for p := range int32(numPartitions) {
		parts[p] = kgo.NewOffset().At(0)
	}
	cl := newClient(check, "consumer",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(level),
	)
	defer cl.Close()
	ctx, cancel := ctxFor(waitLimit)
	defer cancel()
	var out []rec
	ended := map[int32]bool{}
	for len(ended) < numPartitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			fail(check, "sentinels of %d of %d partitions not consumed within %s (%d records so far)", len(ended), numPartitions, waitLimit, len(out))
		}
		fs.EachError(func(t string, p int32, err error) {
			fail(check, "fetch %s/%d: %v", t, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if ended[r.Partition] {
				fail(check, "%s@%d/%d after the sentinel", v, r.Partition, r.Offset)
			}
			if strings.HasPrefix(v, sentinel+"-") {
				ended[r.Partition] = true
				return
			}
			out = append(out, rec{v, r.Partition, r.Offset})
		})
	}
	return out
}

func createTopic(ctx context.Context, topic string) {
	created, err := adm.CreateTopic(ctx, numPartitions, 1, nil, topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		fail("create-topic", "CreateTopic(%s, %d partitions): %v", topic, numPartitions, err)
	}
	// Kafka propagates metadata asynchronously: wait for the leaders.
	waitUntil("create-topic", func() (bool, string) {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil || len(td.Partitions) != numPartitions {
			return false, fmt.Sprintf("%s: %+v", topic, td)
		}
		for _, pd := range td.Partitions {
			if pd.Err != nil || pd.Leader < 0 {
				return false, fmt.Sprintf("%s/%d: leader %d err %v", topic, pd.Partition, pd.Leader, pd.Err)
			}
		}
		return true, ""
	})
}

// ---------------------------------------------------------------------------
// Steps 1 and 2: interleaved transactions.

func interleaved(topic, prefix string) {
	check := "txn-interleaved"
	txnA, txnB := prefix+"fgt-a", prefix+"fgt-b"
	a := newTxnProducer(check, "a", txnA, topic)
	b := newTxnProducer(check, "b", txnB, topic)
	defer b.Close()
	plain := newClient(check, "plain", kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer plain.Close()
	pidA, pidB, pidPlain := producerID(check, a), producerID(check, b), producerID(check, plain)

	var committed, aborted []rec

	// Round 1: both open on every partition, then plain records after
	// them; A commits while B is open, then B aborts.
	begin(check, a)
	begin(check, b)
	a1 := produce(check, a, "a1", txnRecords)
	b1 := produce(check, b, "b1", txnRecords)
	plain1 := produce(check, plain, "plain1", 9)
	hw := map[int32]int64{}
	for p := range int32(numPartitions) {
		hw[p] = int64(2*txnRecords/numPartitions + 3)
	}
	// The LSO stops at the first record of the oldest open transaction.
	expectOffsets("lso-two-open", topic, firstPerPartition(a1), hw)
	expectTxnState("describe-ongoing", txnA, pidA, "Ongoing", topic)
	expectTxnState("describe-ongoing", txnB, pidB, "Ongoing", topic)
	checkListTransactions("list-ongoing", map[string]int64{txnA: pidA, txnB: pidB}, "Ongoing")
	noTxn := map[int32]int64{0: -1, 1: -1, 2: -1}
	checkDescribeProducers("describe-producers", topic, []int64{pidA, pidB, pidPlain}, firstPerPartition(a1), firstPerPartition(b1), noTxn)
	step("1. A and B open on all %d partitions, plain records after them: LSO %v = A's first offsets, HW %v; DescribeTransactions/ListTransactions Ongoing, DescribeProducers shows A, B and the idempotent producer", numPartitions, firstPerPartition(a1), hw)

	end(check, a, kgo.TryCommit)
	committed = append(committed, a1...)
	committed = append(committed, plain1...)
	// A's commit marker lands after the plain records; B still holds the LSO.
	for p := range hw {
		hw[p]++
	}
	expectOffsets("lso-b-open", topic, firstPerPartition(b1), hw)
	fetchUpToLSO("fetch-lso-b-open", topic, a1, firstPerPartition(b1), hw)
	end(check, b, kgo.TryAbort)
	aborted = append(aborted, b1...)
	for p := range hw {
		hw[p]++
	}
	expectOffsets("lso-none-open", topic, hw, hw)
	expectTxnState("describe-committed", txnA, pidA, "CompleteCommit", topic)
	expectTxnState("describe-aborted", txnB, pidB, "CompleteAbort", topic)
	step("1. A committed while B was open: LSO = B's first offsets in ListOffsets and in read_committed Fetch, which returned A's records and nothing of B's or after; then B aborted: LSO = HW %v; states CompleteCommit / CompleteAbort", hw)

	// Round 2: the other way round, B commits and A aborts.
	begin(check, b)
	begin(check, a)
	b2 := produce(check, b, "b2", txnRecords)
	a2 := produce(check, a, "a2", txnRecords)
	end(check, b, kgo.TryCommit)
	end(check, a, kgo.TryAbort)
	committed = append(committed, b2...)
	aborted = append(aborted, a2...)

	// Round 3: one after the other.
	begin(check, a)
	committed = append(committed, produce(check, a, "a3", txnRecords)...)
	end(check, a, kgo.TryCommit)
	begin(check, b)
	aborted = append(aborted, produce(check, b, "b3", txnRecords)...)
	end(check, b, kgo.TryAbort)
	committed = append(committed, produce(check, plain, "plain2", 6)...)
	step("1. round 2: B committed, A aborted, interleaved; round 3: A committed, B aborted, one after the other")

	// Zombie fencing: a new client with A's transactional id bumps the
	// epoch; A's open transaction is aborted and A cannot commit it.
	begin(check, a)
	zombie := produce(check, a, "zombie", txnRecords)
	a2nd := newTxnProducer(check, "a-new", txnA, topic)
	defer a2nd.Close()
	pidA2 := producerID(check, a2nd)
	if pidA2 != pidA {
		fail("fencing", "InitProducerId for %s gave producer id %d, want the same id %d with a bumped epoch", txnA, pidA2, pidA)
	}
	ctx, cancel := ctxFor(waitLimit)
	err := a.EndTransaction(ctx, kgo.TryCommit)
	cancel()
	if err == nil {
		fail("fencing", "the old producer of %s committed after a new one initialised the transactional id", txnA)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		fail("fencing", "old producer's EndTransaction: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	a.Close()
	aborted = append(aborted, zombie...)
	step("1. a new client with transactional id %s (producer id %d) fenced the old one: EndTransaction(TryCommit) failed with %v", txnA, pidA2, err)

	// Committed sentinels end the topic for the consumers (step 2).
	begin(check, a2nd)
	sentinels := produce(check, a2nd, topic+"-end", numPartitions)
	end(check, a2nd, kgo.TryCommit)
	expectTxnState("describe-new-producer", txnA, pidA2, "CompleteCommit", topic)
	ends := map[int32]int64{}
	for _, s := range sentinels {
		ends[s.partition] = s.offset + 2 // the sentinel and its commit marker
	}
	expectOffsets("lso-final", topic, ends, ends)

	got := consumeAll("read-committed", topic, kgo.ReadCommitted(), topic+"-end")
	expectSame("read-committed", got, committed)
	step("2. read_committed: exactly the %d committed and plain records, none of the %d aborted", len(got), len(aborted))
	got = consumeAll("read-uncommitted", topic, kgo.ReadUncommitted(), topic+"-end")
	expectSame("read-uncommitted", got, append(slices.Clone(committed), aborted...))
	step("2. read_uncommitted: all %d records, each at its acknowledged partition and offset", len(got))
}

// fetchUpToLSO reads topic read_committed from offset 0 while a
// transaction is open: it must get exactly want (everything below the
// LSO), and every partition's fetch response must carry the LSO and high
// watermark.
func fetchUpToLSO(check, topic string, want []rec, lso, hw map[int32]int64) {
	parts := map[int32]kgo.Offset{}
	for p := range int32(numPartitions) {
		parts[p] = kgo.NewOffset().At(0)
	}
	cl := newClient(check, "lso-consumer",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	defer cl.Close()
	ctx, cancel := ctxFor(waitLimit)
	defer cancel()
	var got []rec
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			fail(check, "%d of %d records below the LSO consumed within %s", len(got), len(want), waitLimit)
		}
		fs.EachError(func(t string, p int32, err error) {
			fail(check, "fetch %s/%d: %v", t, p, err)
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if fp.LastStableOffset != lso[fp.Partition] || fp.HighWatermark != hw[fp.Partition] {
				fail(check, "partition %d: fetch response last stable offset %d high watermark %d, want %d and %d", fp.Partition, fp.LastStableOffset, fp.HighWatermark, lso[fp.Partition], hw[fp.Partition])
			}
			for _, r := range fp.Records {
				got = append(got, rec{string(r.Value), r.Partition, r.Offset})
			}
		})
	}
	expectSame(check, got, want)
}

func checkListTransactions(check string, want map[string]int64, state string) {
	waitUntil(check, func() (bool, string) {
		ctx, cancel := ctxFor(10 * time.Second)
		defer cancel()
		listed, err := adm.ListTransactions(ctx, nil, []string{state})
		if err != nil {
			return false, fmt.Sprintf("ListTransactions: %v", err)
		}
		for id, pid := range want {
			l, ok := listed[id]
			if !ok || l.ProducerID != pid || l.State != state {
				return false, fmt.Sprintf("%s: listed %v %+v, want producer id %d state %s (all: %v)", id, ok, l, pid, state, listed.TransactionalIDs())
			}
		}
		return true, ""
	})
}

// checkDescribeProducers: every partition has exactly the given producers
// active, each with its open transaction starting at starts[i] (-1: none).
func checkDescribeProducers(check, topic string, pids []int64, starts ...map[int32]int64) {
	waitUntil(check, func() (bool, string) {
		ctx, cancel := ctxFor(10 * time.Second)
		defer cancel()
		described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}}})
		if err != nil {
			return false, fmt.Sprintf("DescribeProducers: %v", err)
		}
		var bad []string
		for p := range int32(numPartitions) {
			dp, ok := described[topic].Partitions[p]
			if !ok || dp.Err != nil {
				bad = append(bad, fmt.Sprintf("p%d: present %v err %v", p, ok, dp.Err))
				continue
			}
			if len(dp.ActiveProducers) != len(pids) {
				bad = append(bad, fmt.Sprintf("p%d: %d active producers %v, want %v", p, len(dp.ActiveProducers), dp.ActiveProducers.Sorted(), pids))
			}
			for i, pid := range pids {
				prod, ok := dp.ActiveProducers[pid]
				if !ok {
					bad = append(bad, fmt.Sprintf("p%d: producer %d not active (%v)", p, pid, dp.ActiveProducers))
					continue
				}
				if prod.CurrentTxnStartOffset != starts[i][p] {
					bad = append(bad, fmt.Sprintf("p%d: producer %d txn start %d, want %d", p, pid, prod.CurrentTxnStartOffset, starts[i][p]))
				}
			}
		}
		return len(bad) == 0, strings.Join(bad, "; ")
	})
}

// ---------------------------------------------------------------------------
// Step 3: consume-transform-produce with a GroupTransactSession.

func etl(input, output, group, prefix string) {
	check := "etl"
	plain := newClient(check, "etl-input", kgo.DefaultProduceTopic(input), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	inputs := produce(check, plain, "in", etlInputs)
	plain.Close()
	inputEnd := map[int32]int64{}
	for _, r := range inputs {
		inputEnd[r.partition] = max(inputEnd[r.partition], r.offset+1)
	}

	s, err := kgo.NewGroupTransactSession(withLog("etl",
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("fg-txn-etl"),
		kgo.TransactionalID(prefix+"fgt-etl"),
		kgo.TransactionTimeout(60*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(10*time.Second),
		kgo.DefaultProduceTopic(output),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		fail(check, "NewGroupTransactSession: %v", err)
	}
	defer s.Close()

	// Per input value: committed (exactly once expected) and aborted outputs.
	committedIn := map[string]int{}
	var wantCommitted, wantAborted []string
	committedOffsets := map[int32]int64{}
	var abortedRound []string
	rounds := 0
	for len(committedIn) < etlInputs {
		ctx, cancel := ctxFor(waitLimit)
		fs := s.PollRecords(ctx, etlPollMax)
		cancel()
		if errs := fs.Errors(); len(errs) > 0 {
			fail(check, "poll after %d rounds (%d of %d inputs committed): %v", rounds, len(committedIn), etlInputs, errs)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			fail(check, "no input records within %s after %d rounds (%d of %d inputs committed)", waitLimit, rounds, len(committedIn), etlInputs)
		}
		rounds++
		abort := rounds == etlAbortRound
		if err := s.Begin(); err != nil {
			fail(check, "round %d: Begin: %v", rounds, err)
		}
		out := make([]*kgo.Record, len(recs))
		var values []string
		roundOffsets := map[int32]int64{}
		for i, r := range recs {
			if r.Topic != input {
				fail(check, "consumed from topic %q", r.Topic)
			}
			out[i] = &kgo.Record{
				Key:       r.Key,
				Value:     append([]byte("out-"), r.Value...),
				Partition: r.Partition,
				Headers:   []kgo.RecordHeader{{Key: "src", Value: fmt.Appendf(nil, "%d/%d", r.Partition, r.Offset)}},
			}
			values = append(values, string(r.Value))
			roundOffsets[r.Partition] = max(roundOffsets[r.Partition], r.Offset+1)
		}
		pctx, pcancel := ctxFor(waitLimit)
		for _, res := range s.ProduceSync(pctx, out...) {
			if res.Err != nil {
				fail(check, "round %d: produce %s: %v", rounds, res.Record.Value, res.Err)
			}
		}
		pcancel()
		how := kgo.TryCommit
		if abort {
			how = kgo.TryAbort
		}
		ectx, ecancel := ctxFor(waitLimit)
		committed, err := s.End(ectx, how)
		ecancel()
		if err != nil {
			fail(check, "round %d: End(%s): %v", rounds, tryName(how), err)
		}
		if committed == abort {
			fail(check, "round %d: End(%s) returned committed=%v", rounds, tryName(how), committed)
		}
		if abort {
			abortedRound = values
			for _, v := range values {
				wantAborted = append(wantAborted, "out-"+v)
			}
			// The aborted round committed no offsets.
			expectGroupOffsets("etl-offsets-after-abort", group, input, committedOffsets)
			continue
		}
		for _, v := range values {
			committedIn[v]++
			if committedIn[v] > 1 {
				fail(check+"-exactly-once", "input %s committed in a second transaction (round %d)", v, rounds)
			}
			wantCommitted = append(wantCommitted, "out-"+v)
		}
		for p, o := range roundOffsets {
			committedOffsets[p] = max(committedOffsets[p], o)
		}
	}
	if rounds <= etlAbortRound {
		fail(check, "only %d rounds: the abort round %d never happened", rounds, etlAbortRound)
	}
	step("3. GroupTransactSession: %d inputs in %d transactions, round %d (%d records) aborted and redone", etlInputs, rounds, etlAbortRound, len(abortedRound))

	expectGroupOffsets("etl-group-offsets", group, input, inputEnd)
	step("3. the group's committed offsets equal the input end offsets %v", inputEnd)
	s.Close()

	// Committed sentinels end the output for the consumers.
	endProducer := newTxnProducer(check, "etl-end", prefix+"fgt-etl-end", output)
	defer endProducer.Close()
	begin(check, endProducer)
	produce(check, endProducer, output+"-end", numPartitions)
	end(check, endProducer, kgo.TryCommit)

	checkOutput("etl-read-committed", output, kgo.ReadCommitted(), wantCommitted, inputs)
	step("3. read_committed output: exactly %d records, one per input, each on its input's partition", etlInputs)
	checkOutput("etl-read-uncommitted", output, kgo.ReadUncommitted(), append(slices.Clone(wantCommitted), wantAborted...), inputs)
	step("3. read_uncommitted output: %d records (%d of them from the aborted round)", len(wantCommitted)+len(wantAborted), len(wantAborted))
}

// checkOutput consumes the output topic and checks the multiset of values
// and that each output record is on its input's partition.
func checkOutput(check, output string, level kgo.IsolationLevel, want []string, inputs []rec) {
	inPart := map[string]int32{}
	for _, r := range inputs {
		inPart["out-"+r.value] = r.partition
	}
	got := consumeAll(check, output, level, output+"-end")
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
}

// expectGroupOffsets waits until the group's committed offsets of topic
// (OffsetFetch with require_stable) are exactly want (absent = none).
func expectGroupOffsets(check, group, topic string, want map[int32]int64) {
	waitUntil(check, func() (bool, string) {
		ctx, cancel := ctxFor(10 * time.Second)
		defer cancel()
		fetched, err := adm.FetchOffsets(kadm.RequireStable(ctx), group)
		if err == nil {
			err = fetched.Error()
		}
		if err != nil {
			return false, fmt.Sprintf("FetchOffsets: %v", err)
		}
		ok := true
		var state []string
		for p := range int32(numPartitions) {
			at := int64(-1)
			if o, found := fetched.Lookup(topic, p); found {
				at = o.At
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
		return ok, strings.Join(state, ", ")
	})
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
	name := func(what string) string { return fmt.Sprintf("%sfgt-%s-%d", prefix, what, run) }
	step("franz-go %s transactions against %s", version, bootstrap)

	adminCl := newClient("admin-client", "admin")
	defer adminCl.Close()
	adm = kadm.NewClient(adminCl)
	ctx, cancel := ctxFor(waitLimit)
	txnTopic, input, output, rbInput, rbOutput := name("txn"), name("in"), name("out"), name("rb-in"), name("rb-out")
	for _, t := range []string{txnTopic, input, output, rbInput, rbOutput} {
		createTopic(ctx, t)
	}
	cancel()
	step("created 5 topics with %d partitions", numPartitions)

	interleaved(txnTopic, fmt.Sprintf("%s%d-", prefix, run))
	etl(input, output, name("etl"), fmt.Sprintf("%s%d-", prefix, run))
	rebalanceETL(rbInput, rbOutput, name("rb"), fmt.Sprintf("%s%d-", prefix, run))

	fmt.Printf("RESULT franz-go-txn %s ok\n", version)
}

// ---------------------------------------------------------------------------
// Step 4: consume-transform-produce with a rebalance in the middle of a
// transaction.

const (
	rebalancePhase = 300 // input records before and after the second member joins
	rebalancePoll  = 20
)

// rebalanceState is shared by the two members of step 4.
type rebalanceState struct {
	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change
	committedIn map[string]string
	committed   []string // output values committed
	aborted     []string // output values aborted
	perMember   map[string]int
	hold        bool          // the next round of m1 waits for its revoke before End
	held        chan struct{} // closed when m1 holds a transaction open
	errs        []string
}

func (st *rebalanceState) notifyLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// waitFor blocks until cond (under st.mu) holds, failing after waitLimit or
// on a member's error.
func (st *rebalanceState) waitFor(check string, cond func() (bool, string)) {
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		st.mu.Lock()
		ok, state := cond()
		ch, errs := st.changed, slices.Clone(st.errs)
		st.mu.Unlock()
		if len(errs) > 0 {
			fail(check, "member errors: %s", strings.Join(errs, "; "))
		}
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			fail(check, "not reached within %s: %s", waitLimit, state)
		}
	}
}

type rebalanceMember struct {
	name    string
	s       *kgo.GroupTransactSession
	revoked chan struct{} // closed at the first revoke of a partition
	done    chan struct{}
}

func startRebalanceMember(name, txnID, group, input, output string) *rebalanceMember {
	m := &rebalanceMember{name: name, revoked: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	s, err := kgo.NewGroupTransactSession(withLog(name,
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("fg-txn-"+name),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(60*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(20*time.Second),
		kgo.DefaultProduceTopic(output),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, rev map[string][]int32) {
			if len(rev[input]) > 0 {
				once.Do(func() { close(m.revoked) })
			}
		}),
	)...)
	if err != nil {
		fail("etl-rebalance", "%s: NewGroupTransactSession: %v", name, err)
	}
	m.s = s
	return m
}

// run is a member's loop: one transaction per poll until ctx ends. m1's
// round after st.hold was set keeps its transaction open until the
// rebalance revoked a partition, then asks to commit: the session must
// abort instead.
func (m *rebalanceMember) run(ctx context.Context, st *rebalanceState, input string) {
	defer close(m.done)
	addErr := func(format string, args ...any) {
		st.mu.Lock()
		st.errs = append(st.errs, m.name+": "+fmt.Sprintf(format, args...))
		st.notifyLocked()
		st.mu.Unlock()
	}
	for ctx.Err() == nil {
		fs := m.s.PollRecords(ctx, rebalancePoll)
		if ctx.Err() != nil {
			return
		}
		if errs := fs.Errors(); len(errs) > 0 {
			addErr("poll: %v", errs)
			return
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := m.s.Begin(); err != nil {
			addErr("Begin: %v", err)
			return
		}
		out := make([]*kgo.Record, len(recs))
		var values []string
		for i, r := range recs {
			out[i] = &kgo.Record{Key: r.Key, Value: append([]byte("out-"), r.Value...), Partition: r.Partition}
			values = append(values, string(r.Value))
		}
		pctx, pcancel := context.WithTimeout(ctx, waitLimit)
		for _, res := range m.s.ProduceSync(pctx, out...) {
			if res.Err != nil && ctx.Err() == nil {
				addErr("produce %s: %v", res.Record.Value, res.Err)
			}
		}
		pcancel()
		if ctx.Err() != nil {
			return
		}
		st.mu.Lock()
		held := m.name == "m1" && st.hold
		if held {
			st.hold = false
			close(st.held)
		}
		st.mu.Unlock()
		if held {
			select {
			case <-m.revoked:
			case <-time.After(waitLimit):
				addErr("no partition revoked within %s of the second member's start", waitLimit)
				return
			}
		}
		ectx, ecancel := context.WithTimeout(context.Background(), waitLimit)
		committed, err := m.s.End(ectx, kgo.TryCommit)
		ecancel()
		if err != nil {
			addErr("End(TryCommit) of %d records: %v", len(recs), err)
			return
		}
		st.mu.Lock()
		if held && committed {
			st.errs = append(st.errs, m.name+": End committed a transaction whose partitions were revoked before it ended")
		}
		for _, v := range values {
			if !committed {
				st.aborted = append(st.aborted, "out-"+v)
				continue
			}
			if prev, dup := st.committedIn[v]; dup {
				st.errs = append(st.errs, fmt.Sprintf("%s: input %s committed again (first by %s)", m.name, v, prev))
			}
			st.committedIn[v] = m.name
			st.committed = append(st.committed, "out-"+v)
			st.perMember[m.name]++
		}
		st.notifyLocked()
		st.mu.Unlock()
	}
}

func rebalanceETL(input, output, group, idPrefix string) {
	check := "etl-rebalance"
	plain := newClient(check, "rebalance-input", kgo.DefaultProduceTopic(input), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer plain.Close()
	inputs := produce(check, plain, "r1", rebalancePhase)

	st := &rebalanceState{
		changed:     make(chan struct{}),
		committedIn: map[string]string{},
		perMember:   map[string]int{},
		held:        make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m1 := startRebalanceMember("m1", idPrefix+"fgt-rb-1", group, input, output)
	go m1.run(ctx, st, input)
	st.waitFor(check+"-phase1", func() (bool, string) {
		return len(st.committedIn) == rebalancePhase, fmt.Sprintf("%d of %d inputs committed by m1", len(st.committedIn), rebalancePhase)
	})
	step("4. m1 alone: %d inputs committed", rebalancePhase)

	// m1's next transaction stays open until m2's join revokes one of its
	// partitions (cooperative-sticky), then must abort.
	st.mu.Lock()
	st.hold = true
	st.mu.Unlock()
	inputs = append(inputs, produce(check, plain, "r2", rebalancePhase)...)
	select {
	case <-st.held:
	case <-time.After(waitLimit):
		fail(check, "m1 did not start a transaction on the second phase's records within %s", waitLimit)
	}
	m2 := startRebalanceMember("m2", idPrefix+"fgt-rb-2", group, input, output)
	go m2.run(ctx, st, input)
	st.waitFor(check+"-all", func() (bool, string) {
		return len(st.committedIn) == 2*rebalancePhase, fmt.Sprintf("%d of %d inputs committed (m1 %d, m2 %d), %d outputs aborted",
			len(st.committedIn), 2*rebalancePhase, st.perMember["m1"], st.perMember["m2"], len(st.aborted))
	})
	cancel()
	for _, m := range []*rebalanceMember{m1, m2} {
		select {
		case <-m.done:
		case <-time.After(waitLimit):
			fail(check, "%s's loop did not stop within %s", m.name, waitLimit)
		}
		m.s.Close()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.errs) > 0 {
		fail(check, "member errors: %s", strings.Join(st.errs, "; "))
	}
	if st.perMember["m2"] == 0 {
		fail(check, "m2 committed nothing: the rebalance gave it no partition")
	}
	if len(st.aborted) == 0 {
		fail(check, "no transaction was aborted by the rebalance")
	}
	step("4. m2 joined while m1 held a transaction open: m1's End aborted it (%d outputs aborted in all); %d inputs committed exactly once (m1 %d, m2 %d)",
		len(st.aborted), len(st.committedIn), st.perMember["m1"], st.perMember["m2"])

	ends := map[int32]int64{}
	for _, r := range inputs {
		ends[r.partition] = max(ends[r.partition], r.offset+1)
	}
	expectGroupOffsets(check+"-group-offsets", group, input, ends)
	endProducer := newTxnProducer(check, "rb-end", idPrefix+"fgt-rb-end", output)
	defer endProducer.Close()
	begin(check, endProducer)
	produce(check, endProducer, output+"-end", numPartitions)
	end(check, endProducer, kgo.TryCommit)
	checkOutput(check+"-read-committed", output, kgo.ReadCommitted(), st.committed, inputs)
	checkOutput(check+"-read-uncommitted", output, kgo.ReadUncommitted(), append(slices.Clone(st.committed), st.aborted...), inputs)
	step("4. group offsets = input end offsets %v; read_committed output exactly %d records, read_uncommitted %d", ends, len(st.committed), len(st.committed)+len(st.aborted))
}
