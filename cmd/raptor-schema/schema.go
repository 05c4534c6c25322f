package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/cli"
	"github.com/raptormq/raptor/schema/httpapi"
	"github.com/raptormq/raptor/schema/kafkastore"
	"github.com/raptormq/raptor/schema/registry"
)

const schemaUsage = `Usage:
  raptor-schema serve    [--listen 127.0.0.1:8081] (--data DIR | --brokers HOST:PORT[,...] [--topic _schemas] [--primary-url URL])
  raptor-schema register [--url URL] --subject S --schema FILE [--type AVRO|JSON|PROTOBUF]
  raptor-schema get      [--url URL] (--id N | --subject S [--version N|latest])
  raptor-schema check    [--url URL] --subject S --schema FILE [--type T] [--version N|latest|all]
  raptor-schema mode     [--url URL] [--subject S] [--set READWRITE|READONLY|IMPORT [--force]]

serve runs a Confluent-compatible registry: on a local fsynced log in DIR, or
on a compacted Kafka topic shared by several instances (the one without
--primary-url is the primary; the others forward writes to it).
FILE may be - for standard input.`

func runSchema(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, schemaUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return schemaServe(ctx, args[1:], stdout, stderr)
	case "register", "get", "check", "mode":
		return schemaClient(ctx, args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "raptor-schema: unknown subcommand %q\n\n%s\n", args[0], schemaUsage)
	return 2
}

// schemaServe runs the registry until ctx ends.
func schemaServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("raptor-schema serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "HTTP listen address")
	data := fs.String("data", "", "directory of the file store (embedded mode)")
	brokers := fs.String("brokers", "", "comma-separated Kafka brokers, host:port, tcp://host:port or raptor://host:port (all of one scheme): selects the Kafka store")
	topic := fs.String("topic", kafkastore.DefaultTopic, "compacted topic of the Kafka store")
	primaryURL := fs.String("primary-url", "", "with --brokers: base URL of the primary instance; empty makes this instance the primary")
	verbose := fs.Bool("v", false, "debug logging")
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if (*data == "") == (*brokers == "") {
		fmt.Fprintln(stderr, "raptor-schema serve: give exactly one of --data DIR or --brokers HOST:PORT")
		return 2
	}
	if *primaryURL != "" && *brokers == "" {
		fmt.Fprintln(stderr, "raptor-schema serve: --primary-url needs --brokers (a file store has no secondaries)")
		return 2
	}
	log := cli.NewLogger(stderr, *verbose)

	var store registry.Store
	var err error
	if *data != "" {
		store, err = registry.OpenFileStore(*data, log)
	} else {
		addrs, overRaptor, perr := parseBrokerURLs(*brokers)
		if perr != nil {
			fmt.Fprintf(stderr, "raptor-schema serve: --brokers: %v\n", perr)
			return 2
		}
		kcfg := kafkastore.Config{Brokers: addrs, Topic: *topic, Primary: *primaryURL == "", Logger: log}
		if overRaptor {
			d, derr := kafka.NewDialer(kafka.WithLogger(log))
			if derr != nil {
				fmt.Fprintf(stderr, "raptor-schema serve: raptor dialer: %v\n", derr)
				return 1
			}
			defer d.Close()
			kcfg.ClientOpts = append(kcfg.ClientOpts, d.Opt())
		}
		store, err = kafkastore.New(kcfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "raptor-schema serve: %v\n", err)
		return 1
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	reg, err := registry.Open(openCtx, registry.Config{Store: store, Logger: log})
	cancel()
	if err != nil {
		store.Close()
		// A start-up failure is the store's own error, not a REST error code.
		var rerr *registry.Error
		if errors.As(err, &rerr) && rerr.Err != nil {
			err = rerr.Err
		}
		fmt.Fprintf(stderr, "raptor-schema serve: open the %s store: %v\n", storeKind(*data), err)
		return 1
	}
	defer reg.Close()
	h, err := httpapi.New(httpapi.Config{Registry: reg, Primary: *primaryURL, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "raptor-schema serve: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "raptor-schema serve: listen on %s: %v\n", *listen, err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "schema registry listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "raptor-schema serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		fmt.Fprintf(stderr, "raptor-schema serve: shutdown: %v\n", err)
		return 1
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "raptor-schema serve: %v\n", err)
		return 1
	}
	return 0
}

func readSchemaFile(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, httpapi.MaxBodySize))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read schema %q: %w", path, err)
	}
	return string(b), nil
}

