package rafka

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/raptormq/raptor/compat/rafka/rafkapb"
)

// GetMetrics implements rafka.BrokerService with the Kafka cluster's own
// figures over its non-internal topics: total_messages is the sum over
// partitions of end offset minus start offset (records still retained),
// total_bytes the size of their logs (DescribeLogDirs, the leader's
// replica), oldest_message_age_secs the age of the oldest first retained
// record batch of any partition (0 when every partition is empty).
func (b *Bridge) GetMetrics(ctx context.Context, _ *rafkapb.GetMetricsRequest) (*rafkapb.GetMetricsResponse, error) {
	m, err := b.adm.Metadata(ctx)
	if err != nil {
		return nil, b.brokerErr(ctx, "metrics (metadata)", "", err)
	}
	var topics []string
	ids := map[string]kadm.TopicID{}
	var set kadm.TopicsSet
	for t, td := range m.Topics {
		if td.IsInternal || td.Err != nil {
			continue
		}
		topics = append(topics, t)
		ids[t] = td.ID
		for p := range td.Partitions {
			set.Add(t, p)
		}
	}
	resp := &rafkapb.GetMetricsResponse{}
	if len(topics) == 0 {
		return resp, nil
	}
	slices.Sort(topics)
	starts, err := b.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, b.brokerErr(ctx, "metrics (start offsets)", "", err)
	}
	ends, err := b.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, b.brokerErr(ctx, "metrics (end offsets)", "", err)
	}
	var firsts []firstFetch
	for _, t := range topics {
		for p, pd := range m.Topics[t].Partitions {
			s, _ := starts.Lookup(t, p)
			e, _ := ends.Lookup(t, p)
			if e.Offset > s.Offset {
				resp.TotalMessages += uint64(e.Offset - s.Offset)
				firsts = append(firsts, firstFetch{topic: t, id: ids[t], part: p, leader: pd.Leader, offset: s.Offset})
			}
		}
	}
	dirs, err := b.adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return nil, b.brokerErr(ctx, "metrics (log dirs)", "", err)
	}
	sizes := map[topicPartition]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			tp := topicPartition{p.Topic, p.Partition}
			sizes[tp] = max(sizes[tp], p.Size) // one replica per partition
		})
	})
	for _, s := range sizes {
		resp.TotalBytes += uint64(max(s, 0))
	}
	oldest, err := b.oldestTimestamp(ctx, firsts)
	if err != nil {
		return nil, err
	}
	if oldest > 0 {
		if age := time.Since(time.UnixMilli(oldest)); age > 0 {
			resp.OldestMessageAgeSecs = uint64(age / time.Second)
		}
	}
	return resp, nil
}

// firstFetch is a partition whose first retained batch GetMetrics reads.
type firstFetch struct {
	topic  string
	id     kadm.TopicID
	part   int32
	leader int32
	offset int64
}

// oldestTimestamp returns the smallest first timestamp (ms) of the first
// record batches of ps, fetched from each leader together (64 KiB per
// partition), and alone for a partition whose first batch is larger (a
// broker always returns the first batch of the first partition).
func (b *Bridge) oldestTimestamp(ctx context.Context, ps []firstFetch) (int64, error) {
	oldest := int64(0)
	note := func(ts int64) {
		if ts > 0 && (oldest == 0 || ts < oldest) {
			oldest = ts
		}
	}
	byLeader := map[int32][]firstFetch{}
	for _, p := range ps {
		byLeader[p.leader] = append(byLeader[p.leader], p)
	}
	for leader, group := range byLeader {
		missed, err := b.fetchFirst(ctx, leader, group, note)
		if err != nil {
			return 0, err
		}
		for _, p := range missed {
			if _, err := b.fetchFirst(ctx, leader, []firstFetch{p}, note); err != nil {
				return 0, err
			}
		}
	}
	return oldest, nil
}

