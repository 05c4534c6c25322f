package reliable

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/raptormq/raptor/wire"
)

// Packet protection (docs/PROTOCOL.md §6.2), after RFC 9001 §5: keys from
// the TLS traffic secrets by HKDF-Expand-Label, the payload sealed with the
// suite's AEAD under a nonce made from the packet number, the header as
// associated data, then the packet number (and a short header's key phase
// bit) masked with a sample of the ciphertext.

const (
	aeadTagLen = 16
	// hpSampleOffset: the sample starts this far after the packet number's
	// first byte (a varint packet number is at most 8 bytes).
	hpSampleOffset = 8
	hpSampleLen    = 16
	// minProtectedPayload is how many plaintext bytes, packet number
	// included, a sealed packet needs for the sample to exist.
	minProtectedPayload = hpSampleOffset + hpSampleLen - aeadTagLen

	labelKey = "raptor key"
	labelIV  = "raptor iv"
	labelHP  = "raptor hp"
	labelKU  = "raptor ku"

	// aesGCMPacketLimit is the confidentiality limit of AES-GCM in packets
	// (RFC 9001 §6.6: 2^23); keys are updated at a quarter of it.
	aesGCMPacketLimit = 1 << 23
	// Integrity limits: packets that failed to open before the session must
	// end (RFC 9001 §6.6).
	aesGCMIntegrityLimit = 1 << 52
	chachaIntegrityLimit = 1 << 36
)

// errOpen is returned for a packet that does not open: forged, modified,
// truncated, or sealed under keys we do not have.
var errOpen = errors.New("raptor: packet failed authentication")

// suiteParams describes a TLS 1.3 cipher suite for packet protection.
type suiteParams struct {
	keyLen int
	hash   func() hash.Hash
	chacha bool
}

func suiteFor(id uint16) (suiteParams, error) {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return suiteParams{keyLen: 16, hash: sha256.New}, nil
	case tls.TLS_AES_256_GCM_SHA384:
		return suiteParams{keyLen: 32, hash: sha512.New384}, nil
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return suiteParams{keyLen: 32, hash: sha256.New, chacha: true}, nil
	}
	return suiteParams{}, fmt.Errorf("raptor: TLS negotiated cipher suite 0x%04x, which packet protection does not support", id)
}

// hkdfExpandLabel is TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
func hkdfExpandLabel(h func() hash.Hash, secret []byte, label string, length int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), length)
	if err != nil {
		panic("raptor: HKDF-Expand-Label: " + err.Error()) // only for a length beyond 255 hash sizes
	}
	return out
}

// aeadKey is one generation of payload protection in one direction.
type aeadKey struct {
	aead  cipher.AEAD
	iv    [12]byte
	nonce [12]byte // scratch
}

func newAEADKey(sp suiteParams, secret []byte) (aeadKey, error) {
	var k aeadKey
	key := hkdfExpandLabel(sp.hash, secret, labelKey, sp.keyLen)
	copy(k.iv[:], hkdfExpandLabel(sp.hash, secret, labelIV, 12))
	var err error
	if sp.chacha {
		k.aead, err = chacha20poly1305.New(key)
	} else {
		var blk cipher.Block
		if blk, err = aes.NewCipher(key); err == nil {
			k.aead, err = cipher.NewGCM(blk)
		}
	}
	return k, err
}

func (k *aeadKey) nonceFor(pn uint64) []byte {
	k.nonce = k.iv
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], pn)
	for i := range p {
		k.nonce[4+i] ^= p[i]
	}
	return k.nonce[:]
}

// hpKey masks packet numbers (RFC 9001 §5.4); it is not updated by key updates.
type hpKey struct {
	block  cipher.Block // AES suites
	chacha []byte       // ChaCha20 suite
	buf    [16]byte     // scratch: a local would escape through the interface call
}