// schemaClient runs register, get and check against a registry.
func schemaClient(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("raptor-schema "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8081", "registry base URL")
	subject := fs.String("subject", "", "subject")
	file := fs.String("schema", "", "schema file (- for stdin)")
	version := fs.String("version", "latest", "version number, latest (or all, for check)")
	id := fs.Int("id", 0, "global schema id (get)")
	typ := fs.String("type", "AVRO", "schema type: AVRO, JSON or PROTOBUF (register, check)")
	setMode := fs.String("set", "", "mode to set: READWRITE, READONLY or IMPORT (mode)")
	force := fs.Bool("force", false, "set IMPORT even if the registry (or subject) holds schemas (mode)")
	timeout := fs.Duration("timeout", 30*time.Second, "request timeout")
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cl, err := sr.NewClient(sr.URLs(*url))
	if err != nil {
		fmt.Fprintf(stderr, "raptor-schema %s: %v\n", sub, err)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "raptor-schema %s: %v\n", sub, err)
		return 1
	}
	var st sr.SchemaType
	if err := st.UnmarshalText([]byte(strings.ToUpper(*typ))); err != nil {
		fmt.Fprintf(stderr, "raptor-schema %s: --type %q: want AVRO, JSON or PROTOBUF\n", sub, *typ)
		return 2
	}
	parseVersion := func() (int, error) {
		switch *version {
		case "latest":
			return -1, nil
		case "all":
			return -2, nil
		}
		v, err := strconv.Atoi(*version)
		if err != nil || v < 1 {
			return 0, fmt.Errorf("--version %q is not a positive number, latest or all", *version)
		}
		return v, nil
	}
	switch sub {
	case "register":
		if *subject == "" || *file == "" {
			fmt.Fprintln(stderr, "raptor-schema register: --subject and --schema are required")
			return 2
		}
		text, err := readSchemaFile(*file)
		if err != nil {
			return fail(err)
		}
		got, err := cl.CreateSchema(ctx, *subject, sr.Schema{Schema: text, Type: st})
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "subject %s version %d id %d\n", got.Subject, got.Version, got.ID)
	case "get":
		switch {
		case *id > 0:
			s, err := cl.SchemaByID(ctx, *id)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintln(stdout, s.Schema)
		case *subject != "":
			v, err := parseVersion()
			if err != nil || v == -2 {
				fmt.Fprintf(stderr, "raptor-schema get: --version must be a number or latest\n")
				return 2
			}
			s, err := cl.SchemaByVersion(ctx, *subject, v)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "subject %s version %d id %d\n%s\n", s.Subject, s.Version, s.ID, s.Schema.Schema)
		default:
			fmt.Fprintln(stderr, "raptor-schema get: give --id N or --subject S")
			return 2
		}
	case "check":
		if *subject == "" || *file == "" {
			fmt.Fprintln(stderr, "raptor-schema check: --subject and --schema are required")
			return 2
		}
		v, err := parseVersion()
		if err != nil {
			fmt.Fprintf(stderr, "raptor-schema check: %v\n", err)
			return 2
		}
		text, err := readSchemaFile(*file)
		if err != nil {
			return fail(err)
		}
		res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), *subject, v, sr.Schema{Schema: text, Type: st})
		if err != nil {
			return fail(err)
		}
		if !res.Is {
			fmt.Fprintf(stdout, "incompatible with subject %s:\n", *subject)
			for _, m := range res.Messages {
				fmt.Fprintf(stdout, "  %s\n", m)
			}
			return 1
		}
		fmt.Fprintf(stdout, "compatible with subject %s\n", *subject)
	case "mode":
		var res []sr.ModeResult
		if *setMode == "" {
			res = cl.Mode(ctx, *subject)
		} else {
			var m sr.Mode
			if err := m.UnmarshalText([]byte(strings.ToUpper(*setMode))); err != nil {
				fmt.Fprintf(stderr, "raptor-schema mode: --set %q: want READWRITE, READONLY or IMPORT\n", *setMode)
				return 2
			}
			if *force {
				ctx = sr.WithParams(ctx, sr.Force)
			}
			res = cl.SetMode(ctx, m, *subject)
		}
		if err := res[0].Err; err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, res[0].Mode)
	}
	return 0
}

// storeKind names the store selected by --data / --brokers, for errors.
func storeKind(data string) string {
	if data != "" {
		return "file"
	}
	return "Kafka"
}

// parseBrokerURLs reads --brokers: host:port or tcp://host:port entries (the
// Kafka protocol over TCP) or raptor://host:port entries (over Raptor, each
// broker's advertised address dialed over UDP as compat/kafka does). Schemes
// cannot be mixed: one client has one dialer.
func parseBrokerURLs(list string) (addrs []string, overRaptor bool, err error) {
	scheme := ""
	for _, b := range strings.Split(list, ",") {
		b = strings.TrimSpace(b)
		s, hostport := "tcp", b
		if i := strings.Index(b, "://"); i >= 0 {
			s, hostport = b[:i], b[i+3:]
		}
		switch s {
		case "tcp", "raptor":
		default:
			return nil, false, fmt.Errorf("%q: scheme %q: want tcp:// or raptor://", b, s)
		}
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			return nil, false, fmt.Errorf("%q: want host:port: %v", b, err)
		}
		if scheme != "" && s != scheme {
			return nil, false, fmt.Errorf("%q mixes %s:// with %s://: give brokers of one scheme", list, scheme, s)
		}
		scheme = s
		addrs = append(addrs, hostport)
	}
	return addrs, scheme == "raptor", nil
}
