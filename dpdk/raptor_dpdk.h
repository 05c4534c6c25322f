// raptor_dpdk.h: thin C wrappers around DPDK 22.11 for package dpdk. Many
// DPDK fast-path functions are static inline and cannot be called from Go;
// every burst is one cgo call. Included by the cgo preambles of the
// dpdk-tagged Go files only.
#ifndef RAPTOR_DPDK_H
#define RAPTOR_DPDK_H
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

static inline int raptor_eal_init(int argc, char **argv) {
	int r = rte_eal_init(argc, argv);
	return r < 0 ? -rte_errno : r;
}

static inline int raptor_port_by_name(const char *name) {
	uint16_t p;
	if (rte_eth_dev_get_port_by_name(name, &p) != 0) return -ENODEV;
	return p;
}

static inline int raptor_probe(const char *devargs) { return rte_dev_probe(devargs); }

static inline struct rte_mempool *raptor_pool_create(const char *name, unsigned n, unsigned cache, uint16_t room, int *err) {
	struct rte_mempool *mp = rte_pktmbuf_pool_create(name, n, cache, 0, room, SOCKET_ID_ANY);
	*err = mp ? 0 : -rte_errno;
	return mp;
}

typedef struct {
	uint64_t tx_ol;   // mbuf ol_flags for checksum offload; 0: software checksums
	int rx_ol;        // device verifies IPv4/UDP checksums
	uint16_t nrx, ntx;
	uint8_t mac[6];
	int stage;        // failing step
} raptor_setup;

static inline int raptor_port_setup(uint16_t port, struct rte_mempool *mp, raptor_setup *s, int offload, uint16_t mtu) {
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int r;
	memset(&conf, 0, sizeof conf);
	s->stage = 1;
	if ((r = rte_eth_dev_info_get(port, &info)) != 0) return r;
	uint64_t txw = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	uint64_t rxw = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	s->tx_ol = 0;
	s->rx_ol = 0;
	if (offload && (info.tx_offload_capa & txw) == txw) {
		conf.txmode.offloads |= txw;
		s->tx_ol = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
	}
	if (offload && (info.rx_offload_capa & rxw) == rxw) {
		conf.rxmode.offloads |= rxw;
		s->rx_ol = 1;
	}
	// One pool, refcount 1: the device may free transmitted mbufs in bulk.
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	s->stage = 2;
	if ((r = rte_eth_dev_configure(port, 1, 1, &conf)) != 0) return r;
	s->stage = 3;
	if ((r = rte_eth_dev_adjust_nb_rx_tx_desc(port, &s->nrx, &s->ntx)) != 0) return r;
	int sock = rte_eth_dev_socket_id(port);
	if (sock < 0) sock = SOCKET_ID_ANY;
	struct rte_eth_rxconf rxc = info.default_rxconf;
	rxc.offloads = conf.rxmode.offloads;
	s->stage = 4;
	if ((r = rte_eth_rx_queue_setup(port, 0, s->nrx, sock, &rxc, mp)) != 0) return r;
	struct rte_eth_txconf txc = info.default_txconf;
	txc.offloads = conf.txmode.offloads;
	s->stage = 5;
	if ((r = rte_eth_tx_queue_setup(port, 0, s->ntx, sock, &txc)) != 0) return r;
	if (mtu != 1500) {
		s->stage = 6;
		r = rte_eth_dev_set_mtu(port, mtu);
		if (r != 0 && r != -ENOTSUP) return r;
	}
	s->stage = 7;
	if ((r = rte_eth_dev_start(port)) != 0) return r;
	s->stage = 8;
	if ((r = rte_eth_macaddr_get(port, (struct rte_ether_addr *)s->mac)) != 0) return r;
	s->stage = 0;
	return 0;
}

// raptor_port_close stops and closes the port and detaches its device so that
// the same device string can be opened again.
static inline int raptor_port_close(uint16_t port) {
	struct rte_eth_dev_info info;
	struct rte_device *dev = NULL;
	if (rte_eth_dev_info_get(port, &info) == 0) dev = info.device;
	rte_eth_dev_stop(port);
	int r = rte_eth_dev_close(port);
	if (dev != NULL) {
		int r2 = rte_dev_remove(dev);
		if (r == 0) r = r2;
	}
	return r;
}

