// Leader-move scenario of issue 11 for franz-go (kgo + kadm), the same as the
// Java kafka-clients one (compat-tests/java/src/main/java/gregor/compat/LeaderMove.java),
// against Gregor's virtual cluster (gregor serve --virtual-brokers 3
// --admin-listen ADDR); driven by compat-tests/python/test_leader_move.py.
//
// Usage: scenario BOOTSTRAP TOPIC_PREFIX   (BOOTSTRAP: host:port or a comma list)
//
// Environment:
//
//	GREGOR_ADMIN_URL     the admin API, http://host:port (or host:port). When
//	                     unset (as in test_matrix.py, against a plain
//	                     single-broker gregor or the reference Kafka) the
//	                     scenario runs without faults: produce and consume
//	                     only, with every check below that does not need the
//	                     admin API.
//	LEADER_MOVE_RECORDS  the number of records (20000).
//	SCENARIO_DEBUG       franz-go's log to stderr ("info", or anything else for debug).
//
// An idempotent producer (franz-go's default; acks=all) writes N records to a
// 6-partition topic whose partitions are led by brokers 1-3: key "key-NN"
// (60 keys; franz-go's default partitioner keeps a key on one partition),
// value the key's sequence number. At 1/8 ... 7/8 of the sends the program
// calls the admin API: connections cut after Produce is processed (POST
// /faults/close count 3, twice), every partition of broker 1 to broker 2, one
// partition to broker 1, broker 3 down and up again, two partitions to broker
// 3, broker 2's partitions spread over the others. After each call it checks
// /topics and /cluster against the spec (the moved partitions' new leader,
// leader epoch +1, the others unchanged) and a Metadata request (leaders and
// leader epochs) against /topics.
//
// Meanwhile a consumer in a group consumes and commits after every poll: it
// must keep going through the moves (per key no gap; a redelivery after a
// rebalance is counted, not failed), reach the end offsets and have them
// committed. Then a new group reads everything: per key exactly 0..n-1 in
// order, no duplicates, nothing missing, each key on one partition; the end
// offsets sum to N; the producer saw no error.
//
// Prints JSON event lines, then {"event":"summary","ok":...}; every failed
// check prints "FAIL <check>" and the exit code is 1; success ends with
// "RESULT franz-go-leader-move <version> ok".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	numPartitions = 6
	numKeys       = 60
	steps         = 8
	waitLimit     = 30 * time.Second
)

var (
	seeds    []string
	adminURL string
	topic    string
	prefix   string
	started  = time.Now()
	failures = []string{}
	failMu   sync.Mutex
	moves    int
	faults   int
	hc       = &http.Client{Timeout: 10 * time.Second}
)

func ms() int64 { return time.Since(started).Milliseconds() }

// emitKV prints {"event":name, k1:v1, ...} keeping the keys in order.
func emitKV(name string, kv ...any) {
	var sb strings.Builder
	sb.WriteString(`{"event":`)
	b, _ := json.Marshal(name)
	sb.Write(b)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := json.Marshal(kv[i])
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			v, _ = json.Marshal(fmt.Sprint(kv[i+1]))
		}
		sb.WriteString(",")
		sb.Write(k)
		sb.WriteString(":")
		sb.Write(v)
	}
	sb.WriteString("}")
	fmt.Println(sb.String())
}

func check(cond bool, format string, args ...any) {
	if cond {
		return
	}
	what := fmt.Sprintf(format, args...)
	failMu.Lock()
	failures = append(failures, what)
	failMu.Unlock()
	fmt.Printf("FAIL %s\n", what)
}

// fatal ends the run at once (a call that must not fail did).
func fatal(format string, args ...any) {
	check(false, format, args...)
	emitKV("summary", "ok", false, "failures", failures, "elapsed_ms", ms())
	os.Exit(1)
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

func withLog(name string, opts ...kgo.Opt) []kgo.Opt {
	v := os.Getenv("SCENARIO_DEBUG")
	if v == "" {
		return opts
	}
	level := kgo.LogLevelDebug
	if v == "info" {
		level = kgo.LogLevelInfo
	}
	return append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, func() string {
		return time.Now().Format("15:04:05.000 ") + name + " "
	})))
}