func newHPKey(sp suiteParams, secret []byte) (hpKey, error) {
	key := hkdfExpandLabel(sp.hash, secret, labelHP, sp.keyLen)
	if sp.chacha {
		return hpKey{chacha: key}, nil
	}
	blk, err := aes.NewCipher(key)
	return hpKey{block: blk}, err
}

// mask computes 16 mask bytes from a 16-byte sample.
func (h *hpKey) mask(sample []byte, m *[16]byte) {
	if h.block != nil {
		h.block.Encrypt(h.buf[:], sample)
		*m = h.buf
		return
	}
	c, err := chacha20.NewUnauthenticatedCipher(h.chacha, sample[4:16])
	if err != nil {
		panic("raptor: header protection: " + err.Error())
	}
	c.SetCounter(binary.LittleEndian.Uint32(sample[:4]))
	*m = [16]byte{}
	c.XORKeyStream(m[:], m[:])
}

// levelKeys protect one direction of the Handshake level: one generation, no
// key update.
type levelKeys struct {
	hp  hpKey
	key aeadKey
}

func newLevelKeys(suite uint16, secret []byte) (*levelKeys, error) {
	sp, err := suiteFor(suite)
	if err != nil {
		return nil, err
	}
	k := &levelKeys{}
	if k.hp, err = newHPKey(sp, secret); err != nil {
		return nil, err
	}
	if k.key, err = newAEADKey(sp, secret); err != nil {
		return nil, err
	}
	return k, nil
}

// padForSample appends PADDING so that a packet whose packet number starts at
// pnOff and whose header ends at hdrLen has room for the sample once sealed.
func padForSample(b []byte, pnOff, hdrLen int) []byte {
	for len(b)-pnOff < minProtectedPayload {
		b = append(b, byte(wire.FramePadding))
	}
	return b
}

// sealPacket seals pkt in place: pkt[:hdrLen] is the header, whose packet
// number pn starts at pnOff; firstMask selects the bits of the first byte
// that header protection covers. pkt must have room for the tag.
func sealPacket(k *aeadKey, hp *hpKey, pkt []byte, pnOff, hdrLen int, pn uint64, firstMask byte) []byte {
	pkt = padForSample(pkt, pnOff, hdrLen)
	return sealPacketFrom(k, hp, pkt[:hdrLen], pkt[hdrLen:], pnOff, pn, firstMask)
}

// sealPacketFrom seals the packet of header hdr and plaintext payload pt
// into hdr's buffer, after hdr, and returns it: pt is either exactly there
// (sealing in place) or anywhere that does not overlap it (the AEAD then
// copies as it encrypts). hdr's buffer must have room for pt and the tag,
// and pt must be long enough for the sample (padForSample).
func sealPacketFrom(k *aeadKey, hp *hpKey, hdr, pt []byte, pnOff int, pn uint64, firstMask byte) []byte {
	hdrLen := len(hdr)
	out := k.aead.Seal(hdr, k.nonceFor(pn), pt, hdr)
	var m [16]byte
	hp.mask(out[pnOff+hpSampleOffset:pnOff+hpSampleOffset+hpSampleLen], &m)
	out[0] ^= m[0] & firstMask
	for i := 0; i < hdrLen-pnOff; i++ {
		out[pnOff+i] ^= m[1+i]
	}
	return out
}

// unprotectHeader removes header protection from pkt in place and returns
// the header's length and packet number. It fails only on a packet too short
// to carry a sample; the AEAD decides whether the result is genuine.
func unprotectHeader(hp *hpKey, pkt []byte, pnOff int, firstMask byte) (int, uint64, error) {
	if len(pkt) < pnOff+hpSampleOffset+hpSampleLen {
		return 0, 0, errOpen
	}
	var m [16]byte
	hp.mask(pkt[pnOff+hpSampleOffset:pnOff+hpSampleOffset+hpSampleLen], &m)
	pkt[0] ^= m[0] & firstMask
	pkt[pnOff] ^= m[1]
	l := 1 << (pkt[pnOff] >> 6)
	for i := 1; i < l; i++ {
		pkt[pnOff+i] ^= m[1+i]
	}
	pn, n := wire.ReadVarint(pkt[pnOff:])
	if n != l {
		return 0, 0, errOpen
	}
	return pnOff + l, pn, nil
}