typedef struct {
	struct rte_mbuf *m;
	uint8_t *data;
	uint64_t ol;
	uint16_t len;
	uint16_t segs;
} raptor_rxd;

static inline uint16_t raptor_rx(uint16_t port, struct rte_mbuf **ms, raptor_rxd *d, uint16_t n) {
	uint16_t got = rte_eth_rx_burst(port, 0, ms, n);
	for (uint16_t i = 0; i < got; i++) {
		struct rte_mbuf *m = ms[i];
		d[i].m = m;
		d[i].data = rte_pktmbuf_mtod(m, uint8_t *);
		d[i].ol = m->ol_flags;
		d[i].len = m->data_len;
		d[i].segs = m->nb_segs;
	}
	return got;
}

static inline void raptor_free(struct rte_mbuf **ms, unsigned n) { rte_pktmbuf_free_bulk(ms, n); }

typedef struct {
	struct rte_mbuf *m;
	uint8_t *data;
	uint16_t len;
	uint16_t udp;     // apply checksum offload flags
} raptor_txd;

static inline int raptor_tx_alloc(struct rte_mempool *mp, struct rte_mbuf **ms, raptor_txd *d, unsigned n) {
	if (rte_pktmbuf_alloc_bulk(mp, ms, n) != 0) return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		d[i].m = ms[i];
		d[i].data = rte_pktmbuf_mtod(ms[i], uint8_t *);
		d[i].len = 0;
		d[i].udp = 0;
	}
	return (int)n;
}

// raptor_tx sends d[0..n), retrying for up to wait cycles while the device
// queue is full, and frees what it could not send. It returns the number sent.
static inline uint16_t raptor_tx(uint16_t port, struct rte_mbuf **ms, raptor_txd *d, uint16_t n, uint64_t ol, uint64_t wait) {
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = d[i].m;
		m->data_len = d[i].len;
		m->pkt_len = d[i].len;
		if (ol != 0 && d[i].udp) {
			m->ol_flags |= ol;
			m->l2_len = 14;
			m->l3_len = 20;
		}
		ms[i] = m;
	}
	uint16_t sent = 0;
	uint64_t deadline = 0;
	while (sent < n) {
		uint16_t k = rte_eth_tx_burst(port, 0, ms + sent, n - sent);
		sent += k;
		if (sent == n || k > 0) continue;
		uint64_t now = rte_get_timer_cycles();
		if (deadline == 0) deadline = now + wait;
		else if (now >= deadline) break;
		rte_pause();
	}
	if (sent < n) rte_pktmbuf_free_bulk(ms + sent, n - sent);
	return sent;
}

static inline uint64_t raptor_timer_hz(void) { return rte_get_timer_hz(); }

static inline int raptor_stats(uint16_t port, struct rte_eth_stats *st) { return rte_eth_stats_get(port, st); }

// raptor_ring_pair creates two rings and two net_ring ports joined back to
// back: what port 0 sends, port 1 receives, and the reverse.
static inline int raptor_ring_pair(const char *n0, const char *n1, const char *r0, const char *r1, unsigned size,
		struct rte_ring **ra, struct rte_ring **rb, int *p0, int *p1) {
	*ra = rte_ring_create(r0, size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (*ra == NULL) return -rte_errno;
	*rb = rte_ring_create(r1, size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (*rb == NULL) { int e = -rte_errno; rte_ring_free(*ra); return e; }
	*p0 = rte_eth_from_rings(n0, rb, 1, ra, 1, SOCKET_ID_ANY);  // rx b, tx a
	if (*p0 < 0) { int e = -rte_errno; rte_ring_free(*ra); rte_ring_free(*rb); return e; }
	*p1 = rte_eth_from_rings(n1, ra, 1, rb, 1, SOCKET_ID_ANY);  // rx a, tx b
	if (*p1 < 0) { int e = -rte_errno; raptor_port_close(*p0); rte_ring_free(*ra); rte_ring_free(*rb); return e; }
	return 0;
}

#endif