func newClient(name string, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(withLog(name, append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(prefix + name)}, opts...)...)...)
	if err != nil {
		fatal("client %s: %v", name, err)
	}
	return cl
}

func ctxFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func key(k int) string { return fmt.Sprintf("key-%02d", k) }

// ---------------------------------------------------------------- admin HTTP

func httpDo(method, path string, body string) (any, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, adminURL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("content-type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s %s-> HTTP %d: %s", method, path, body+" ", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s %s: bad JSON %q: %v", method, path, b, err)
	}
	return v, nil
}

func mustHTTP(method, path, body string) any {
	v, err := httpDo(method, path, body)
	if err != nil {
		fatal("admin API: %v", err)
	}
	return v
}

func post(path, body string) any {
	v := mustHTTP("POST", path, body)
	var raw json.RawMessage = []byte("null")
	if body != "" {
		raw = json.RawMessage(body)
	}
	emitKV("admin", "t_ms", ms(), "request", "POST "+path, "body", raw, "response", v)
	return v
}

func num(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			f, _ := x.Float64()
			return int64(f)
		}
		return n
	case float64:
		return int64(x)
	}
	return -999
}

// leaderEpoch is one partition's [leader, leader_epoch] from GET /topics.
type leaderEpoch [2]int64

type leaderMap map[int32]leaderEpoch

