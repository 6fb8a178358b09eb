// otel-sender: an application instrumented with the OpenTelemetry Go SDK that exports the seed
// document's eight metric families over OTLP/gRPC, for Cardinal's ecosystem tests.
//
// Every round it records new data points with fresh ids and secrets (uuids, pids, session
// epochs, ISO timestamps, email addresses, paths and SQL literals), as a real service would,
// then flushes them to the Collector (one OTLP export per round). The SDK keeps cumulative
// temporality and, as for any instrumented service, every attribute set it has seen: later
// exports carry the earlier series too. Besides the eight families it records a histogram
// (http.server.request.duration, unit s) with well-behaved attributes, and its resource has
// service.name, service.instance.id and more, so the prometheusremotewrite exporter writes
// job, instance and target_info.
//
// With --report it writes what it sent as JSON (the raw sensitive values per family, the
// histogram's totals), so a test can check that none of them reached Prometheus.
//
// Exit status 0 only if every export was accepted.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

type options struct {
	endpoint   string
	rounds     int
	interval   time.Duration
	service    string
	instance   string
	perRound   int
	reportPath string
	timeout    time.Duration
	extra      int
}

// report is what the sender wrote to --report: enough for a test to know what must never be
// stored (the raw values) and what must be (names, the histogram's totals).
type report struct {
	Service   string              `json:"service_name"`
	Instance  string              `json:"service_instance_id"`
	Rounds    int                 `json:"rounds"`
	Exports   int                 `json:"exports"`
	Families  []string            `json:"families"` // the seed's eight, as named in Prometheus
	Extra     []string            `json:"extra_families"`
	Sensitive map[string][]string `json:"sensitive"` // "family/label" -> raw values sent
	Histogram histogramReport     `json:"histogram"`
}

type histogramReport struct {
	Name       string            `json:"name"`
	Attributes map[string]string `json:"attributes"`
	Count      uint64            `json:"count"`
	Sum        float64           `json:"sum"`
	Bounds     []float64         `json:"bounds"`
}

var seedFamilies = []string{
	"checkout_request_latency_seconds",
	"order_payment_failures_total",
	"process_cpu_percent",
	"temp_file_size_bytes",
	"auth_event_count",
	"user_login_total",
	"api_request_count",
	"db_query_duration_seconds",
}

var histogramBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

