package reliable

import (
	"fmt"
	"strings"
	"time"
)

// dumpSession describes a session's internal state for test failure messages.
func dumpSession(s *Session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "session client=%v state=%d err=%v inFlight=%d cwnd=%d sent=%d pto=%d probes=%d sending=%v wanted=%v armed=%v(in %v) lossTime=%v\n",
		s.isClient, s.state, s.err, s.rec.inFlight, s.rec.window(), s.rec.sent.len(), s.rec.ptoCount, s.rec.probes, s.sending, s.sendWanted,
		s.armed.Format("15:04:05.000000"), time.Until(s.armed), s.rec.lossTime)
	fmt.Fprintf(&b, "  sentData=%d peerMaxData=%d recvData=%d recvMaxData=%d consumed=%d maxDataQ=%v ackPending=%v ackNow=%v naks=%v queue=%d/%d nextPN=%d largestAcked=%d\n",
		s.sentData, s.peerMaxData, s.recvData, s.recvMaxData, s.consumed, s.maxDataQueued, s.rcv.ackPending, s.rcv.ackNow, s.rcv.naks, s.sendQueueHead, len(s.sendQueue), s.rec.nextPN, s.rec.largestAcked)
	if p := s.rec.sent.oldest(); p != nil {
		fmt.Fprintf(&b, "  oldest outstanding pn=%d sent %v ago chunks=%v\n", p.pn, time.Since(p.sentAt), p.chunks[:p.nchunks])
	}
	for id, st := range s.streams {
		fmt.Fprintf(&b, "  stream %d: sendBase=%d sendNext=%d writeOff=%d peerMax=%d fin q/s/a=%v/%v/%v inQ=%v retx=%v acked=%v | readOff=%d recvMax=%d highest=%d finRecv=%v recvd=%v msdQ=%v\n",
			id, st.sendBase, st.sendNext, st.writeOff, st.peerMax, st.finQueued, st.finSent, st.finAcked, st.inSendQueue, st.retx.s, st.acked.s,
			st.readOff, st.recvMax, st.highestRecv, st.finRecv, st.recvd.s, st.maxDataQueued)
	}
	return b.String()
}

func dumpListener(l *Listener) string {
	l.e.mu.Lock()
	list := make([]*Session, 0, len(l.e.sessions))
	for _, s := range l.e.sessions {
		list = append(list, s)
	}
	l.e.mu.Unlock()
	var b strings.Builder
	for _, s := range list {
		b.WriteString(dumpSession(s))
	}
	return b.String()
}
