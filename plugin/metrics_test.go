package plugin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/raptormq/raptor/reliable"
)

// gather returns every sample of reg keyed as name{label="value",...},
// labels sorted by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"=\""+lp.GetValue()+"\"")
			}
			sort.Strings(ls)
			key := f.GetName() + "{" + strings.Join(ls, ",") + "}"
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			default:
				t.Fatalf("%s: unexpected type %v", key, f.GetType())
			}
			if _, dup := out[key]; dup {
				t.Fatalf("duplicate sample %s", key)
			}
			out[key] = v
		}
	}
	return out
}

// distinctStats sets counter i of a Stats to i+1 and the gauges to the
// next values (seconds for the RTT).
func distinctStats() reliable.Stats {
	var st reliable.Stats
	for i := range st.Counters {
		st.Counters[i] = uint64(i + 1)
	}
	n := len(st.Counters)
	st.SmoothedRTT = time.Duration(n+1) * time.Second
	st.CongestionWindow = uint64(n + 2)
	st.BytesInFlight = uint64(n + 3)
	st.DatagramSize = n + 4
	st.BufferBytes = uint64(n + 5)
	return st
}

// statNames names the values of distinctStats, by value.
func statNames() []string {
	var names []string
	for c := range reliable.NumCounters {
		names = append(names, "counter "+c.String())
	}
	return append(names, "SmoothedRTT", "CongestionWindow", "BytesInFlight", "DatagramSize", "BufferBytes")
}

// TestStatNamesEveryField: distinctStats and statNames list every field of
// reliable.Stats (Counters and each gauge), so a field added there fails
// TestCollectorEveryField until it is exported.
func TestStatNamesEveryField(t *testing.T) {
	typ := reflect.TypeFor[reliable.Stats]()
	names := statNames()[reliable.NumCounters:]
	if got := typ.NumField() - 1; got != len(names) {
		t.Fatalf("reliable.Stats has %d gauge fields, statNames lists %d (%v): add the new field to distinctStats, statNames and statMetrics", got, len(names), names)
	}
	for i, name := range names {
		if f := typ.Field(i + 1); f.Name != name {
			t.Errorf("reliable.Stats field %d is %s, statNames says %s", i+1, f.Name, name)
		}
	}
}