// openPayload authenticates and decrypts pkt[hdrLen:] in place and returns the
// plaintext payload.
func openPayload(k *aeadKey, pkt []byte, hdrLen int, pn uint64) ([]byte, error) {
	return openPayloadInto(k, pkt, hdrLen, pn, nil)
}

// openPayloadInto is openPayload writing the plaintext to where t says
// (rxTarget.dst), or in place when t has no room for it or is nil.
func openPayloadInto(k *aeadKey, pkt []byte, hdrLen int, pn uint64, t *rxTarget) ([]byte, error) {
	if len(pkt)-hdrLen < aeadTagLen {
		return nil, errOpen
	}
	dst := pkt[hdrLen:hdrLen]
	if d := t.dst(len(pkt) - hdrLen - aeadTagLen); d != nil {
		dst = d
	}
	p, err := k.aead.Open(dst, k.nonceFor(pn), pkt[hdrLen:], pkt[:hdrLen])
	if err != nil {
		t.undo() // the AEAD may have cleared what it wrote
		return nil, errOpen
	}
	return p, nil
}

// appKeys are a session's 1-RTT keys in both directions, with key update
// (docs/PROTOCOL.md §6.3, RFC 9001 §6).
type appKeys struct {
	sp      suiteParams
	sealHP  hpKey
	openHP  hpKey
	seal    aeadKey
	sealSec []byte
	// sealPhase is the key phase of packets we send; sealed counts them.
	sealPhase bool
	sealed    uint64
	// peerInPhase: a packet of our current seal phase arrived, so the peer
	// has these keys and another update may start (RFC 9001 §6.1).
	peerInPhase bool
	updateAfter uint64 // packets per key generation before we update

	openPhase bool
	openCur   aeadKey
	openNext  aeadKey // phase !openPhase, derived ahead of need
	openPrev  aeadKey // phase !openPhase, for packets sent before the update
	hasPrev   bool
	openSec   []byte // secret of openNext
	curFirst  uint64 // smallest packet number opened in the current phase
	failed    uint64 // packets that failed to open
	failLimit uint64 // integrity limit
	updates   uint64 // key updates done (ours and the peer's)
}

func newAppKeys(suite uint16, sealSecret, openSecret []byte, updateAfter uint64) (*appKeys, error) {
	sp, err := suiteFor(suite)
	if err != nil {
		return nil, err
	}
	k := &appKeys{sp: sp, updateAfter: updateAfter, failLimit: aesGCMIntegrityLimit, curFirst: wire.MaxPacketNumber}
	if sp.chacha {
		k.failLimit = chachaIntegrityLimit
	}
	if k.sealHP, err = newHPKey(sp, sealSecret); err != nil {
		return nil, err
	}
	if k.openHP, err = newHPKey(sp, openSecret); err != nil {
		return nil, err
	}
	if k.seal, err = newAEADKey(sp, sealSecret); err != nil {
		return nil, err
	}
	k.sealSec = sealSecret
	if k.openCur, err = newAEADKey(sp, openSecret); err != nil {
		return nil, err
	}
	k.openSec = hkdfExpandLabel(sp.hash, openSecret, labelKU, len(openSecret))
	if k.openNext, err = newAEADKey(sp, k.openSec); err != nil {
		return nil, err
	}
	return k, nil
}

// sealShort seals a short-header packet whose header (packet number pn) ends
// at hdrLen, in place, updating the send keys first when this generation is
// used up.
func (k *appKeys) sealShort(pkt []byte, hdrLen int, pn uint64) []byte {
	pkt = padForSample(pkt, wire.ShortPNOffset, hdrLen)
	return k.sealShortFrom(pkt[:hdrLen], pkt[hdrLen:], pn)
}

