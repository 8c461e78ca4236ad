// Client-matrix scenario for IBM/sarama, written the way a sarama user
// would: a ClusterAdmin to create the topic, one SyncProducer per
// compression codec (acks=all, the library's default hash partitioner),
// Consumer.ConsumePartition from OffsetOldest on every partition, and
// Client.GetOffset for earliest, latest and by-timestamp offsets.
//
// Usage: scenario BOOTSTRAP TOPIC_PREFIX
//
// See ../README.md for the contract. Every failed check prints
// "FAIL <check>: <detail>" and exits 1; success prints
// "RESULT sarama <version> ok" as the last line.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

const (
	numPartitions = 3
	keysPerCodec  = 12 // distinct keys per codec
	perKey        = 3  // records per key per codec
	unkeyed       = 8  // null-key records per codec
	tsStepMs      = 2  // explicit CreateTime step between consecutive records
)

// kafkaVersion is the protocol level sarama is told the cluster speaks:
// Kafka 4.0, the reference broker's line (record batches v2 with headers,
// Produce v10, Fetch v12, ListOffsets v6).
var kafkaVersion = sarama.V4_0_0_0

type codec struct {
	name  string
	codec sarama.CompressionCodec
}

var codecs = []codec{
	{"none", sarama.CompressionNone},
	{"gzip", sarama.CompressionGZIP},
	{"snappy", sarama.CompressionSnappy},
	{"lz4", sarama.CompressionLZ4},
	{"zstd", sarama.CompressionZSTD},
}

type header struct {
	key   string
	value []byte // nil = null header value
}

// expected is what we produced, plus where the broker said it landed.
type expected struct {
	seq       int // global produce order
	codec     string
	key       []byte // nil = null key
	value     []byte // nil = null value
	headers   []header
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
			if d.Path == "github.com/IBM/sarama" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func padding(n int) string {
	return strings.Repeat("gregor-compat-", n)
}

// buildRecords returns the records of one codec, in produce order.
func buildRecords(c codec, seq *int, base time.Time) []*expected {
	var out []*expected
	add := func(key, value []byte, headers []header) {
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
			hs := []header{
				{"h", []byte("first")},
				{"h", []byte("second")},
				{"codec", []byte(c.name)},
				{"n", []byte(strconv.Itoa(n))},
			}
			switch k {
			case 0:
				hs = nil // no headers at all
			case 1:
				hs = append(hs, header{"empty", []byte{}})
			case 2:
				hs = append(hs, header{"null", nil})
			}
			add(key, value, hs)
		}
	}
	// Null keys (the partitioner picks the partition).
	for i := range unkeyed {
		add(nil, fmt.Appendf(nil, "%s|unkeyed|%d|%s", c.name, i, padding(20)),
			[]header{{"unkeyed", []byte(strconv.Itoa(i))}, {"unkeyed", []byte("again")}})
	}
	// Null value (tombstone), empty value, empty key, null key and value.
	add([]byte("tomb-"+c.name), nil, []header{{"kind", []byte("null-value")}})
	add([]byte("empty-"+c.name), []byte{}, []header{{"kind", []byte("empty-value")}})
	add([]byte{}, []byte("empty key "+padding(5)), []header{{"kind", []byte("empty-key")}})
	add(nil, nil, []header{{"kind", []byte("null-key-null-value")}})
	// More keyed records after the special ones, same keys as above.
	for k := range keysPerCodec {
		key := fmt.Appendf(nil, "key-%02d", k)
		add(key, fmt.Appendf(nil, "%s|%s|tail|%s", c.name, key, padding(8)), nil)
	}
	return out
}

func (e *expected) message(topic string) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Timestamp: e.ts, Metadata: e}
	if e.key != nil {
		m.Key = sarama.ByteEncoder(e.key)
	}
	if e.value != nil {
		m.Value = sarama.ByteEncoder(e.value)
	}
	for _, h := range e.headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.key), Value: h.value})
	}
	return m
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

func headersEqual(want []header, got []*sarama.RecordHeader) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if got[i] == nil || want[i].key != string(got[i].Key) || !bytesEqualNull(want[i].value, got[i].Value) {
			return false
		}
	}
	return true
}