func main() {
	var o options
	flag.StringVar(&o.endpoint, "endpoint", "127.0.0.1:4317", "OTLP/gRPC endpoint (host:port, plaintext)")
	flag.IntVar(&o.rounds, "rounds", 5, "number of rounds; each records fresh points and exports once")
	flag.DurationVar(&o.interval, "interval", time.Second, "time between rounds")
	flag.StringVar(&o.service, "service-name", "checkout", "resource service.name")
	flag.StringVar(&o.instance, "service-instance-id", "", "resource service.instance.id (default: a fresh uuid)")
	flag.IntVar(&o.perRound, "per-round", 3, "fresh series per family per round")
	flag.StringVar(&o.reportPath, "report", "", "write what was sent to this JSON file")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Second, "deadline for each export, retries included")
	flag.IntVar(&o.extra, "extra-families", 0, "also export this many well-behaved gauges app_queue_depth_<i>{queue} (more metric names to spread over load-balanced backends)")
	flag.Parse()
	if o.instance == "" {
		o.instance = uuid()
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "otel-sender:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	exp, err := otlpmetricgrpc.New(ctx,
		otlpmetricgrpc.WithEndpoint(o.endpoint),
		otlpmetricgrpc.WithInsecure(),
		otlpmetricgrpc.WithTimeout(5*time.Second),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{
			Enabled:         true,
			InitialInterval: 100 * time.Millisecond,
			MaxInterval:     time.Second,
			MaxElapsedTime:  o.timeout,
		}))
	if err != nil {
		return fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", o.service),
			attribute.String("service.instance.id", o.instance),
			attribute.String("service.version", "1.4.2"),
			attribute.String("deployment.environment.name", "prod"),
			attribute.String("cloud.region", "us-east"),
		))
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	// A long interval: exports happen only when the loop flushes, once per round.
	reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(reader),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "http.server.request.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
				Boundaries: histogramBounds,
			}})))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	in, err := newInstruments(mp.Meter("cardinal.tests/otel-sender"), o.extra)
	if err != nil {
		return err
	}
	rep := report{
		Service:   o.service,
		Instance:  o.instance,
		Families:  append([]string{}, seedFamilies...),
		Sensitive: map[string][]string{},
		Histogram: histogramReport{
			Name:       "http.server.request.duration",
			Attributes: map[string]string{"http.request.method": "GET", "http.route": "/users/{id}/orders/{id}", "http.response.status_code": "200"},
			Bounds:     histogramBounds,
		},
	}
	for i := range in.extra {
		rep.Extra = append(rep.Extra, extraName(i))
	}
	persistentEmail := "joao.silva." + digits(5) + "@example.com"
	for round := 1; round <= o.rounds; round++ {
		started := time.Now()
		in.record(ctx, &rep, round, o.perRound, persistentEmail)
		fctx, cancel := context.WithTimeout(ctx, o.timeout)
		err := mp.ForceFlush(fctx)
		cancel()
		if err != nil {
			return fmt.Errorf("round %d: export: %w", round, err)
		}
		rep.Rounds = round
		rep.Exports++
		fmt.Fprintf(os.Stderr, "otel-sender: round %d exported to %s in %s\n", round, o.endpoint,
			time.Since(started).Round(time.Millisecond))
		if o.reportPath != "" {
			if err := writeReport(o.reportPath, &rep); err != nil {
				return err
			}
		}
		if round < o.rounds {
			time.Sleep(time.Until(started.Add(o.interval)))
		}
	}
	return nil
}

type instruments struct {
	latency  metric.Float64Gauge       // checkout_request_latency_seconds{user_id}
	failures metric.Int64Counter       // order_payment_failures_total{order_id}
	cpu      metric.Float64Gauge       // process_cpu_percent{pid}
	fileSize metric.Int64Gauge         // temp_file_size_bytes{file_path}
	auth     metric.Int64UpDownCounter // auth_event_count{timestamp} (a count, not a counter)
	logins   metric.Int64Counter       // user_login_total{email}
	requests metric.Int64UpDownCounter // api_request_count{path}
	query    metric.Float64Gauge       // db_query_duration_seconds{query}
	duration metric.Float64Histogram   // http.server.request.duration (s)
	extra    []metric.Int64Gauge       // app_queue_depth_<i>{queue}
}

func extraName(i int) string { return fmt.Sprintf("app_queue_depth_%d", i) }

func newInstruments(m metric.Meter, extra int) (*instruments, error) {
	var in instruments
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	// No units on the seed's families: their names already say it, and the exporter's unit
	// suffixes would otherwise rename them. The histogram follows the semantic conventions
	// (dotted name, unit "s"), as instrumentation libraries do.
	in.latency, err = m.Float64Gauge("checkout_request_latency_seconds")
	add(err)
	in.failures, err = m.Int64Counter("order_payment_failures_total")
	add(err)
	in.cpu, err = m.Float64Gauge("process_cpu_percent")
	add(err)
	in.fileSize, err = m.Int64Gauge("temp_file_size_bytes")
	add(err)
	in.auth, err = m.Int64UpDownCounter("auth_event_count")
	add(err)
	in.logins, err = m.Int64Counter("user_login_total")
	add(err)
	in.requests, err = m.Int64UpDownCounter("api_request_count")
	add(err)
	in.query, err = m.Float64Gauge("db_query_duration_seconds")
	add(err)
	in.duration, err = m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests."))
	add(err)
	for i := 0; i < extra; i++ {
		g, err := m.Int64Gauge(extraName(i))
		add(err)
		in.extra = append(in.extra, g)
	}
	for _, e := range errs {
		if e != nil {
			return nil, fmt.Errorf("instrument: %w", e)
		}
	}
	return &in, nil
}