func (l leaderMap) String() string {
	ps := make([]int, 0, len(l))
	for p := range l {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	var sb strings.Builder
	sb.WriteString("{")
	for i, p := range ps {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"%d":[%d,%d]`, p, l[int32(p)][0], l[int32(p)][1])
	}
	sb.WriteString("}")
	return sb.String()
}

func (l leaderMap) MarshalJSON() ([]byte, error) { return []byte(l.String()), nil }

func leaders() leaderMap {
	v := mustHTTP("GET", "/topics", "")
	ts, _ := v.([]any)
	for _, to := range ts {
		t, _ := to.(map[string]any)
		if t["name"] != topic {
			continue
		}
		out := leaderMap{}
		ps, _ := t["partitions"].([]any)
		for _, po := range ps {
			p, _ := po.(map[string]any)
			out[int32(num(p["partition"]))] = leaderEpoch{num(p["leader"]), num(p["leader_epoch"])}
		}
		return out
	}
	fatal("GET /topics does not list %s: %v", topic, v)
	return nil
}

func brokersUp() map[int64]bool {
	v := mustHTTP("GET", "/cluster", "")
	c, _ := v.(map[string]any)
	out := map[int64]bool{}
	bs, _ := c["brokers"].([]any)
	for _, bo := range bs {
		b, _ := bo.(map[string]any)
		out[num(b["id"])] = b["up"] == true
	}
	return out
}

func ledBy(l leaderMap, broker int64) []int32 {
	var out []int32
	for p, v := range l {
		if v[0] == broker {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// checkMove checks the leaders after a move against the spec: partitions in
// moved have a new leader (expect[p] when given, else one of allowed) and
// leader epoch + 1; the others are unchanged.
func checkMove(what string, before, after leaderMap, moved []int32, expect map[int32]int64, allowed []int64) {
	for p := int32(0); p < numPartitions; p++ {
		b, a := before[p], after[p]
		if slices.Contains(moved, p) {
			if e, ok := expect[p]; ok {
				check(a[0] == e, "%s: partition %d leader %d, expected %d", what, p, a[0], e)
			} else {
				check(a[0] != b[0] && slices.Contains(allowed, a[0]), "%s: partition %d leader %d -> %d, expected one of %v", what, p, b[0], a[0], allowed)
			}
			check(a[1] == b[1]+1, "%s: partition %d leader epoch %d -> %d, expected +1", what, p, b[1], a[1])
		} else {
			check(a == b, "%s: partition %d not moved but [leader,epoch] %v -> %v", what, p, b, a)
		}
	}
}

// checkMetadata: a Metadata request (sent as is: kadm.Metadata would answer
// from the client's cache, up to MetadataMinAge old) names the leaders and
// leader epochs GET /topics names.
func checkMetadata(cl *kgo.Client, what string, want leaderMap) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := ctxFor(waitLimit)
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		seen := leaderMap{}
		if err == nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					seen[p.Partition] = leaderEpoch{int64(p.Leader), int64(p.LeaderEpoch)}
				}
			}
		}
		if err == nil && seen.String() == want.String() {
			return
		}
		if time.Now().After(deadline) {
			check(false, "%s: Metadata v%d [leader,epoch] %v (err %v) differ from GET /topics %v", what, req.GetVersion(), seen, err, want)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// step k (1..7) of the schedule: the admin calls, then the checks.
func step(k int, adminCl *kgo.Client, live *liveConsumer, sent int) {
	if adminURL == "" {
		emitKV("step", "step", k, "what", "none (no admin API)", "t_ms", ms(), "sent", sent, "live_consumed", live.consumed.Load())
		return
	}
	before := leaders()
	var after leaderMap
	var what string
	switch k {
	case 1, 5:
		what = "close Produce x3"
		post("/faults/close", `{"api":"Produce","count":3}`)
		faults++
		after = leaders()
		checkMove(what, before, after, nil, nil, nil)
	case 2:
		what = "leaders from 1 to 2"
		post("/leaders", `{"from":1,"to":2}`)
		moves++
		after = leaders()
		checkMove(what, before, after, ledBy(before, 1), nil, []int64{2})
	case 3:
		p := int32(0)
		if l := ledBy(before, 2); len(l) > 0 {
			p = l[0]
		}
		what = fmt.Sprintf("partition %d to 1", p)
		post("/leaders", fmt.Sprintf(`{"topic":%q,"partition":%d,"leader":1}`, topic, p))
		moves++
		after = leaders()
		checkMove(what, before, after, []int32{p}, map[int32]int64{p: 1}, nil)
	case 4:
		what = "broker 3 down"
		post("/brokers/3/down", "")
		moves++
		after = leaders()
		checkMove(what, before, after, ledBy(before, 3), nil, []int64{1, 2})
		up := brokersUp()
		check(!up[3] && up[1] && up[2], "%s: GET /cluster up flags %v", what, up)
	case 6:
		what = "broker 3 up, two partitions to 3"
		post("/brokers/3/up", "")
		mid := leaders()
		checkMove("broker 3 up", before, mid, nil, nil, nil)
		up := brokersUp()
		check(up[3], "broker 3 up: GET /cluster up flags %v", up)
		var moved []int32
		expect := map[int32]int64{}
		for p := int32(0); p < numPartitions && len(moved) < 2; p++ {
			if mid[p][0] != 3 {
				post("/leaders", fmt.Sprintf(`{"topic":%q,"partition":%d,"leader":3}`, topic, p))
				moves++
				moved = append(moved, p)
				expect[p] = 3
			}
		}
		after = leaders()
		checkMove(what, mid, after, moved, expect, nil)
	case 7:
		what = "leaders from 2 (spread)"
		post("/leaders", `{"from":2}`)
		moves++
		after = leaders()
		checkMove(what, before, after, ledBy(before, 2), nil, []int64{1, 3})
	}
	checkMetadata(adminCl, what, after)
	emitKV("step", "step", k, "what", what, "t_ms", ms(), "sent", sent, "live_consumed", live.consumed.Load(),
		"leaders_before", before, "leaders_after", after)
}

// ---------------------------------------------------------------- consumers

// liveConsumer is the group member that consumes and commits while the leaders move.
type liveConsumer struct {
	group                         string
	cl                            *kgo.Client
	consumed, redelivered         atomic.Int64
	commits, commitErrs, assigned atomic.Int64
	assignedParts                 atomic.Int64
	lastCommitErr                 atomic.Value
	target                        atomic.Pointer[map[int32]int64] // set by main: stop at these offsets
	errors                        []string
	done                          chan struct{}
	last                          map[string]int64
	next                          map[int32]int64 // next offset per partition
}

func startLive() *liveConsumer {
	l := &liveConsumer{group: prefix + "live", done: make(chan struct{}), last: map[string]int64{}, next: map[int32]int64{}}
	l.cl = newClient("live",
		kgo.ConsumerGroup(l.group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			l.assigned.Add(1)
			l.assignedParts.Add(int64(len(m[topic])))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			l.assignedParts.Add(-int64(len(m[topic])))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			l.assignedParts.Add(-int64(len(m[topic])))
		}),
	)
	go l.run()
	return l
}

func (l *liveConsumer) run() {
	defer close(l.done)
	var deadline time.Time
	for {
		ctx, cancel := ctxFor(200 * time.Millisecond)
		fs := l.cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(t string, p int32, err error) {
			if err != context.DeadlineExceeded && err != context.Canceled {
				emitKV("live_fetch_error", "t_ms", ms(), "partition", p, "error", err.Error())
			}
		})
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			v, _ := strconv.ParseInt(string(r.Value), 10, 64)
			k := string(r.Key)
			prev, ok := l.last[k]
			if !ok {
				prev = -1
			}
			switch {
			case v == prev+1:
				l.last[k] = v
			case v <= prev:
				l.redelivered.Add(1)
			default:
				l.errors = append(l.errors, fmt.Sprintf("live: key %s jumped from %d to %d at %d/%d", k, prev, v, r.Partition, r.Offset))
				l.last[k] = v
			}
			if r.Offset+1 > l.next[r.Partition] {
				l.next[r.Partition] = r.Offset + 1
			}
			l.consumed.Add(1)
		})
		if n > 0 {
			ctx, cancel := ctxFor(10 * time.Second)
			if err := l.cl.CommitUncommittedOffsets(ctx); err != nil {
				l.commitErrs.Add(1)
				l.lastCommitErr.Store(err.Error())
			} else {
				l.commits.Add(1)
			}
			cancel()
		}
		if t := l.target.Load(); t != nil {
			if deadline.IsZero() {
				deadline = time.Now().Add(waitLimit)
			}
			caught := true
			for p, end := range *t {
				caught = caught && l.next[p] >= end
			}
			if caught {
				ctx, cancel := ctxFor(10 * time.Second)
				if err := l.cl.CommitUncommittedOffsets(ctx); err != nil {
					l.errors = append(l.errors, fmt.Sprintf("live: final commit: %v", err))
				} else {
					l.commits.Add(1)
				}
				cancel()
				l.cl.Close() // leaves the group
				return
			}
			if time.Now().After(deadline) {
				l.errors = append(l.errors, fmt.Sprintf("live: not at the end offsets %v within %s (at %v)", *t, waitLimit, l.next))
				l.cl.Close()
				return
			}
		}
	}
}

type verifyResult struct {
	read, duplicates, missing, outOfOrder int64
	keys                                  int
}

func verify(total int64, n int) verifyResult {
	var res verifyResult
	cl := newClient("verify", kgo.ConsumerGroup(prefix+"verify"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	defer cl.Close()
	perKey := map[string][]int64{}
	keyPart := map[string]int32{}
	deadline := time.Now().Add(waitLimit)
	for res.read < total && time.Now().Before(deadline) {
		ctx, cancel := ctxFor(500 * time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			res.read++
			v, _ := strconv.ParseInt(string(r.Value), 10, 64)
			k := string(r.Key)
			perKey[k] = append(perKey[k], v)
			if was, ok := keyPart[k]; ok && was != r.Partition {
				check(false, "key %s on partitions %d and %d", k, was, r.Partition)
			}
			keyPart[k] = r.Partition
		})
	}
	ctx, cancel := ctxFor(10 * time.Second)
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		check(false, "verify group commit: %v", err)
	}
	cancel()
	check(res.read == total, "verify group read %d of %d records", res.read, total)
	for k := 0; k < numKeys; k++ {
		expectN := int64(n / numKeys)
		if k < n%numKeys {
			expectN++
		}
		seqs := perKey[key(k)]
		seen := map[int64]bool{}
		prev := int64(-1)
		for _, s := range seqs {
			if seen[s] {
				res.duplicates++
			} else if s != prev+1 {
				res.outOfOrder++
			}
			seen[s] = true
			prev = max(prev, s)
		}
		for s := int64(0); s < expectN; s++ {
			if !seen[s] {
				res.missing++
			}
		}
		check(int64(len(seqs)) == expectN && int64(len(seen)) == expectN,
			"key %s: read %d records (%d distinct), expected %d", key(k), len(seqs), len(seen), expectN)
	}
	res.keys = len(perKey)
	check(res.duplicates == 0, "duplicates: %d", res.duplicates)
	check(res.missing == 0, "missing: %d", res.missing)
	check(res.outOfOrder == 0, "out of order: %d", res.outOfOrder)
	return res
}

// ---------------------------------------------------------------- main

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: scenario BOOTSTRAP TOPIC_PREFIX  (env GREGOR_ADMIN_URL: the admin API; unset: no faults)")
		os.Exit(2)
	}
	bootstrap := os.Args[1]
	prefix = os.Args[2]
	seeds = strings.Split(bootstrap, ",")
	topic = prefix + "leader-move"
	if u := strings.TrimRight(os.Getenv("GREGOR_ADMIN_URL"), "/"); u != "" {
		if !strings.HasPrefix(u, "http") {
			u = "http://" + u
		}
		adminURL = u
	}
	n := 20000
	if s := os.Getenv("LEADER_MOVE_RECORDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	time.AfterFunc(150*time.Second, func() { fatal("timeout: scenario did not finish within 150s") })
	version := clientVersion()

	up := map[int64]bool{}
	if adminURL != "" {
		up = brokersUp()
	}
	emitKV("start", "client", "franz-go "+version, "bootstrap", bootstrap, "admin", adminURL, "topic", topic, "records", n, "brokers", up)
	if adminURL != "" {
		check(len(up) >= 3 && up[1] && up[2] && up[3], "GET /cluster: expected 3 live brokers, got %v", up)
		mustHTTP("DELETE", "/faults", "")
	}

	adminCl := newClient("admin")
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	ctx, cancel := ctxFor(waitLimit)
	resp, err := adm.CreateTopic(ctx, numPartitions, 1, nil, topic)
	cancel()
	if err != nil || resp.Err != nil {
		fatal("create topic %s: %v %v", topic, err, resp.Err)
	}
	if adminURL != "" {
		initial := leaders()
		spread := map[int64]bool{}
		for _, v := range initial {
			spread[v[0]] = true
		}
		emitKV("topic", "topic", topic, "leaders", initial)
		check(len(spread) == 3 && spread[1] && spread[2] && spread[3], "new topic's partitions not led by brokers 1-3: %v", initial)
		checkMetadata(adminCl, "created", initial)
	}

	live := startLive()
	wait := time.Now().Add(waitLimit)
	for live.assignedParts.Load() < numPartitions && time.Now().Before(wait) {
		time.Sleep(50 * time.Millisecond)
	}
	check(live.assignedParts.Load() == numPartitions, "live consumer assigned %d partitions within %s", live.assignedParts.Load(), waitLimit)
	emitKV("live_assigned", "t_ms", ms(), "partitions", live.assignedParts.Load())

	// ---- produce, with the schedule
	var disconnects, produceFailed atomic.Int64
	producer := newClient("producer",
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordDeliveryTimeout(40*time.Second),
		kgo.WithHooks(producerHooks{&disconnects, &produceFailed}),
	)
	var (
		sendErrs []string
		errMu    sync.Mutex
		acked    atomic.Int64
		keyPart  sync.Map
		wg       sync.WaitGroup
	)
	nextSeq := make([]int64, numKeys)
	produceStart := ms()
	stepAt := 1
	for i := 0; i < n; i++ {
		if stepAt < steps && i == n*stepAt/steps {
			step(stepAt, adminCl, live, i)
			stepAt++
		}
		k := i % numKeys
		seq := nextSeq[k]
		nextSeq[k]++
		wg.Add(1)
		producer.Produce(context.Background(), &kgo.Record{Key: []byte(key(k)), Value: []byte(strconv.FormatInt(seq, 10))},
			func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					errMu.Lock()
					sendErrs = append(sendErrs, fmt.Sprintf("%s=%d: %v", key(k), seq, err))
					errMu.Unlock()
					return
				}
				acked.Add(1)
				if was, loaded := keyPart.LoadOrStore(k, r.Partition); loaded && was.(int32) != r.Partition {
					errMu.Lock()
					sendErrs = append(sendErrs, fmt.Sprintf("%s acknowledged on partitions %d and %d", key(k), was, r.Partition))
					errMu.Unlock()
				}
			})
		if i%100 == 99 {
			time.Sleep(15 * time.Millisecond) // spread the sends over a few seconds, so the moves meet traffic
		}
	}
	ctx, cancel = ctxFor(60 * time.Second)
	if err := producer.Flush(ctx); err != nil {
		check(false, "producer flush: %v", err)
	}
	cancel()
	wg.Wait()
	producer.Close()
	produceMs := ms() - produceStart
	errMu.Lock()
	first := append([]string{}, sendErrs[:min(5, len(sendErrs))]...)
	emitKV("produced", "records", n, "acked", acked.Load(), "errors", len(sendErrs), "disconnects", disconnects.Load(),
		"produce_requests_failed", produceFailed.Load(), "produce_ms", produceMs, "first_errors", first)
	check(len(sendErrs) == 0, "producer errors: %d, first %v", len(sendErrs), first)
	errMu.Unlock()
	check(acked.Load() == int64(n), "acknowledged %d of %d", acked.Load(), n)

	if adminURL != "" {
		emitKV("faults_left", "faults", mustHTTP("GET", "/faults", ""))
	}

	// ---- the log holds exactly N records
	ctx, cancel = ctxFor(waitLimit)
	ends, err := adm.ListEndOffsets(ctx, topic)
	cancel()
	if err != nil {
		fatal("list end offsets: %v", err)
	}
	end := map[int32]int64{}
	endJSON := map[string]int64{}
	var logRecords int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			check(false, "end offset of partition %d: %v", o.Partition, o.Err)
		}
		end[o.Partition] = o.Offset
		endJSON[strconv.Itoa(int(o.Partition))] = o.Offset
		logRecords += o.Offset
	})
	emitKV("end_offsets", "end", endJSON, "sum", logRecords)
	check(len(end) == numPartitions, "end offsets for %d partitions", len(end))
	check(logRecords == int64(n), "end offsets sum to %d, expected %d (duplicates in the log?)", logRecords, n)

	// ---- the live group reaches the end and commits it
	live.target.Store(&end)
	select {
	case <-live.done:
	case <-time.After(waitLimit + 15*time.Second):
		check(false, "live consumer still running")
	}
	for _, e := range live.errors {
		check(false, "%s", e)
	}
	ctx, cancel = ctxFor(waitLimit)
	committed, err := adm.FetchOffsets(ctx, live.group)
	cancel()
	committedJSON := map[string]int64{}
	if err != nil {
		check(false, "fetch offsets of %s: %v", live.group, err)
	} else {
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic {
				committedJSON[strconv.Itoa(int(o.Partition))] = o.At
			}
		})
	}
	check(mapsEqual(committedJSON, endJSON), "live group committed %v, end offsets %v", committedJSON, endJSON)
	lastErr, _ := live.lastCommitErr.Load().(string)
	emitKV("live", "consumed", live.consumed.Load(), "redelivered", live.redelivered.Load(), "commits", live.commits.Load(),
		"commit_errors", live.commitErrs.Load(), "last_commit_error", lastErr, "assignments", live.assigned.Load(),
		"committed", committedJSON)

	// ---- a new group reads everything
	v := verify(logRecords, n)
	emitKV("verify", "read", v.read, "duplicates", v.duplicates, "missing", v.missing, "out_of_order", v.outOfOrder, "keys", v.keys)

	ok := len(failures) == 0
	emitKV("summary", "ok", ok, "client", "franz-go "+version, "records", n, "acked", acked.Load(), "log_records", logRecords,
		"read", v.read, "duplicates", v.duplicates, "missing", v.missing, "out_of_order", v.outOfOrder,
		"producer_errors", len(sendErrs), "producer_disconnects", disconnects.Load(),
		"produce_requests_failed", produceFailed.Load(), "moves", moves, "faults", faults,
		"live_consumed", live.consumed.Load(), "live_redelivered", live.redelivered.Load(), "live_commits", live.commits.Load(),
		"live_commit_errors", live.commitErrs.Load(), "produce_ms", produceMs, "elapsed_ms", ms(), "failures", failures)
	if !ok {
		os.Exit(1)
	}
	fmt.Printf("RESULT franz-go-leader-move %s ok\n", version)
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// producerHooks counts the producer's broker connections that ended (a
// closed connection after a processed Produce, a broker taken down) and its
// Produce requests that got no response (written or read with an error).
type producerHooks struct{ disconnects, produceFailed *atomic.Int64 }

func (h producerHooks) OnBrokerDisconnect(_ kgo.BrokerMetadata, _ net.Conn) { h.disconnects.Add(1) }

func (h producerHooks) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key == 0 && e2e.Err() != nil {
		h.produceFailed.Add(1)
	}
}
