package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/raptormq/raptor/reliable"
)

func init() {
	register("stat", command{
		summary: "live counters of a running broker, gateway or proxy (scrapes its --metrics endpoint)",
		run:     runStat,
	})
}

const statUsage = `Usage: raptor stat [flags]

Scrapes the Prometheus endpoint of a running raptor broker, gateway or proxy
(started with --metrics ADDR) and prints its raptor_* counters: first the
totals since the endpoint started, then one row per interval with the rates
over that interval (tx/rx packets and MB per second, retransmits, RTOs, NAKs
and drops per second, with a line of drops by reason when there were any, and
one of limits and violations: budgets that held a peer back, peers closed for
breaking the protocol),
the live sessions and streams, the smoothed RTT, the congestion window, the
bytes in flight, and for a gateway or proxy its relayed connections.

Example:
  raptor gateway --metrics 127.0.0.1:9464 ...
  raptor stat --url http://127.0.0.1:9464/metrics --interval 1s

With --json every scrape is one JSON object per line: the counters and
gauges (raptor_ prefix and _total suffix removed; drops/<reason>,
relay_bytes/<direction>) and, from the second scrape on, the rates per
second. --count N stops after N scrapes (default: until Ctrl-C).

Flags:
`

func runStat(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return statMain(ctx, args, stdout, stderr)
}

// statMain runs raptor stat until ctx ends or --count scrapes are done.
func statMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("raptor stat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, statUsage); fs.PrintDefaults() }
	target := fs.String("url", "http://127.0.0.1:9464/metrics", "metrics URL of the endpoint")
	interval := fs.Duration("interval", time.Second, "time between scrapes")
	count := fs.Int("count", 0, "stop after this many scrapes (0: until interrupted)")
	asJSON := fs.Bool("json", false, "print one JSON object per scrape instead of the table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "raptor stat: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if u, err := url.Parse(*target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "raptor stat: --url %q: want http://host:port/metrics\n", *target)
		return 2
	}
	if *interval <= 0 {
		fmt.Fprintf(stderr, "raptor stat: --interval %v must be positive\n", *interval)
		return 2
	}
	if *count < 0 {
		fmt.Fprintf(stderr, "raptor stat: --count %d must not be negative\n", *count)
		return 2
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: max(*interval, 5*time.Second)}
	var out statPrinter = &statTable{w: stdout, url: *target, interval: *interval}
	if *asJSON {
		out = &statJSON{enc: json.NewEncoder(stdout)}
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	code := 0
	var prev *statSample
	for n := 0; *count == 0 || n < *count; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				return code
			case <-tick.C:
			}
		}
		cur, err := scrape(ctx, client, *target)
		if err != nil {
			if ctx.Err() != nil {
				return code
			}
			fmt.Fprintf(stderr, "raptor stat: %v\n", err)
			if n == 0 {
				return 1
			}
			code, prev = 1, nil // rates restart from the next good scrape
			continue
		}
		if prev != nil {
			cur.rates(prev)
		}
		if err := out.print(cur); err != nil {
			fmt.Fprintf(stderr, "raptor stat: %v\n", err)
			return 1
		}
		prev = cur
	}
	return code
}

// ScrapeError reports a failed scrape of a metrics URL.
type ScrapeError struct {
	URL    string
	Status int   // HTTP status, if one came back
	Err    error // the cause, if any
}

// Error names the URL and what went wrong.
func (e *ScrapeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("scrape %s: %v", e.URL, e.Err)
	}
	return fmt.Sprintf("scrape %s: HTTP status %d", e.URL, e.Status)
}

// Unwrap returns the cause.
func (e *ScrapeError) Unwrap() error { return e.Err }