var common = []attribute.KeyValue{attribute.String("env", "prod"), attribute.String("region", "us-east")}

func attrs(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(append(append([]attribute.KeyValue{}, kv...), common...)...)
}

// record adds one round of points: perRound fresh series per seed family (plus a persistent
// email that keeps counting) and perRound*4 histogram observations.
func (in *instruments) record(ctx context.Context, rep *report, round, perRound int, persistentEmail string) {
	note := func(family, label, value string) string {
		key := family + "/" + label
		rep.Sensitive[key] = append(rep.Sensitive[key], value)
		return value
	}
	now := time.Now().UTC()
	for i := 0; i < perRound; i++ {
		in.latency.Record(ctx, 0.05+float64(intn(900))/1000,
			attrs(attribute.String("user_id", note("checkout_request_latency_seconds", "user_id", uuid()))))
		in.failures.Add(ctx, 1,
			attrs(attribute.String("order_id", note("order_payment_failures_total", "order_id", uuid()))))
		in.cpu.Record(ctx, float64(intn(1000))/10,
			attrs(attribute.String("pid", note("process_cpu_percent", "pid", fmt.Sprint(10000+intn(90000))))))
		epoch := now.Add(-time.Duration(i) * time.Second).UnixMilli()
		in.fileSize.Record(ctx, int64(1024*(1+intn(64))),
			attrs(attribute.String("file_path", note("temp_file_size_bytes", "file_path",
				fmt.Sprintf("/tmp/upload/session_%d/file.txt", epoch)))))
		ts := now.Add(-time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000000Z")
		in.auth.Add(ctx, int64(1+intn(9)),
			attrs(attribute.String("timestamp", note("auth_event_count", "timestamp", ts))))
		in.logins.Add(ctx, 1, attrs(attribute.String("email", note("user_login_total", "email", email()))))
		path := fmt.Sprintf("/users/%s%s/orders/%s", letters(3), digits(4), digits(6))
		in.requests.Add(ctx, int64(1+intn(30)),
			attrs(attribute.String("path", note("api_request_count", "path", path))))
		q := "SELECT * FROM orders WHERE id = " + digits(7)
		in.query.Record(ctx, float64(1+intn(100))/1000,
			attrs(attribute.String("query", note("db_query_duration_seconds", "query", q))))
	}
	in.logins.Add(ctx, int64(round), attrs(attribute.String("email", note("user_login_total", "email", persistentEmail))))
	for _, g := range in.extra {
		g.Record(ctx, int64(intn(100)), attrs(attribute.String("queue", "default")))
	}

	h := &rep.Histogram
	hAttrs := metric.WithAttributes(
		attribute.String("http.request.method", "GET"),
		attribute.String("http.route", "/users/{id}/orders/{id}"),
		attribute.Int("http.response.status_code", 200))
	for i := 0; i < perRound*4; i++ {
		v := float64(1+intn(1200)) / 1000 // 1 ms .. 1.2 s: every bucket, +Inf included
		in.duration.Record(ctx, v, hAttrs)
		h.Count++
		h.Sum += v
	}
}

func writeReport(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return os.Rename(tmp, path)
}

// Random values from crypto/rand (nothing in common between runs or senders).

func intn(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err)
	}
	return int(v.Int64())
}

func uuid() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func pick(alphabet string, n int) string {
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[intn(len(alphabet))]
	}
	return string(out)
}

func digits(n int) string  { return pick("123456789", 1) + pick("0123456789", n-1) }
func letters(n int) string { return pick("abcdefghijklmnopqrstuvwxyz", n) }

func email() string {
	first := []string{"ana", "bruno", "carla", "diego", "elisa", "fabio", "maria", "pedro"}
	domain := []string{"example.com", "mail.example.org", "corp.example.net"}
	return first[intn(len(first))] + "." + letters(5) + digits(4) + "@" + domain[intn(len(domain))]
}
