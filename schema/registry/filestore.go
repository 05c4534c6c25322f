package registry

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// LogFileName is the name of the file store's log inside its directory.
const LogFileName = "schemas.log"

// defaultCompactMin is the log length (in records) from which the log is
// compacted on open, when more than half of it is superseded.
const defaultCompactMin = 1000

// maxFrame bounds one log frame: a schema is at most schema.MaxSchemaSize, so
// anything much larger is corruption, not data.
const maxFrame = 4 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// FileStore is the embedded store: an append-only log in one file, every
// write fsynced before it is acknowledged, so a registered schema survives a
// crash. Frame layout: u32 length of the body, u32 CRC-32C of the body, then
// the body: u8 flags (1 = tombstone), u32 key length, key JSON, value JSON.
// A torn frame at the tail (a crash in mid-write) is cut off on open, and a
// log mostly made of superseded records is compacted on open.
type FileStore struct {
	dir string
	log *slog.Logger

	mu         sync.Mutex
	f          *os.File
	apply      func(Record)
	closed     bool
	compactMin int // compact on open from this many frames, if over half are superseded
}

// OpenFileStore opens (creating if needed) the log in dir and takes an
// exclusive lock on it, so two registries cannot share one directory.
func OpenFileStore(dir string, log *slog.Logger) (*FileStore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: create data dir %q: %w", dir, err)
	}
	path := filepath.Join(dir, LogFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: open %q: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("registry: %q is locked by another registry: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &FileStore{dir: dir, f: f, log: log, compactMin: defaultCompactMin}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("registry: open dir %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("registry: fsync dir %q: %w", dir, err)
	}
	return nil
}

// Start replays the log.
func (s *FileStore) Start(_ context.Context, apply func(Record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	data, err := io.ReadAll(io.NewSectionReader(s.f, 0, 1<<62))
	if err != nil {
		return fmt.Errorf("registry: read log in %q: %w", s.dir, err)
	}
	good, frames := 0, 0
	last := map[string]int{} // key -> index in recs of its last record
	var recs []Record
	for good < len(data) {
		rec, n, err := parseFrame(data[good:])
		if err != nil {
			s.log.Warn("schema log: cutting torn tail", "dir", s.dir, "offset", good, "dropped_bytes", len(data)-good, "reason", err)
			break
		}
		apply(rec)
		good += n
		frames++
		last[string(rec.Key.Bytes())] = len(recs)
		recs = append(recs, rec)
	}
	if frames >= s.compactMin && frames > 2*len(last) {
		if err := s.compact(recs, last); err != nil {
			return err
		}
		s.apply = apply
		return nil
	}
	if good < len(data) {
		if err := s.f.Truncate(int64(good)); err != nil {
			return fmt.Errorf("registry: truncate torn log in %q at %d: %w", s.dir, good, err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("registry: fsync log in %q: %w", s.dir, err)
		}
	}
	if _, err := s.f.Seek(int64(good), io.SeekStart); err != nil {
		return fmt.Errorf("registry: seek log in %q: %w", s.dir, err)
	}
	s.apply = apply
	return nil
}

// compact rewrites the log with only the last record of each key (a
// tombstone's key is dropped), in the order of those last records, so that
// replaying it gives the same state. The new file is locked, written and
// fsynced before it replaces the old one. The caller holds mu.
func (s *FileStore) compact(recs []Record, last map[string]int) error {
	var buf []byte
	kept := 0
	live := map[int]bool{}        // IDs kept by a surviving record
	gone := map[int]SchemaValue{} // IDs whose every version was hard-deleted, as last seen
	for i, r := range recs {
		if r.Key.Type != KeySchema && r.Key.Type != KeyID || r.Value == nil {
			continue
		}
		var v SchemaValue
		if json.Unmarshal(r.Value, &v) != nil || v.ID <= 0 {
			continue
		}
		if last[string(r.Key.Bytes())] == i {
			live[v.ID] = true
		} else if v.Schema != "" {
			gone[v.ID] = v
		}
	}
	for i, r := range recs {
		if last[string(r.Key.Bytes())] != i || r.Value == nil {
			continue
		}
		buf = appendFrame(buf, r)
		kept++
	}
	// IDs are never reused and stay decodable: an ID whose versions were all
	// hard-deleted keeps an ID record (this store's own, never on a topic).
	for _, id := range slices.Sorted(maps.Keys(gone)) {
		if live[id] {
			continue
		}
		v := gone[id]
		buf = appendFrame(buf, Record{Key: Key{Type: KeyID, ID: id}, Value: mustJSON(legacyIDValue{ID: id, Schema: v.Schema, SchemaType: v.SchemaType, References: v.References})})
		kept++
	}
	path := filepath.Join(s.dir, LogFileName)
	tmp := path + ".compact"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("registry: compact log in %q: %w", s.dir, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("registry: compact log in %q: %w", s.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	if _, err := f.Write(buf); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.f.Close()
	s.f = f
	s.log.Info("schema log compacted", "dir", s.dir, "records_before", len(recs), "records_after", kept)
	return nil
}

// Write appends recs as frames in one write and fsyncs before applying them.
func (s *FileStore) Write(_ context.Context, recs []Record) error {
	var buf []byte
	for _, r := range recs {
		buf = appendFrame(buf, r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	if s.apply == nil {
		return errors.New("registry: file store written before Start")
	}
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("registry: append to log in %q: %w", s.dir, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("registry: fsync log in %q: %w", s.dir, err)
	}
	for _, r := range recs {
		s.apply(r)
	}
	return nil
}

// Sync is immediate: only this process writes the file.
func (s *FileStore) Sync(context.Context) error { return nil }

// Close closes the file and releases its lock.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.f.Close()
}

func appendFrame(dst []byte, r Record) []byte {
	key := r.Key.Bytes()
	var body []byte
	flags := byte(0)
	if r.Value == nil {
		flags = 1
	}
	body = append(body, flags)
	body = binary.BigEndian.AppendUint32(body, uint32(len(key)))
	body = append(body, key...)
	body = append(body, r.Value...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(body, crcTable))
	return append(dst, body...)
}

// parseFrame parses one frame, returning the record and the bytes consumed.
func parseFrame(b []byte) (Record, int, error) {
	if len(b) < 8 {
		return Record{}, 0, fmt.Errorf("frame header of %d bytes, need 8", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if n < 5 || n > maxFrame {
		return Record{}, 0, fmt.Errorf("frame length %d out of range [5, %d]", n, maxFrame)
	}
	if uint64(len(b)-8) < uint64(n) {
		return Record{}, 0, fmt.Errorf("frame of %d bytes, only %d left", n, len(b)-8)
	}
	body := b[8 : 8+n]
	if got, want := crc32.Checksum(body, crcTable), binary.BigEndian.Uint32(b[4:]); got != want {
		return Record{}, 0, fmt.Errorf("frame checksum %08x, want %08x", got, want)
	}
	flags := body[0]
	kl := binary.BigEndian.Uint32(body[1:])
	if uint64(kl) > uint64(len(body)-5) {
		return Record{}, 0, fmt.Errorf("key length %d exceeds frame", kl)
	}
	key, err := DecodeKey(body[5 : 5+kl])
	if err != nil {
		return Record{}, 0, err
	}
	rec := Record{Key: key}
	if flags&1 == 0 {
		rec.Value = bytes.Clone(body[5+kl:])
	}
	return rec, int(8 + n), nil
}