// statSample is one scrape, summed over the series of each metric (over
// endpoint labels, say), keeping only the reason and direction labels.
type statSample struct {
	Time      time.Time          `json:"time"`
	Endpoints []string           `json:"endpoints,omitempty"` // values of the endpoint label
	Counters  map[string]float64 `json:"counters"`
	Gauges    map[string]float64 `json:"gauges"`
	Interval  float64            `json:"interval_seconds,omitempty"` // since the previous scrape
	Rates     map[string]float64 `json:"rates,omitempty"`            // counters per second over Interval
}

// Keys of statSample (metric names without raptor_ and _total, then
// "/reason" for a family): the Raptor counters' keys come from reliable's
// counter table, which also names the Prometheus metrics.
var (
	kPktTx, kPktRx       = reliable.CounterPacketsSent.String(), reliable.CounterPacketsReceived.String()
	kBytesTx, kBytesRx   = reliable.CounterBytesSent.String(), reliable.CounterBytesReceived.String()
	kRetx, kRTO          = reliable.CounterRetransmits.String(), reliable.CounterRTOs.String()
	kNakTx, kNakRx       = reliable.CounterNaksSent.String(), reliable.CounterNaksReceived.String()
	kSessOpen, kSessDone = reliable.CounterSessionsOpened.String(), reliable.CounterSessionsClosed.String()
	kStrmOpen, kStrmDone = reliable.CounterStreamsOpened.String(), reliable.CounterStreamsClosed.String()
	kDropPrefix          = reliable.CounterDropsMalformed.Info().Family + "/"
)

const (
	kSRTT, kCwnd, kFlight = "srtt_seconds", "cwnd_bytes", "bytes_in_flight"
	kBufs                 = "buffer_bytes"
	kRelayActive          = "relay_active"
	kRelayAccepted        = "relay_accepted"
	kRelayUp, kRelayDown  = "relay_bytes/up", "relay_bytes/down"
	kRelayUpErr           = "relay_upstream_errors"
)

func scrape(ctx context.Context, client *http.Client, target string) (*statSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, &ScrapeError{URL: target, Err: err}
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &ScrapeError{URL: target, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &ScrapeError{URL: target, Status: resp.StatusCode}
	}
	s := &statSample{Time: time.Now(), Counters: map[string]float64{}, Gauges: map[string]float64{}}
	eps := map[string]bool{}
	dec := expfmt.NewDecoder(io.LimitReader(resp.Body, 32<<20), expfmt.ResponseFormat(resp.Header))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			break
		} else if err != nil {
			return nil, &ScrapeError{URL: target, Err: fmt.Errorf("parse: %w", err)}
		}
		name, ok := strings.CutPrefix(mf.GetName(), "raptor_")
		if !ok {
			continue
		}
		counter := mf.GetType() == dto.MetricType_COUNTER ||
			mf.GetType() == dto.MetricType_UNTYPED && strings.HasSuffix(name, "_total")
		name = strings.TrimSuffix(name, "_total")
		for _, m := range mf.GetMetric() {
			key := name
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "reason", "direction":
					key += "/" + lp.GetValue()
				case "endpoint":
					eps[lp.GetValue()] = true
				}
			}
			switch {
			case counter:
				s.Counters[key] += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			case key == kSRTT || key == kCwnd: // the largest, as an endpoint reports them
				s.Gauges[key] = max(s.Gauges[key], m.GetGauge().GetValue()+m.GetUntyped().GetValue())
			default:
				s.Gauges[key] += m.GetGauge().GetValue() + m.GetUntyped().GetValue()
			}
		}
	}
	if len(s.Counters)+len(s.Gauges) == 0 {
		return nil, &ScrapeError{URL: target, Err: errors.New("no raptor_* metrics (is it a raptor --metrics endpoint?)")}
	}
	s.Endpoints = slices.Sorted(maps.Keys(eps))
	return s, nil
}