// fetchFirst issues one Fetch to leader for ps at their start offsets and
// passes each first batch's timestamp to note; it returns the partitions
// that came back without a batch.
func (b *Bridge) fetchFirst(ctx context.Context, leader int32, ps []firstFetch, note func(int64)) ([]firstFetch, error) {
	const perPartition = 64 << 10
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = int32(min(len(ps)*perPartition, 32<<20))
	req.SessionEpoch = -1
	at := map[topicPartition]firstFetch{}
	idx := map[string]int{}
	for _, p := range ps {
		at[topicPartition{p.topic, p.part}] = p
		i, ok := idx[p.topic]
		if !ok {
			i = len(req.Topics)
			idx[p.topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = p.topic, p.id
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.part, p.offset, perPartition
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	kr, err := b.prod.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return nil, b.brokerErr(ctx, "metrics (fetch)", "", fmt.Errorf("broker %d: %w", leader, err))
	}
	resp := kr.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, &BrokerError{Op: "metrics (fetch)", Err: fmt.Errorf("broker %d: %w", leader, err)}
	}
	var missed []firstFetch
	for _, rt := range resp.Topics {
		name := rt.Topic
		if name == "" { // v13+ answers by topic ID
			for _, p := range ps {
				if p.id == rt.TopicID {
					name = p.topic
				}
			}
		}
		for _, rp := range rt.Partitions {
			p, ok := at[topicPartition{name, rp.Partition}]
			if !ok {
				continue
			}
			delete(at, topicPartition{name, rp.Partition})
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, &BrokerError{Op: "metrics (fetch)", Topic: name, Err: fmt.Errorf("partition %d offset %d: %w", rp.Partition, p.offset, err)}
			}
			ts, err := firstTimestamp(rp.RecordBatches)
			if err != nil {
				if len(ps) > 1 {
					missed = append(missed, p)
				}
				continue
			}
			note(ts)
		}
	}
	return missed, nil
}

// healthTimeout bounds the metadata request of a HealthCheck.
const healthTimeout = 5 * time.Second

// HealthCheck implements rafka.BrokerService: healthy when the bridge
// reaches the Kafka cluster within 5 s (or half of
// Config.CallTimeout); status names its brokers. timestamp is in
// seconds since the epoch, as Rafka's broker answers.
func (b *Bridge) HealthCheck(ctx context.Context, _ *rafkapb.HealthCheckRequest) (*rafkapb.HealthCheckResponse, error) {
	bound := min(healthTimeout, b.cfg.CallTimeout/2) // answer before the call's own bound
	hctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	// Ping is a round trip (ApiVersions) to a broker; metadata may come
	// from franz-go's cache, so it only describes the cluster.
	err := b.prod.Ping(hctx)
	var m kadm.Metadata
	if err == nil {
		m, err = b.adm.BrokerMetadata(hctx)
	}
	resp := &rafkapb.HealthCheckResponse{Timestamp: time.Now().Unix()}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case hctx.Err() != nil:
		resp.Status = fmt.Sprintf("unhealthy: no answer from Kafka brokers %v within %v", b.cfg.Brokers, bound)
	case err != nil:
		resp.Status = fmt.Sprintf("unhealthy: Kafka brokers %v unreachable: %v", b.cfg.Brokers, err)
	case len(m.Brokers) == 0:
		resp.Status = fmt.Sprintf("unhealthy: Kafka cluster %q lists no brokers", m.Cluster)
	default:
		resp.Healthy = true
		resp.Status = fmt.Sprintf("OK: Kafka cluster %q, %d broker(s) %s, controller %d", m.Cluster, len(m.Brokers), brokerList(m.Brokers), m.Controller)
	}
	return resp, nil
}

func brokerList(bs kadm.BrokerDetails) string {
	s := ""
	for i, d := range bs {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(int(d.NodeID)) + "=" + d.Host + ":" + strconv.Itoa(int(d.Port))
	}
	return s
}

// GetClusterInfo implements rafka.BrokerService with the Kafka brokers
// behind the bridge: broker_id is the Kafka node ID, address and port its
// advertised listener, partition_id -1 (a Kafka broker owns no single
// partition), total_partitions the partitions it leads among non-internal
// topics, is_healthy true for every broker the metadata lists. cluster_id
// is the Kafka cluster ID.
func (b *Bridge) GetClusterInfo(ctx context.Context, _ *rafkapb.GetClusterInfoRequest) (*rafkapb.GetClusterInfoResponse, error) {
	m, err := b.adm.Metadata(ctx)
	if err != nil {
		return nil, b.brokerErr(ctx, "cluster info (metadata)", "", err)
	}
	led := map[int32]int32{}
	for _, td := range m.Topics {
		if td.IsInternal || td.Err != nil {
			continue
		}
		for _, pd := range td.Partitions {
			led[pd.Leader]++
		}
	}
	resp := &rafkapb.GetClusterInfoResponse{ClusterSize: int32(len(m.Brokers)), ClusterId: m.Cluster}
	for _, d := range m.Brokers {
		resp.Brokers = append(resp.Brokers, &rafkapb.BrokerInfo{
			BrokerId: strconv.Itoa(int(d.NodeID)), Address: d.Host, Port: d.Port,
			PartitionId: -1, TotalPartitions: led[d.NodeID], IsHealthy: true,
		})
	}
	return resp, nil
}
