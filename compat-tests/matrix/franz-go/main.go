// Client-matrix scenario for franz-go (kgo + kadm), written the way a
// franz-go user would: one kgo.Client per producer configuration with the
// library defaults (idempotent, acks=all), kadm for admin and offset
// listing, and direct partition consumption with kgo.ConsumePartitions.
//
// Usage: scenario BOOTSTRAP TOPIC_PREFIX
//
// See ../README.md for the contract. Every failed check prints
// "FAIL <check>: <detail>" and exits 1; success prints
// "RESULT franz-go <version> ok" as the last line.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	numPartitions = 3
	keysPerCodec  = 12 // distinct keys per codec
	perKey        = 3  // records per key per codec
	unkeyed       = 8  // null-key records per codec
	tsStepMs      = 2  // explicit CreateTime step between consecutive records
)

type codec struct {
	name string
	kgo  kgo.CompressionCodec
	attr uint8 // compression bits of the batch attributes
}

var codecs = []codec{
	{"none", kgo.NoCompression(), 0},
	{"gzip", kgo.GzipCompression(), 1},
	{"snappy", kgo.SnappyCompression(), 2},
	{"lz4", kgo.Lz4Compression(), 3},
	{"zstd", kgo.ZstdCompression(), 4},
}

// expected is what we produced, plus where the broker said it landed.
type expected struct {
	seq       int // global produce order
	codec     string
	key       []byte // nil = null key
	value     []byte // nil = null value
	headers   []kgo.RecordHeader
	ts        time.Time
	partition int32 // from the produce acknowledgement
	offset    int64 // from the produce acknowledgement
}

// fail reports a failed check on stdout, with the step lines, and exits 1.
func fail(check string, format string, args ...any) {
	fmt.Printf("FAIL %s: %s\n", check, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func step(format string, args ...any) {
	fmt.Printf("-- "+format+"\n", args...)
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

// padding makes values compressible so every codec really compresses
// (franz-go sends a batch uncompressed when compression does not shrink it).
func padding(n int) string {
	return strings.Repeat("gregor-compat-", n)
}

// buildRecords returns the records of one codec, in produce order.
func buildRecords(c codec, seq *int, base time.Time) []*expected {
	var out []*expected
	add := func(key, value []byte, headers []kgo.RecordHeader) {
		out = append(out, &expected{
			seq:     *seq,
			codec:   c.name,
			key:     key,
			value:   value,
			headers: headers,
			ts:      base.Add(time.Duration(*seq*tsStepMs) * time.Millisecond),
		})
		*seq++
	}
	// Keyed records, interleaved across keys so per-key order is
	// meaningful, with a repeated header key ("h" twice).
	for n := range perKey {
		for k := range keysPerCodec {
			key := fmt.Appendf(nil, "key-%02d", k)
			value := fmt.Appendf(nil, "%s|%s|n=%d|%s", c.name, key, n, padding(10+k))
			hs := []kgo.RecordHeader{
				{Key: "h", Value: []byte("first")},
				{Key: "h", Value: []byte("second")},
				{Key: "codec", Value: []byte(c.name)},
				{Key: "n", Value: []byte(strconv.Itoa(n))},
			}
			switch k {
			case 0:
				hs = nil // no headers at all
			case 1:
				hs = append(hs, kgo.RecordHeader{Key: "empty", Value: []byte{}})
			case 2:
				hs = append(hs, kgo.RecordHeader{Key: "null", Value: nil})
			}
			add(key, value, hs)
		}
	}
	// Null keys (the partitioner picks the partition).
	for i := range unkeyed {
		add(nil, fmt.Appendf(nil, "%s|unkeyed|%d|%s", c.name, i, padding(20)),
			[]kgo.RecordHeader{{Key: "unkeyed", Value: []byte(strconv.Itoa(i))}, {Key: "unkeyed", Value: []byte("again")}})
	}
	// Null value (tombstone), empty value, empty key, null key and value.
	add([]byte("tomb-"+c.name), nil, []kgo.RecordHeader{{Key: "kind", Value: []byte("null-value")}})
	add([]byte("empty-"+c.name), []byte{}, []kgo.RecordHeader{{Key: "kind", Value: []byte("empty-value")}})
	add([]byte{}, []byte("empty key "+padding(5)), []kgo.RecordHeader{{Key: "kind", Value: []byte("empty-key")}})
	add(nil, nil, []kgo.RecordHeader{{Key: "kind", Value: []byte("null-key-null-value")}})
	// More keyed records after the special ones, same keys as above.
	for k := range keysPerCodec {
		key := fmt.Appendf(nil, "key-%02d", k)
		add(key, fmt.Appendf(nil, "%s|%s|tail|%s", c.name, key, padding(8)), nil)
	}
	return out
}

func bytesEqualNull(a, b []byte) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return bytes.Equal(a, b)
}

func showBytes(b []byte) string {
	if b == nil {
		return "<null>"
	}
	if len(b) > 40 {
		return strconv.Quote(string(b[:40])) + "..."
	}
	return strconv.Quote(string(b))
}

func headersEqual(want, got []kgo.RecordHeader) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i].Key != got[i].Key || !bytesEqualNull(want[i].Value, got[i].Value) {
			return false
		}
	}
	return true
}

