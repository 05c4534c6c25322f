// Package httpapi serves a schema registry over the REST API of the Confluent
// Schema Registry, so that existing clients (franz-go's pkg/sr, Confluent's
// serializers, curl scripts) work unchanged. Errors carry Confluent's bodies
// ({"error_code": 40401, "message": "..."}) and HTTP statuses.
//
// Several instances may serve one shared store: reads are answered locally by
// every instance; writes are forwarded to the primary named in Config, and
// the forwarding instance then waits until it sees the write.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raptormq/raptor/schema"
	"github.com/raptormq/raptor/schema/registry"
)

// ContentType is the preferred media type of response bodies.
const ContentType = "application/vnd.schemaregistry.v1+json"

// produces lists the media types of response bodies, preferred first, as
// Confluent's registry offers them: a request whose Accept header admits
// none of them is answered 406.
var produces = []string{ContentType, "application/vnd.schemaregistry+json", "application/json"}

// consumes lists the media types accepted for request bodies (octet-stream
// is what clients that send no type get); any other is answered 415.
var consumes = []string{ContentType, "application/vnd.schemaregistry+json", "application/json", "application/octet-stream"}

// MaxBodySize bounds request bodies: a schema is at most schema.MaxSchemaSize,
// and JSON escaping can double it.
const MaxBodySize = 2*schema.MaxSchemaSize + 4096

// Config configures a Server. Only Registry is required.
type Config struct {
	// Registry answers the requests.
	Registry *registry.Registry
	// Primary is the base URL (http://host:port) of the instance that
	// performs writes. Empty: this instance is the primary.
	Primary string
	// Client forwards writes to the primary. Default: a client with a 30 s timeout.
	Client *http.Client
	// Logger receives request errors. Default: discard.
	Logger *slog.Logger
}

// Server is an http.Handler for the registry API.
type Server struct {
	reg     *registry.Registry
	primary string
	client  *http.Client
	log     *slog.Logger
	mux     *http.ServeMux
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Registry == nil {
		return nil, errors.New("httpapi: Config.Registry is required")
	}
	if cfg.Primary != "" {
		u, err := url.Parse(cfg.Primary)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("httpapi: primary URL %q is not http(s)://host:port", cfg.Primary)
		}
	}
	s := &Server{reg: cfg.Registry, primary: strings.TrimRight(cfg.Primary, "/"), client: cfg.Client, log: cfg.Logger}
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })
	m.HandleFunc("GET /subjects", s.subjects)
	m.HandleFunc("GET /subjects/{subject}/versions", s.versions)
	m.HandleFunc("POST /subjects/{subject}/versions", s.write(s.register))
	m.HandleFunc("GET /subjects/{subject}/versions/{version}", s.version)
	m.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", s.versionSchema)
	m.HandleFunc("GET /subjects/{subject}/versions/{version}/referencedby", s.referencedBy)
	m.HandleFunc("DELETE /subjects/{subject}/versions/{version}", s.write(s.deleteVersion))
	m.HandleFunc("POST /subjects/{subject}", s.lookup)
	m.HandleFunc("DELETE /subjects/{subject}", s.write(s.deleteSubject))
	m.HandleFunc("GET /schemas", s.allSchemas)
	m.HandleFunc("GET /schemas/types", s.types)
	m.HandleFunc("GET /schemas/ids/{id}", s.schemaByID)
	m.HandleFunc("GET /schemas/ids/{id}/schema", s.rawSchemaByID)
	m.HandleFunc("GET /schemas/ids/{id}/subjects", s.subjectsByID)
	m.HandleFunc("GET /schemas/ids/{id}/versions", s.versionsByID)
	m.HandleFunc("GET /config", s.getConfig)
	m.HandleFunc("PUT /config", s.write(s.putConfig))
	m.HandleFunc("DELETE /config", s.write(s.deleteConfig))
	m.HandleFunc("GET /config/{subject}", s.getConfig)
	m.HandleFunc("PUT /config/{subject}", s.write(s.putConfig))
	m.HandleFunc("DELETE /config/{subject}", s.write(s.deleteConfig))
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", s.compatibility)
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions", s.compatibility)
	m.HandleFunc("GET /mode", s.getMode)
	m.HandleFunc("PUT /mode", s.write(s.putMode))
	m.HandleFunc("DELETE /mode", s.write(s.deleteMode))
	m.HandleFunc("GET /mode/{subject}", s.getMode)
	m.HandleFunc("PUT /mode/{subject}", s.write(s.putMode))
	m.HandleFunc("DELETE /mode/{subject}", s.write(s.deleteMode))
	m.HandleFunc("GET /contexts", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, []string{"."}) })
	s.mux = m
	return s, nil
}