// TestCollectorEveryField checks that every field of reliable.Stats and of
// RelayStats is exported once, under the constant labels.
func TestCollectorEveryField(t *testing.T) {
	st := distinctStats()
	rs := RelayStats{Accepted: 101, Active: 102, Rejected: 103, UpstreamErrors: 104, Completed: 105,
		Drained: 106, ForceClosed: 107, Refused: 108, BytesUp: 109, BytesDown: 110,
		SourceRejected: 111, IdleClosed: 112, UpstreamActive: 113}
	c := newCollector(func() reliable.Stats { return st }, func() RelayStats { return rs }, prometheus.Labels{"endpoint": "gw"})
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	got := gather(t, reg)
	nStats := len(statNames())
	nRelay := reflect.TypeFor[RelayStats]().NumField()
	if len(got) != nStats+nRelay {
		t.Errorf("%d samples, want %d (one per field of reliable.Stats and RelayStats): %v", len(got), nStats+nRelay, got)
	}
	byValue := map[float64]string{}
	for k, v := range got {
		if !strings.HasPrefix(k, "raptor_") || !strings.Contains(k, `endpoint="gw"`) {
			t.Errorf("sample %s: want the raptor_ prefix and the endpoint label", k)
		}
		byValue[v] = k
	}
	for i := range nStats {
		if _, ok := byValue[float64(i+1)]; !ok {
			t.Errorf("reliable.Stats %s (value %d) not exported", statNames()[i], i+1)
		}
	}
	for i := range nRelay {
		if _, ok := byValue[float64(101+i)]; !ok {
			t.Errorf("field RelayStats.%s (value %d) not exported", reflect.TypeFor[RelayStats]().Field(i).Name, 101+i)
		}
	}
	for key, want := range map[string]float64{
		`raptor_drops_total{endpoint="gw",reason="malformed"}`:     float64(st.Counters[reliable.CounterDropsMalformed]),
		`raptor_drops_total{endpoint="gw",reason="accept_queue"}`:  float64(st.Counters[reliable.CounterDropsAcceptQueue]),
		`raptor_srtt_seconds{endpoint="gw"}`:                       st.SmoothedRTT.Seconds(),
		`raptor_relay_bytes_total{direction="down",endpoint="gw"}`: 110,
		`raptor_relay_active{endpoint="gw"}`:                       102,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}

// TestCollectorLoopbackSession moves data over a real Raptor session on
// loopback and checks that the scraped values are the Stats of both ends.
func TestCollectorLoopbackSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ln, err := reliable.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 256 << 10
	read := make(chan error, 1)
	go func() {
		st, err := ln.AcceptStream(ctx)
		if err != nil {
			read <- err
			return
		}
		defer st.Close()
		n, err := io.Copy(io.Discard, st)
		if err == nil && n != size {
			err = errors.New("short read")
		}
		read <- err
	}()
	sess, err := reliable.Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	st, err := sess.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := st.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	client, err := NewCollector(CollectorConfig{Stats: sess.Stats, Labels: prometheus.Labels{"endpoint": "client"}})
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewCollector(CollectorConfig{Stats: ln.Stats, Labels: prometheus.Labels{"endpoint": "server"}})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(client, server)

	// Live values that no longer change once the reader saw EOF.
	live := gather(t, reg)
	if v := live[`raptor_sessions_opened_total{endpoint="server"}`]; v != 1 {
		t.Errorf("server sessions opened %v, want 1", v)
	}
	if v := live[`raptor_stream_bytes_received_total{endpoint="server"}`]; v != size {
		t.Errorf("server stream bytes received %v, want %d", v, size)
	}

	// Closed, both ends are final: the scrape must equal Stats exactly.
	sess.Close()
	<-sess.Done()
	ln.Close()
	got := gather(t, reg)
	for end, s := range map[string]reliable.Stats{"client": sess.Stats(), "server": ln.Stats()} {
		lbl := `{endpoint="` + end + `"}`
		for name, want := range map[string]float64{
			"raptor_packets_sent_total":          float64(s.Counters[reliable.CounterPacketsSent]),
			"raptor_packets_received_total":      float64(s.Counters[reliable.CounterPacketsReceived]),
			"raptor_bytes_sent_total":            float64(s.Counters[reliable.CounterBytesSent]),
			"raptor_bytes_received_total":        float64(s.Counters[reliable.CounterBytesReceived]),
			"raptor_stream_bytes_sent_total":     float64(s.Counters[reliable.CounterStreamBytesSent]),
			"raptor_stream_bytes_received_total": float64(s.Counters[reliable.CounterStreamBytesReceived]),
			"raptor_retransmits_total":           float64(s.Counters[reliable.CounterRetransmits]),
			"raptor_acks_sent_total":             float64(s.Counters[reliable.CounterAcksSent]),
			"raptor_acks_received_total":         float64(s.Counters[reliable.CounterAcksReceived]),
			"raptor_sessions_opened_total":       float64(s.Counters[reliable.CounterSessionsOpened]),
			"raptor_sessions_closed_total":       float64(s.Counters[reliable.CounterSessionsClosed]),
			"raptor_streams_opened_total":        float64(s.Counters[reliable.CounterStreamsOpened]),
			"raptor_srtt_seconds":                s.SmoothedRTT.Seconds(),
			"raptor_cwnd_bytes":                  float64(s.CongestionWindow),
		} {
			if got[name+lbl] != want {
				t.Errorf("%s%s = %v, Stats say %v", name, lbl, got[name+lbl], want)
			}
		}
		if s.Counters[reliable.CounterPacketsSent] == 0 || s.Counters[reliable.CounterPacketsReceived] == 0 || s.Counters[reliable.CounterAcksSent]+s.Counters[reliable.CounterAcksReceived] == 0 {
			t.Errorf("%s: no traffic counted: %+v", end, s)
		}
	}
	if v := got[`raptor_stream_bytes_sent_total{endpoint="client"}`]; v != size {
		t.Errorf("client stream bytes sent %v, want %d", v, size)
	}
	if v := got[`raptor_drops_total{endpoint="server",reason="malformed"}`]; v != float64(ln.Stats().Counters[reliable.CounterDropsMalformed]) {
		t.Errorf("server malformed drops %v, Stats say %d", v, ln.Stats().Counters[reliable.CounterDropsMalformed])
	}
}