func showWant(hs []header) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, h.key+"="+showBytes(h.value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func showGot(hs []*sarama.RecordHeader) string {
	var parts []string
	for _, h := range hs {
		if h == nil {
			parts = append(parts, "<nil>")
			continue
		}
		parts = append(parts, string(h.Key)+"="+showBytes(h.Value))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func newConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "gregor-compat-sarama"
	cfg.Version = kafkaVersion
	cfg.Metadata.AllowAutoTopicCreation = false
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true // required by SyncProducer
	cfg.Producer.Return.Errors = true
	cfg.Consumer.Return.Errors = true
	return cfg
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
	addrs := strings.Split(bootstrap, ",")
	version := clientVersion()
	topic := fmt.Sprintf("%ssarama-%d", prefix, time.Now().UnixNano())
	if os.Getenv("SCENARIO_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}

	step("sarama %s (protocol %s) against %s, topic %s", version, kafkaVersion, bootstrap, topic)

	// 1. Create the topic through the ClusterAdmin.
	admin, err := sarama.NewClusterAdmin(addrs, newConfig())
	if err != nil {
		fail("admin-client", "%v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: numPartitions, ReplicationFactor: 1}, false); err != nil {
		fail("create-topic", "CreateTopic(%s, 3 partitions, rf 1): %v", topic, err)
	}

	client, err := sarama.NewClient(addrs, newConfig())
	if err != nil {
		fail("client", "%v", err)
	}
	defer client.Close()
	if err := client.RefreshMetadata(topic); err != nil {
		fail("metadata", "RefreshMetadata(%s): %v", topic, err)
	}
	partitions, err := client.Partitions(topic)
	if err != nil {
		fail("metadata", "Partitions(%s): %v", topic, err)
	}
	if len(partitions) != numPartitions {
		fail("metadata", "topic has partitions %v, want %d", partitions, numPartitions)
	}
	for _, p := range partitions {
		if _, err := client.Leader(topic, p); err != nil {
			fail("metadata", "partition %d has no leader: %v", p, err)
		}
	}
	step("created topic with %d partitions", numPartitions)

	// 2. Produce with every codec: one SyncProducer per codec, acks=all.
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var all []*expected
	firstSeqOfCodec := map[string]int{}
	seq := 0
	for _, c := range codecs {
		firstSeqOfCodec[c.name] = seq
		recs := buildRecords(c, &seq, base)
		cfg := newConfig()
		cfg.Producer.Compression = c.codec
		producer, err := sarama.NewSyncProducer(addrs, cfg)
		if err != nil {
			fail("producer-client", "%s: %v", c.name, err)
		}
		msgs := make([]*sarama.ProducerMessage, len(recs))
		for i, e := range recs {
			msgs[i] = e.message(topic)
		}
		if err := producer.SendMessages(msgs); err != nil {
			var perrs sarama.ProducerErrors
			if errors.As(err, &perrs) && len(perrs) > 0 {
				e := perrs[0].Msg.Metadata.(*expected)
				fail("produce-"+c.name, "%d of %d records failed; first: seq %d key %s: %v", len(perrs), len(msgs), e.seq, showBytes(e.key), perrs[0].Err)
			}
			fail("produce-"+c.name, "%v", err)
		}
		for _, m := range msgs {
			e := m.Metadata.(*expected)
			if m.Partition < 0 || m.Partition >= numPartitions || m.Offset < 0 {
				fail("produce-"+c.name, "record seq %d acknowledged at partition %d offset %d", e.seq, m.Partition, m.Offset)
			}
			e.partition, e.offset = m.Partition, m.Offset
		}
		if err := producer.Close(); err != nil {
			fail("produce-"+c.name, "closing producer: %v", err)
		}
		all = append(all, recs...)
		step("produced %d records with %s", len(recs), c.name)
	}

	// Produced-side checks: contiguous acknowledged offsets, per-key
	// partition stability and order.
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

	// 3. Consume every partition from OffsetOldest, no consumer group.
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("consumer", "%v", err)
	}
	defer consumer.Close()
	seen := 0
	counts := map[int32]int{}
	for p := range int32(numPartitions) {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fail("consume", "ConsumePartition(%d, OffsetOldest): %v", p, err)
		}
		want := perPartition[p] // sorted by offset
		deadline := time.After(60 * time.Second)
		next := int64(0)
		for next < int64(len(want)) {
			select {
			case m := <-pc.Messages():
				where := fmt.Sprintf("partition %d offset %d", m.Partition, m.Offset)
				if m.Topic != topic || m.Partition != p {
					fail("consume", "message from %s/%d on the consumer of partition %d", m.Topic, m.Partition, p)
				}
				if m.Offset != next {
					fail("consume-offsets", "partition %d: got offset %d, want %d (offsets must be contiguous from 0)", p, m.Offset, next)
				}
				e := want[next]
				if !bytesEqualNull(e.key, m.Key) {
					fail("consume-key", "%s: key %s, want %s", where, showBytes(m.Key), showBytes(e.key))
				}
				if !bytesEqualNull(e.value, m.Value) {
					fail("consume-value", "%s: value %s, want %s", where, showBytes(m.Value), showBytes(e.value))
				}
				if !headersEqual(e.headers, m.Headers) {
					fail("consume-headers", "%s: headers %s, want %s", where, showGot(m.Headers), showWant(e.headers))
				}
				if !m.Timestamp.Equal(e.ts) {
					fail("consume-timestamp", "%s: timestamp %d, want %d", where, m.Timestamp.UnixMilli(), e.ts.UnixMilli())
				}
				next++
				seen++
			case cerr := <-pc.Errors():
				fail("consume", "partition %d: %v", p, cerr)
			case <-deadline:
				fail("consume", "partition %d: timed out at offset %d of %d", p, next, len(want))
			}
		}
		// Nothing beyond what we produced.
		select {
		case m := <-pc.Messages():
			fail("consume", "partition %d: unexpected extra record at offset %d", p, m.Offset)
		case cerr := <-pc.Errors():
			fail("consume", "partition %d: %v", p, cerr)
		case <-time.After(500 * time.Millisecond):
		}
		if hwm := pc.HighWaterMarkOffset(); hwm != int64(len(want)) {
			fail("consume-high-watermark", "partition %d: high watermark %d, want %d", p, hwm, len(want))
		}
		if err := pc.Close(); err != nil {
			fail("consume", "closing partition consumer %d: %v", p, err)
		}
		counts[p] = len(want)
	}
	if seen != len(all) {
		fail("consume", "consumed %d records, produced %d", seen, len(all))
	}
	step("consumed %d records, per-partition counts %v", seen, counts)

	// 4. ListOffsets through Client.GetOffset.
	for p := range int32(numPartitions) {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil || oldest != 0 {
			fail("list-offsets-earliest", "partition %d: %d (%v), want 0", p, oldest, err)
		}
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || newest != int64(counts[p]) {
			fail("list-offsets-latest", "partition %d: %d (%v), want %d", p, newest, err, counts[p])
		}
	}
	// By timestamp: a millisecond strictly between two consecutive
	// produced records (the first snappy record and the one before it);
	// each partition answers its first record at or after it, or -1 when
	// it has none.
	checkAt := func(name string, milli int64) map[int32]int64 {
		got := map[int32]int64{}
		for p := range int32(numPartitions) {
			want := int64(-1)
			for _, e := range perPartition[p] { // sorted by offset
				if e.ts.UnixMilli() >= milli {
					want = e.offset
					break
				}
			}
			off, err := client.GetOffset(topic, p, milli)
			if err != nil || off != want {
				fail(name, "partition %d at %d: %d (%v), want %d", p, milli, off, err, want)
			}
			got[p] = off
		}
		return got
	}
	cut := firstSeqOfCodec["snappy"]
	byTime := checkAt("list-offsets-by-timestamp", all[cut].ts.Add(-time.Millisecond).UnixMilli())
	checkAt("list-offsets-by-timestamp-before-all", base.Add(-time.Hour).UnixMilli())
	checkAt("list-offsets-by-timestamp-after-all", all[len(all)-1].ts.Add(time.Second).UnixMilli())
	step("list offsets: earliest 0, latest %v, by timestamp %v", counts, byTime)

	fmt.Printf("RESULT sarama %s ok\n", version)
}