func showHeaders(hs []kgo.RecordHeader) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.Key+"="+showBytes(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// withLog adds franz-go's own debug logging to stderr when
// SCENARIO_DEBUG is set, to diagnose a failing run.
func withLog(opts ...kgo.Opt) []kgo.Opt {
	if os.Getenv("SCENARIO_DEBUG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	return opts
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: scenario BOOTSTRAP TOPIC_PREFIX")
		os.Exit(2)
	}
	bootstrap, prefix := os.Args[1], os.Args[2]
	// A broker that accepts connections but never answers must not hang
	// the matrix: give the whole scenario a hard limit.
	time.AfterFunc(200*time.Second, func() { fail("timeout", "scenario did not finish within 200s") })
	version := clientVersion()
	topic := fmt.Sprintf("%sfranz-go-%d", prefix, time.Now().UnixNano())
	seeds := strings.Split(bootstrap, ",")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	step("franz-go %s against %s, topic %s", version, bootstrap, topic)

	// 1. Create the topic with kadm.
	adminCl, err := kgo.NewClient(withLog(kgo.SeedBrokers(seeds...))...)
	if err != nil {
		fail("admin-client", "%v", err)
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)

	created, err := adm.CreateTopic(ctx, numPartitions, 1, nil, topic)
	if err != nil {
		fail("create-topic", "CreateTopic(%s, 3 partitions, rf 1): %v", topic, err)
	}
	if created.Topic != topic || created.NumPartitions != numPartitions {
		fail("create-topic", "response topic=%q partitions=%d, want %q/%d", created.Topic, created.NumPartitions, topic, numPartitions)
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		fail("metadata", "%v", err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		fail("metadata", "topic %s missing or errored: %+v", topic, td.Err)
	}
	if len(td.Partitions) != numPartitions {
		fail("metadata", "topic has %d partitions, want %d", len(td.Partitions), numPartitions)
	}
	for p, pd := range td.Partitions {
		if pd.Err != nil || pd.Leader < 0 {
			fail("metadata", "partition %d: leader=%d err=%v", p, pd.Leader, pd.Err)
		}
	}
	step("created topic with %d partitions", numPartitions)

	// 2. Produce with every codec, one client per codec, defaults otherwise
	// (idempotent producer, acks=all).
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var all []*expected
	firstSeqOfCodec := map[string]int{}
	seq := 0
	for _, c := range codecs {
		firstSeqOfCodec[c.name] = seq
		recs := buildRecords(c, &seq, base)
		cl, err := kgo.NewClient(withLog(
			kgo.SeedBrokers(seeds...),
			kgo.DefaultProduceTopic(topic),
			kgo.ProducerBatchCompression(c.kgo),
		)...)
		if err != nil {
			fail("producer-client", "%s: %v", c.name, err)
		}
		krs := make([]*kgo.Record, len(recs))
		sent := map[*kgo.Record]*expected{}
		for i, e := range recs {
			krs[i] = &kgo.Record{Key: e.key, Value: e.value, Headers: e.headers, Timestamp: e.ts}
			sent[krs[i]] = e
		}
		// ProduceSync's results come in completion order, not input order.
		results := cl.ProduceSync(ctx, krs...)
		if len(results) != len(recs) {
			fail("produce-"+c.name, "%d results for %d records", len(results), len(recs))
		}
		for _, r := range results {
			e := sent[r.Record]
			if r.Err != nil {
				fail("produce-"+c.name, "record seq %d (key %s): %v", e.seq, showBytes(e.key), r.Err)
			}
			if r.Record.Partition < 0 || r.Record.Partition >= numPartitions || r.Record.Offset < 0 {
				fail("produce-"+c.name, "record seq %d acknowledged at partition %d offset %d", e.seq, r.Record.Partition, r.Record.Offset)
			}
			e.partition = r.Record.Partition
			e.offset = r.Record.Offset
		}
		cl.Close()
		all = append(all, recs...)
		step("produced %d records with %s", len(recs), c.name)
	}

	// Produced-side checks: per-key partition stability and order.
	perPartition := map[int32][]*expected{}
	for _, e := range all {
		perPartition[e.partition] = append(perPartition[e.partition], e)
	}
	for p, es := range perPartition {
		sort.Slice(es, func(i, j int) bool { return es[i].offset < es[j].offset })
		for i, e := range es {
			if e.offset != int64(i) {
				fail("produce-offsets", "partition %d: acknowledged offsets not contiguous from 0 (position %d has offset %d)", p, i, e.offset)
			}
		}
	}
	keyPartition := map[string]int32{}
	keyLast := map[string]*expected{}
	for _, e := range all {
		if e.key == nil {
			continue
		}
		k := string(e.key)
		if p, ok := keyPartition[k]; ok && p != e.partition {
			fail("key-partition", "key %q went to partitions %d and %d", k, p, e.partition)
		}
		keyPartition[k] = e.partition
		if last, ok := keyLast[k]; ok && last.offset >= e.offset {
			fail("key-order", "key %q: seq %d at offset %d, later seq %d at offset %d", k, last.seq, last.offset, e.seq, e.offset)
		}
		keyLast[k] = e
	}

	// 3. Consume everything from the start by assigning the partitions.
	byPos := map[int32]map[int64]*expected{}
	for _, e := range all {
		if byPos[e.partition] == nil {
			byPos[e.partition] = map[int64]*expected{}
		}
		byPos[e.partition][e.offset] = e
	}
	parts := map[int32]kgo.Offset{}
	for p := range int32(numPartitions) {
		parts[p] = kgo.NewOffset().AtStart()
	}
	consumer, err := kgo.NewClient(withLog(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
	)...)
	if err != nil {
		fail("consumer-client", "%v", err)
	}
	defer consumer.Close()

	nextOffset := map[int32]int64{0: 0, 1: 0, 2: 0}
	seen := 0
	compressedSeen := map[string]int{}
	consumeCtx, consumeCancel := context.WithTimeout(ctx, 60*time.Second)
	defer consumeCancel()
	for seen < len(all) {
		fetches := consumer.PollFetches(consumeCtx)
		if consumeCtx.Err() != nil {
			fail("consume", "timed out after %d of %d records (next offsets %v)", seen, len(all), nextOffset)
		}
		fetches.EachError(func(t string, p int32, err error) {
			fail("consume", "fetch error on %s/%d: %v", t, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			where := fmt.Sprintf("partition %d offset %d", r.Partition, r.Offset)
			if r.Topic != topic {
				fail("consume", "record from unexpected topic %q", r.Topic)
			}
			if r.Offset != nextOffset[r.Partition] {
				fail("consume-offsets", "partition %d: got offset %d, want %d (offsets must be contiguous from 0)", r.Partition, r.Offset, nextOffset[r.Partition])
			}
			nextOffset[r.Partition]++
			e, ok := byPos[r.Partition][r.Offset]
			if !ok {
				fail("consume", "%s: no record was acknowledged there", where)
			}
			if !bytesEqualNull(e.key, r.Key) {
				fail("consume-key", "%s: key %s, want %s", where, showBytes(r.Key), showBytes(e.key))
			}
			if !bytesEqualNull(e.value, r.Value) {
				fail("consume-value", "%s: value %s, want %s", where, showBytes(r.Value), showBytes(e.value))
			}
			if !headersEqual(e.headers, r.Headers) {
				fail("consume-headers", "%s: headers %s, want %s", where, showHeaders(r.Headers), showHeaders(e.headers))
			}
			if r.Attrs.TimestampType() != 0 {
				fail("consume-timestamp", "%s: timestamp type %d, want 0 (CreateTime)", where, r.Attrs.TimestampType())
			}
			if !r.Timestamp.Equal(e.ts) {
				fail("consume-timestamp", "%s: timestamp %d, want %d", where, r.Timestamp.UnixMilli(), e.ts.UnixMilli())
			}
			// The default producer is idempotent: its batches carry the
			// producer id InitProducerId handed out.
			if r.ProducerID < 0 || r.ProducerEpoch < 0 {
				fail("consume-producer-id", "%s: producer id %d epoch %d, want the idempotent producer's (>= 0)", where, r.ProducerID, r.ProducerEpoch)
			}
			got := r.Attrs.CompressionType()
			var want uint8
			for _, c := range codecs {
				if c.name == e.codec {
					want = c.attr
				}
			}
			// franz-go sends a batch uncompressed when compressing does
			// not shrink it, so "none" is acceptable for any codec.
			if got != want && got != 0 {
				fail("consume-codec", "%s: batch compression %d, record was produced with %s", where, got, e.codec)
			}
			if got == want && want != 0 {
				compressedSeen[e.codec]++
			}
			seen++
		})
	}
	for _, c := range codecs[1:] {
		if compressedSeen[c.name] == 0 {
			fail("consume-codec", "no record came back in a %s-compressed batch", c.name)
		}
	}
	// Nothing beyond what we produced: a short extra poll returns nothing.
	extraCtx, extraCancel := context.WithTimeout(ctx, 500*time.Millisecond)
	extra := consumer.PollFetches(extraCtx)
	extraCancel()
	if n := extra.NumRecords(); n != 0 {
		fail("consume", "%d records beyond the %d produced", n, len(all))
	}
	step("consumed %d records, per-partition counts %v, compressed batches seen %v", seen, nextOffset, compressedSeen)

	// 4. ListOffsets: earliest, latest, and by timestamp.
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		fail("list-offsets-earliest", "%v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		fail("list-offsets-latest", "%v", err)
	}
	for p := range int32(numPartitions) {
		s, ok := starts.Lookup(topic, p)
		if !ok || s.Offset != 0 {
			fail("list-offsets-earliest", "partition %d: %+v (present %v), want offset 0", p, s, ok)
		}
		e, ok := ends.Lookup(topic, p)
		if !ok || e.Offset != int64(len(perPartition[p])) {
			fail("list-offsets-latest", "partition %d: %+v (present %v), want offset %d", p, e, ok, len(perPartition[p]))
		}
	}

	// By timestamp: a millisecond strictly between two consecutive
	// produced records (the first snappy record and the one before it).
	// Expected per partition: the first record at or after it, with its
	// timestamp; a partition with none gets the end offset from kadm.
	cut := firstSeqOfCodec["snappy"]
	target := all[cut].ts.Add(-time.Millisecond)
	checkAfter := func(name string, milli int64) map[int32]int64 {
		offsets := map[int32]int64{}
		listed, err := adm.ListOffsetsAfterMilli(ctx, milli, topic)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			fail(name, "ListOffsetsAfterMilli(%d): %v", milli, err)
		}
		for p := range int32(numPartitions) {
			wantOffset := int64(len(perPartition[p]))
			wantTs := int64(-1)
			for _, e := range perPartition[p] { // sorted by offset
				if e.ts.UnixMilli() >= milli {
					wantOffset, wantTs = e.offset, e.ts.UnixMilli()
					break
				}
			}
			got, ok := listed.Lookup(topic, p)
			if !ok || got.Offset != wantOffset {
				fail(name, "partition %d at %d: got %+v (present %v), want offset %d", p, milli, got, ok, wantOffset)
			}
			if wantTs >= 0 && got.Timestamp != wantTs {
				fail(name, "partition %d at %d: offset %d has timestamp %d, want %d", p, milli, got.Offset, got.Timestamp, wantTs)
			}
			offsets[p] = got.Offset
		}
		return offsets
	}
	byTime := checkAfter("list-offsets-by-timestamp", target.UnixMilli())
	checkAfter("list-offsets-by-timestamp-before-all", base.Add(-time.Hour).UnixMilli())
	checkAfter("list-offsets-by-timestamp-after-all", all[len(all)-1].ts.Add(time.Second).UnixMilli())
	step("list offsets: earliest 0, latest %v, by timestamp %v", map[int32]int{0: len(perPartition[0]), 1: len(perPartition[1]), 2: len(perPartition[2])}, byTime)

	fmt.Printf("RESULT franz-go %s ok\n", version)
}