func TestSumStats(t *testing.T) {
	a, b := distinctStats(), distinctStats()
	b.SmoothedRTT, b.CongestionWindow = time.Hour, 1<<40
	sum := SumStats(func() reliable.Stats { return a }, nil, func() reliable.Stats { return b })()
	for c := range reliable.NumCounters {
		if g, w := sum.Counters[c], 2*a.Counters[c]; g != w {
			t.Errorf("counter %s = %d, want the sum %d", c, g, w)
		}
	}
	if sum.SmoothedRTT != time.Hour {
		t.Errorf("SmoothedRTT %v, want the largest (1h)", sum.SmoothedRTT)
	}
	if sum.CongestionWindow != 1<<40 {
		t.Errorf("CongestionWindow %d, want the largest", sum.CongestionWindow)
	}
	if sum.BytesInFlight != 2*a.BytesInFlight {
		t.Errorf("BytesInFlight %d, want the sum %d", sum.BytesInFlight, 2*a.BytesInFlight)
	}
}

func TestListenerStats(t *testing.T) {
	tr := New()
	defer tr.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if _, ok := ListenerStats(tcp); ok {
		t.Error("a TCP listener reported Raptor stats")
	}
	dual, err := tr.ListenDual("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	src, ok := ListenerStats(tcp, dual)
	if !ok {
		t.Fatal("the Raptor listener inside ListenDual was not found")
	}
	c, err := tr.Dial(t.Context(), "raptor://"+dual.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if src().Counters[reliable.CounterSessionsOpened] != 1 {
		t.Errorf("sessions opened %d, want 1", src().Counters[reliable.CounterSessionsOpened])
	}
}

func TestNewCollectorErrors(t *testing.T) {
	if _, err := NewCollector(CollectorConfig{}); !errors.Is(err, ErrNoMetricsSource) {
		t.Errorf("no source: %v", err)
	}
	src := func() reliable.Stats { return reliable.Stats{} }
	for _, label := range []string{"reason", "direction", "bad-name", "__x", ""} {
		_, err := NewCollector(CollectorConfig{Stats: src, Labels: prometheus.Labels{label: "v"}})
		var le *LabelError
		if !errors.As(err, &le) || le.Label != label || !strings.Contains(err.Error(), `"`+label+`"`) {
			t.Errorf("label %q: %v", label, err)
		}
	}
}

func TestServeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newCollector(func() reliable.Stats {
		return statsWith(map[reliable.Counter]uint64{reliable.CounterPacketsSent: 7, reliable.CounterDropsBadCookie: 2})
	}, nil, prometheus.Labels{"endpoint": "t"})
	reg.MustRegister(c)
	if n := testutil.CollectAndCount(c, "raptor_packets_sent_total"); n != 1 {
		t.Errorf("%d raptor_packets_sent_total samples, want 1", n)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := ServeMetricsListener(ln, reg)
	defer stop(context.Background())
	resp, err := http.Get("http://" + ln.Addr().String() + MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	for _, want := range []string{
		`raptor_packets_sent_total{endpoint="t"} 7`,
		`raptor_drops_total{endpoint="t",reason="bad_cookie"} 2`,
		"# TYPE raptor_srtt_seconds gauge",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := stop(ctx); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + MetricsPath); err == nil {
		t.Error("still serving after stop")
	}

	stop2, err := ServeMetrics("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop2(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	var le *ListenError
	if _, err := ServeMetrics("127.0.0.1:notaport", reg); !errors.As(err, &le) || !strings.Contains(le.Endpoint, "127.0.0.1:notaport") {
		t.Errorf("bad address: %v", err)
	}
}

// statsWith returns Stats with the given counters set.
func statsWith(m map[reliable.Counter]uint64) reliable.Stats {
	var st reliable.Stats
	for c, v := range m {
		st.Counters[c] = v
	}
	return st
}