// rates fills s.Rates from the counters of prev. A counter that went down
// (the endpoint restarted) counts from zero.
func (s *statSample) rates(prev *statSample) {
	dt := s.Time.Sub(prev.Time).Seconds()
	if dt <= 0 {
		return
	}
	s.Interval = dt
	s.Rates = make(map[string]float64, len(s.Counters))
	for k, v := range s.Counters {
		p, ok := prev.Counters[k]
		if !ok {
			continue
		}
		if v < p {
			p = 0
		}
		s.Rates[k] = (v - p) / dt
	}
}

func (s *statSample) has(key string) bool {
	_, c := s.Counters[key]
	_, g := s.Gauges[key]
	return c || g
}

// drops returns the drop counters (or rates) by reason, and their sum.
func drops(m map[string]float64) (byReason []string, total float64) {
	return reasons(m, kDropPrefix)
}

// budgetFamilies are the counter families with a reason other than drops
// (limits and violations), in the order of reliable's counter table.
var budgetFamilies = func() []string {
	var fs []string
	for c := range reliable.NumCounters {
		if i := c.Info(); i.Reason != "" && i.Family+"/" != kDropPrefix && !slices.Contains(fs, i.Family) {
			fs = append(fs, i.Family)
		}
	}
	return fs
}()

// budgets formats the non-zero limit and violation counters (or rates):
// "limits: memory=3 receive_budget=12; violations: optimistic_ack=1".
func budgets(m map[string]float64) string {
	var parts []string
	for _, f := range budgetFamilies {
		if byReason, _ := reasons(m, f+"/"); len(byReason) > 0 {
			parts = append(parts, f+": "+strings.Join(byReason, " "))
		}
	}
	return strings.Join(parts, "; ")
}

// reasons returns the counters (or rates) under prefix by reason, and
// their sum.
func reasons(m map[string]float64, prefix string) (byReason []string, total float64) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if r, ok := strings.CutPrefix(k, prefix); ok {
			total += m[k]
			if m[k] > 0 {
				byReason = append(byReason, fmt.Sprintf("%s=%s", r, si(m[k])))
			}
		}
	}
	return byReason, total
}

type statPrinter interface{ print(*statSample) error }

type statJSON struct{ enc *json.Encoder }

func (p *statJSON) print(s *statSample) error { return p.enc.Encode(s) }

// statTable prints a header and the totals, then one row per sample.
type statTable struct {
	w        io.Writer
	url      string
	interval time.Duration
	rows     int
	raptor   bool // Raptor columns shown
	relay    bool // relay columns shown
}

const statHeaderEvery = 20