// ServeHTTP routes the request; unknown paths get Confluent's JSON 404/405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// Tell a wrong method from an unknown path.
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := s.mux.Handler(probe); p != "" {
				writeError(w, &registry.Error{Code: http.StatusMethodNotAllowed, Message: "HTTP 405 Method Not Allowed: " + r.Method + " " + r.URL.Path})
				return
			}
		}
		writeError(w, &registry.Error{Code: http.StatusNotFound, Message: "HTTP 404 Not Found: " + r.URL.Path})
		return
	}
	mt, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		writeError(w, &registry.Error{Code: http.StatusNotAcceptable, Message: "HTTP 406 Not Acceptable: this registry answers " + strings.Join(produces, ", ")})
		return
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if ct := r.Header.Get("Content-Type"); !consumable(ct) {
			writeError(w, &registry.Error{Code: http.StatusUnsupportedMediaType, Message: fmt.Sprintf("HTTP 415 Unsupported Media Type: %q (send %s)", ct, ContentType)})
			return
		}
	}
	w.Header().Set("Content-Type", mt)
	sw := &statusWriter{ResponseWriter: w}
	s.mux.ServeHTTP(sw, r)
	if sw.status >= 500 {
		s.log.Warn("schema registry: request failed", "method", r.Method, "path", r.URL.Path, "status", sw.status)
	}
}

// statusWriter records the status of a response for logging.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records code and passes it on.
func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// negotiate picks the response media type for the Accept headers: the
// produced type with the highest quality, the preferred one on ties. No
// header, or an empty one, means any type.
func negotiate(accepts []string) (string, bool) {
	var ranges []string
	for _, a := range accepts {
		for _, part := range strings.Split(a, ",") {
			if part = strings.TrimSpace(part); part != "" {
				ranges = append(ranges, part)
			}
		}
	}
	if len(ranges) == 0 {
		return ContentType, true
	}
	best, bestQ := "", 0.0
	for _, p := range produces {
		q := 0.0
		for _, rng := range ranges {
			mt, params, err := mime.ParseMediaType(rng)
			if err != nil {
				continue
			}
			if rq, ok := quality(params); ok && mediaMatch(mt, p) {
				q = max(q, rq)
			}
		}
		if q > bestQ {
			best, bestQ = p, q
		}
	}
	return best, bestQ > 0
}

func quality(params map[string]string) (float64, bool) {
	v, ok := params["q"]
	if !ok {
		return 1, true
	}
	q, err := strconv.ParseFloat(v, 64)
	return q, err == nil && q >= 0 && q <= 1
}

// mediaMatch reports whether media range rng (type/subtype, either may be *)
// admits media type mt.
func mediaMatch(rng, mt string) bool {
	if rng == "*/*" || rng == "*" || rng == mt {
		return true
	}
	rt, rs, _ := strings.Cut(rng, "/")
	mtt, _, _ := strings.Cut(mt, "/")
	return rs == "*" && rt == mtt
}

// consumable reports whether a request body of Content-Type ct is read.
func consumable(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && slices.Contains(consumes, mt)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error_code":500,"message":"cannot encode response"}`)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", ContentType)
	}
	w.WriteHeader(status)
	w.Write(b)
}

type errorBody struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

func writeError(w http.ResponseWriter, err error) {
	var re *registry.Error
	if !errors.As(err, &re) {
		re = &registry.Error{Code: registry.CodeStoreError, Message: err.Error()}
	}
	writeJSON(w, re.HTTPStatus(), errorBody{ErrorCode: re.Code, Message: re.Message})
}

func flag(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

func badBody(err error) error {
	return &registry.Error{Code: http.StatusUnprocessableEntity, Message: "Unrecognizable request body: " + err.Error()}
}

func decodeBody(w http.ResponseWriter, r *http.Request, into any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodySize)
	dec := json.NewDecoder(body)
	if err := dec.Decode(into); err != nil {
		return badBody(err)
	}
	return nil
}

// schemaRequest is the body of register, lookup and compatibility requests.
type schemaRequest struct {
	Schema     string               `json:"schema"`
	SchemaType string               `json:"schemaType"`
	References []registry.Reference `json:"references"`
	ID         int                  `json:"id"`
	Version    int                  `json:"version"`
}

// readSchemaRequest reads the body; ?normalize=true asks for the normalised
// form to be stored and compared.
func readSchemaRequest(w http.ResponseWriter, r *http.Request) (registry.Request, error) {
	var req schemaRequest
	if err := decodeBody(w, r, &req); err != nil {
		return registry.Request{}, err
	}
	if req.Schema == "" {
		return registry.Request{}, &registry.Error{Code: registry.CodeInvalidSchema, Message: "Invalid schema: the request has no \"schema\""}
	}
	return registry.Request{Type: req.SchemaType, Text: req.Schema, References: req.References,
		ID: req.ID, Version: req.Version, Normalize: flag(r, "normalize")}, nil
}