// sealShortFrom is sealShort for a payload pt held apart from the header hdr
// (sealPacketFrom); pt must be long enough for the sample.
func (k *appKeys) sealShortFrom(hdr, pt []byte, pn uint64) []byte {
	if k.sealed >= k.updateAfter && k.peerInPhase {
		k.updateSeal()
	}
	if k.sealPhase {
		hdr[0] |= 0x04
	}
	k.sealed++
	return sealPacketFrom(&k.seal, &k.sealHP, hdr, pt, wire.ShortPNOffset, pn, 0x1f)
}

func (k *appKeys) updateSeal() {
	k.sealSec = hkdfExpandLabel(k.sp.hash, k.sealSec, labelKU, len(k.sealSec))
	nk, err := newAEADKey(k.sp, k.sealSec)
	if err != nil {
		panic("raptor: key update: " + err.Error()) // same suite and sizes as before: cannot fail
	}
	k.seal, k.sealPhase, k.sealed, k.peerInPhase = nk, !k.sealPhase, 0, false
	k.updates++
}

// openShort removes protection from a short-header packet in place and
// returns its parsed header, header length and payload. largest is the
// largest packet number received so far; nothing in k changes unless the
// packet is genuine.
func (k *appKeys) openShort(pkt []byte) (wire.ShortHeader, int, []byte, error) {
	return k.openShortInto(pkt, nil)
}

// openShortInto is openShort writing the plaintext payload where t says
// (rxTarget.dst) instead of in place, if t is not nil and has room for it.
func (k *appKeys) openShortInto(pkt []byte, t *rxTarget) (wire.ShortHeader, int, []byte, error) {
	var h wire.ShortHeader
	hdrLen, pn, err := unprotectHeader(&k.openHP, pkt, wire.ShortPNOffset, 0x1f)
	if err != nil {
		return h, 0, nil, k.fail()
	}
	h, hl, err := wire.ParseShortHeader(pkt[:hdrLen])
	if err != nil || hl != hdrLen {
		return h, 0, nil, k.fail()
	}
	switch {
	case h.KeyPhase == k.openPhase:
		p, err := openPayloadInto(&k.openCur, pkt, hdrLen, pn, t)
		if err != nil {
			return h, 0, nil, k.fail()
		}
		k.curFirst = min(k.curFirst, pn)
		k.noteOpened()
		return h, hdrLen, p, nil
	case k.hasPrev && pn < k.curFirst:
		p, err := openPayloadInto(&k.openPrev, pkt, hdrLen, pn, t)
		if err != nil {
			return h, 0, nil, k.fail()
		}
		return h, hdrLen, p, nil
	}
	// A new key phase: the peer updated its keys.
	p, err := openPayloadInto(&k.openNext, pkt, hdrLen, pn, t)
	if err != nil {
		return h, 0, nil, k.fail()
	}
	k.openPrev, k.hasPrev = k.openCur, true
	k.openCur = k.openNext
	k.openPhase = !k.openPhase
	k.curFirst = pn
	k.openSec = hkdfExpandLabel(k.sp.hash, k.openSec, labelKU, len(k.openSec))
	if k.openNext, err = newAEADKey(k.sp, k.openSec); err != nil {
		panic("raptor: key update: " + err.Error())
	}
	if k.sealPhase != k.openPhase {
		k.updateSeal() // answer the peer's update
	} else {
		k.updates++
	}
	k.noteOpened()
	return h, hdrLen, p, nil
}

func (k *appKeys) noteOpened() {
	if k.openPhase == k.sealPhase {
		k.peerInPhase = true
	}
}

func (k *appKeys) fail() error {
	k.failed++
	return errOpen
}

// integrityExceeded reports whether so many packets failed to open that the
// AEAD's integrity limit forbids going on.
func (k *appKeys) integrityExceeded() bool { return k.failed >= k.failLimit }