func (p *statTable) print(s *statSample) error {
	var b strings.Builder
	if s.Rates == nil {
		p.rows = 0
		p.raptor, p.relay = s.has(kPktTx), s.has(kRelayAccepted)
		p.totals(&b, s)
	} else {
		if p.rows%statHeaderEvery == 0 {
			p.header(&b)
		}
		p.rows++
		p.row(&b, s)
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

func (p *statTable) totals(b *strings.Builder, s *statSample) {
	who := ""
	if len(s.Endpoints) > 0 {
		who = " (endpoint " + strings.Join(s.Endpoints, ", ") + ")"
	}
	fmt.Fprintf(b, "raptor stat: %s%s every %v\n", p.url, who, p.interval)
	c := s.Counters
	if p.raptor {
		byReason, total := drops(c)
		fmt.Fprintf(b, "  raptor: %s pkts tx, %s rx, %s tx, %s rx, %s retransmits, %s RTOs, %s NAKs tx, %s rx, %s drops",
			si(c[kPktTx]), si(c[kPktRx]), bytesSI(c[kBytesTx]), bytesSI(c[kBytesRx]), si(c[kRetx]), si(c[kRTO]),
			si(c[kNakTx]), si(c[kNakRx]), si(total))
		if len(byReason) > 0 {
			fmt.Fprintf(b, " (%s)", strings.Join(byReason, " "))
		}
		fmt.Fprintf(b, "; %s sessions (%s live), %s streams (%s live); srtt %s, cwnd %s\n",
			si(c[kSessOpen]), si(c[kSessOpen]-c[kSessDone]), si(c[kStrmOpen]), si(c[kStrmOpen]-c[kStrmDone]),
			rtt(s.Gauges[kSRTT]), bytesSI(s.Gauges[kCwnd]))
		if bs := budgets(c); bs != "" {
			fmt.Fprintf(b, "  %s\n", bs)
		}
	}
	if p.relay {
		fmt.Fprintf(b, "  relay: %s connections (%s active), %s up, %s down, %s upstream errors\n",
			si(c[kRelayAccepted]), si(s.Gauges[kRelayActive]), bytesSI(c[kRelayUp]), bytesSI(c[kRelayDown]), si(c[kRelayUpErr]))
	}
}

const (
	statRaptorCols = " %8s %8s %8s %8s %7s %6s %6s %7s %5s %5s %8s %7s %8s %7s"
	statRelayCols  = " | %5s %6s %8s %8s %7s"
)

func (p *statTable) header(b *strings.Builder) {
	fmt.Fprintf(b, "%-8s", "time")
	if p.raptor {
		fmt.Fprintf(b, statRaptorCols, "tx pkt/s", "rx pkt/s", "tx MB/s", "rx MB/s", "retx/s", "rto/s", "nak/s", "drop/s",
			"sess", "strm", "srtt", "cwnd", "inflight", "bufs")
	}
	if p.relay {
		fmt.Fprintf(b, statRelayCols, "conns", "conn/s", "up MB/s", "dn MB/s", "uperr/s")
	}
	b.WriteByte('\n')
}

func (p *statTable) row(b *strings.Builder, s *statSample) {
	c, r, g := s.Counters, s.Rates, s.Gauges
	byReason, dropRate := drops(r)
	fmt.Fprintf(b, "%-8s", s.Time.Format("15:04:05"))
	if p.raptor {
		fmt.Fprintf(b, statRaptorCols,
			si(r[kPktTx]), si(r[kPktRx]), mb(r[kBytesTx]), mb(r[kBytesRx]), si(r[kRetx]), si(r[kRTO]),
			si(r[kNakTx]+r[kNakRx]), si(dropRate),
			si(c[kSessOpen]-c[kSessDone]), si(c[kStrmOpen]-c[kStrmDone]), rtt(g[kSRTT]), bytesSI(g[kCwnd]), bytesSI(g[kFlight]), bytesSI(g[kBufs]))
	}
	if p.relay {
		fmt.Fprintf(b, statRelayCols, si(g[kRelayActive]), si(r[kRelayAccepted]), mb(r[kRelayUp]), mb(r[kRelayDown]), si(r[kRelayUpErr]))
	}
	b.WriteByte('\n')
	if len(byReason) > 0 {
		fmt.Fprintf(b, "%-8s drops/s: %s\n", "", strings.Join(byReason, " "))
	}
	if bs := budgets(r); bs != "" {
		fmt.Fprintf(b, "%-8s per second: %s\n", "", bs)
	}
}

// si formats a count or rate compactly: 950, 12.3k, 4.56M.
func si(v float64) string {
	switch a := max(v, -v); {
	case a >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a == float64(int64(a)):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// mb formats bytes per second as MB/s.
func mb(v float64) string { return fmt.Sprintf("%.2f", v/1e6) }

// bytesSI formats a byte count: 900B, 64.0KB, 1.25MB.
func bytesSI(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fGB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fMB", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fKB", v/1e3)
	default:
		return fmt.Sprintf("%.0fB", v)
	}
}

// rtt formats seconds as 87µs, 1.23ms or 1.50s; "-" before a sample.
func rtt(sec float64) string {
	switch {
	case sec <= 0:
		return "-"
	case sec < 1e-3:
		return fmt.Sprintf("%.0fµs", sec*1e6)
	case sec < 1:
		return fmt.Sprintf("%.2fms", sec*1e3)
	default:
		return fmt.Sprintf("%.2fs", sec)
	}
}