func pathID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		return 0, &registry.Error{Code: registry.CodeSchemaNotFound, Message: fmt.Sprintf("Schema not found: %q is not a schema id", r.PathValue("id"))}
	}
	return id, nil
}

// write wraps a mutating handler: on a secondary it forwards the request to
// the primary, then waits until this instance has read the write back.
func (s *Server) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.primary == "" {
			h(w, r)
			return
		}
		s.forward(w, r)
	}
}

func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		writeError(w, badBody(err))
		return
	}
	target := s.primary + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		writeError(w, &registry.Error{Code: registry.CodeForwardError, Message: "Error while forwarding the request to the primary: " + err.Error()})
		return
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", ContentType)
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("schema registry: forwarding to primary failed", "primary", s.primary, "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, &registry.Error{Code: registry.CodeForwardError, Message: "Error while forwarding the request to the primary " + s.primary + ": " + err.Error()})
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize))
	if err != nil {
		writeError(w, &registry.Error{Code: registry.CodeForwardError, Message: "Error while reading the primary's response: " + err.Error()})
		return
	}
	if resp.StatusCode < 300 {
		// Read-your-writes: answer once this instance sees the new records.
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := s.reg.Sync(ctx); err != nil {
			writeError(w, &registry.Error{Code: registry.CodeOperationTimeout, Message: "Write done on the primary, but this instance did not catch up: " + err.Error()})
			return
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

func (s *Server) subjects(w http.ResponseWriter, r *http.Request) {
	deletedOnly := flag(r, "deletedOnly")
	all := s.reg.Subjects(flag(r, "deleted") || deletedOnly)
	var live map[string]bool
	if deletedOnly {
		live = map[string]bool{}
		for _, sub := range s.reg.Subjects(false) {
			live[sub] = true
		}
	}
	prefix := r.URL.Query().Get("subjectPrefix")
	out := []string{}
	for _, sub := range all {
		if strings.HasPrefix(sub, prefix) && !live[sub] {
			out = append(out, sub)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	vs, err := s.reg.Versions(r.PathValue("subject"), flag(r, "deleted"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, vs)
}

type registerResponse struct {
	ID int `json:"id"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	req, err := readSchemaRequest(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	sv, err := s.reg.RegisterSchema(r.Context(), r.PathValue("subject"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, registerResponse{ID: sv.ID})
}

func (s *Server) findVersion(w http.ResponseWriter, r *http.Request) (registry.SubjectVersion, bool) {
	v, err := registry.ParseVersion(r.PathValue("version"))
	if err == nil {
		var sv registry.SubjectVersion
		sv, err = s.reg.Version(r.PathValue("subject"), v, flag(r, "deleted"))
		if err == nil {
			return sv, true
		}
	}
	writeError(w, err)
	return registry.SubjectVersion{}, false
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	if sv, ok := s.findVersion(w, r); ok {
		writeJSON(w, http.StatusOK, sv)
	}
}

func (s *Server) versionSchema(w http.ResponseWriter, r *http.Request) {
	if sv, ok := s.findVersion(w, r); ok {
		io.WriteString(w, sv.Schema)
	}
}

func (s *Server) referencedBy(w http.ResponseWriter, r *http.Request) {
	v, err := registry.ParseVersion(r.PathValue("version"))
	if err == nil {
		var ids []int
		if ids, err = s.reg.ReferencedBy(r.PathValue("subject"), v); err == nil {
			writeJSON(w, http.StatusOK, ids)
			return
		}
	}
	writeError(w, err)
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) {
	v, err := registry.ParseVersion(r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	deleted, err := s.reg.DeleteVersion(r.Context(), r.PathValue("subject"), v, flag(r, "permanent"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deleted)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	req, err := readSchemaRequest(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	sv, err := s.reg.LookupSchema(r.PathValue("subject"), req, flag(r, "deleted"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sv)
}

func (s *Server) deleteSubject(w http.ResponseWriter, r *http.Request) {
	vs, err := s.reg.DeleteSubject(r.Context(), r.PathValue("subject"), flag(r, "permanent"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, vs)
}

func (s *Server) allSchemas(w http.ResponseWriter, r *http.Request) {
	prefix := r.URL.Query().Get("subjectPrefix")
	deleted, latestOnly := flag(r, "deleted"), flag(r, "latestOnly")
	out := []registry.SubjectVersion{}
	for _, sub := range s.reg.Subjects(deleted) {
		if !strings.HasPrefix(sub, prefix) {
			continue
		}
		vs, err := s.reg.Versions(sub, deleted)
		if err != nil {
			continue // deleted between the two calls
		}
		if latestOnly {
			vs = vs[len(vs)-1:]
		}
		for _, v := range vs {
			if sv, err := s.reg.Version(sub, v, deleted); err == nil {
				out = append(out, sv)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) types(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, registry.SchemaTypes())
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		var info registry.IDSchema
		if info, err = s.reg.SchemaInfoByID(id); err == nil {
			writeJSON(w, http.StatusOK, info)
			return
		}
	}
	writeError(w, err)
}

func (s *Server) rawSchemaByID(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		var text string
		if text, err = s.reg.SchemaByID(id); err == nil {
			io.WriteString(w, text)
			return
		}
	}
	writeError(w, err)
}

func (s *Server) usages(w http.ResponseWriter, r *http.Request) ([]registry.SubjectVersion, bool) {
	id, err := pathID(r)
	if err == nil {
		var vs []registry.SubjectVersion
		if vs, err = s.reg.VersionsByID(id, flag(r, "deleted")); err == nil {
			return vs, true
		}
	}
	writeError(w, err)
	return nil, false
}

func (s *Server) subjectsByID(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.usages(w, r)
	if !ok {
		return
	}
	out := []string{}
	for _, v := range vs {
		if len(out) == 0 || out[len(out)-1] != v.Subject {
			out = append(out, v.Subject)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (s *Server) versionsByID(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.usages(w, r)
	if !ok {
		return
	}
	out := make([]subjectVersion, len(vs))
	for i, v := range vs {
		out[i] = subjectVersion{Subject: v.Subject, Version: v.Version}
	}
	writeJSON(w, http.StatusOK, out)
}

type configResponse struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

type configUpdate struct {
	Compatibility string `json:"compatibility"`
}

// configDeleted carries both spellings: Confluent names the level
// "compatibilityLevel" in this reply, franz-go's client reads "compatibility".
type configDeleted struct {
	Compatibility      string `json:"compatibility"`
	CompatibilityLevel string `json:"compatibilityLevel"`
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	level, configured := s.reg.Level(subject)
	if !configured && !flag(r, "defaultToGlobal") {
		writeError(w, &registry.Error{Code: registry.CodeSubjectLevelCompatNotConfigured, Message: "Subject '" + subject + "' does not have subject-level compatibility configured"})
		return
	}
	writeJSON(w, http.StatusOK, configResponse{CompatibilityLevel: string(level)})
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	var req configUpdate
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	level, err := schema.ParseLevel(req.Compatibility)
	if err != nil {
		writeError(w, registry.ErrInvalidLevel(err))
		return
	}
	if err := s.reg.SetLevel(r.Context(), r.PathValue("subject"), level); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, configUpdate{Compatibility: string(level)})
}

func (s *Server) deleteConfig(w http.ResponseWriter, r *http.Request) {
	prev, err := s.reg.DeleteLevel(r.Context(), r.PathValue("subject"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, configDeleted{Compatibility: string(prev), CompatibilityLevel: string(prev)})
}

type compatibilityResponse struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

func (s *Server) compatibility(w http.ResponseWriter, r *http.Request) {
	version := 0 // all versions
	if text := r.PathValue("version"); text != "" {
		v, err := registry.ParseVersion(text)
		if err != nil {
			writeError(w, err)
			return
		}
		version = v
	}
	req, err := readSchemaRequest(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	ok, msgs, err := s.reg.Check(r.PathValue("subject"), version, req)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := compatibilityResponse{IsCompatible: ok}
	if flag(r, "verbose") {
		resp.Messages = msgs
		if resp.Messages == nil {
			resp.Messages = []string{}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

type modeBody struct {
	Mode string `json:"mode"`
}

func (s *Server) getMode(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	mode, configured := s.reg.ModeOf(subject)
	if !configured && !flag(r, "defaultToGlobal") {
		writeError(w, registry.ErrModeNotConfigured(subject))
		return
	}
	writeJSON(w, http.StatusOK, modeBody{Mode: string(mode)})
}

func (s *Server) putMode(w http.ResponseWriter, r *http.Request) {
	var req modeBody
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	mode, err := registry.ParseMode(req.Mode)
	if err == nil {
		err = s.reg.SetMode(r.Context(), r.PathValue("subject"), mode, flag(r, "force"))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, modeBody{Mode: string(mode)})
}

func (s *Server) deleteMode(w http.ResponseWriter, r *http.Request) {
	prev, err := s.reg.DeleteMode(r.Context(), r.PathValue("subject"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, modeBody{Mode: string(prev)})
}
