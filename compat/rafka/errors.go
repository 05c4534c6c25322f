package rafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of the bridge's errors.
const ErrorDomain = "rafka.raptormq.io"

// The ErrorInfo reasons of the bridge's errors (docs/RAFKA.md, "Errors").
// An RPC whose response has success and message fields carries the reason
// in the trailer [TrailerReason]; the others carry it in the status.
const (
	ReasonUnknownTopic     = "UNKNOWN_TOPIC"
	ReasonUnknownPartition = "UNKNOWN_PARTITION"
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonOffsetPartition  = "OFFSET_PARTITION_UNKNOWN"
	ReasonLimit            = "LIMIT"
	ReasonBroker           = "BROKER"
	ReasonBridgeClosed     = "BRIDGE_CLOSED"
	ReasonBrokerOnly       = "BROKER_TO_BROKER_ONLY"
)

// The response trailers of a call answered with success=false: the gRPC
// code the failure would have had (its name, e.g. "NotFound") and the
// ErrorInfo reason.
const (
	TrailerCode   = "raptor-rafka-code"
	TrailerReason = "raptor-rafka-reason"
)

// UnknownTopicError: the topic does not exist on the Kafka-protocol broker
// (and the bridge does not create topics). gRPC code NotFound.
type UnknownTopicError struct{ Topic string }

func (e *UnknownTopicError) Error() string { return fmt.Sprintf("rafka: unknown topic %q", e.Topic) }

// GRPCStatus is the error's gRPC status, with an ErrorInfo detail.
func (e *UnknownTopicError) GRPCStatus() *status.Status {
	return newStatus(codes.NotFound, e.Error(), ReasonUnknownTopic, map[string]string{"topic": e.Topic})
}

// UnknownPartitionError: a message ID names a partition the topic lacks.
// gRPC code OutOfRange.
type UnknownPartitionError struct {
	Topic      string
	Partition  int32
	Partitions int32 // how many the topic has
}

func (e *UnknownPartitionError) Error() string {
	return fmt.Sprintf("rafka: topic %q has no partition %d (it has %d)", e.Topic, e.Partition, e.Partitions)
}

// GRPCStatus is the error's gRPC status.
func (e *UnknownPartitionError) GRPCStatus() *status.Status {
	return newStatus(codes.OutOfRange, e.Error(), ReasonUnknownPartition, map[string]string{
		"topic": e.Topic, "partition": strconv.Itoa(int(e.Partition)), "partitions": strconv.Itoa(int(e.Partitions)),
	})
}

// InvalidArgumentError: a request field has a value the bridge cannot use.
// gRPC code InvalidArgument.
type InvalidArgumentError struct {
	Field  string // the proto field name
	Value  string // the value given
	Reason string // what is wrong with it
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("rafka: %s %q: %s", e.Field, e.Value, e.Reason)
}

// GRPCStatus is the error's gRPC status.
func (e *InvalidArgumentError) GRPCStatus() *status.Status {
	return newStatus(codes.InvalidArgument, e.Error(), ReasonInvalidArgument, map[string]string{
		"field": e.Field, "value": e.Value, "reason": e.Reason,
	})
}

// OffsetPartitionError: UpdateOffset named an offset of a topic with
// several partitions, and the bridge cannot tell which partition's message
// the consumer means (see docs/RAFKA.md, "Offsets"). gRPC code
// FailedPrecondition.
type OffsetPartitionError struct {
	ConsumerID string
	Topic      string
	Offset     int64
	Partitions int32
	Candidates []int32 // partitions that recently delivered Offset to the consumer
}

func (e *OffsetPartitionError) Error() string {
	return fmt.Sprintf("rafka: consumer %q: offset %d of topic %q (%d partitions) names no single partition (recent deliveries of it: partitions %v); acknowledge by message_id first or use a one-partition topic",
		e.ConsumerID, e.Offset, e.Topic, e.Partitions, e.Candidates)
}

// GRPCStatus is the error's gRPC status.
func (e *OffsetPartitionError) GRPCStatus() *status.Status {
	return newStatus(codes.FailedPrecondition, e.Error(), ReasonOffsetPartition, map[string]string{
		"consumer_id": e.ConsumerID, "topic": e.Topic, "offset": strconv.FormatInt(e.Offset, 10),
	})
}

// LimitError: a configured limit of the bridge was reached. gRPC code
// ResourceExhausted.
type LimitError struct {
	What  string // "consumers", "streams"
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("rafka: too many %s (the bridge's limit is %d)", e.What, e.Limit)
}

// GRPCStatus is the error's gRPC status.
func (e *LimitError) GRPCStatus() *status.Status {
	return newStatus(codes.ResourceExhausted, e.Error(), ReasonLimit, map[string]string{"what": e.What, "limit": strconv.Itoa(e.Limit)})
}

// BrokerError: the Kafka-protocol broker failed an operation. gRPC code
// Unavailable (the call may be retried).
type BrokerError struct {
	Op    string // "publish", "commit", "consume", "metadata", "metrics"
	Topic string
	Err   error
}

func (e *BrokerError) Error() string {
	if e.Topic == "" {
		return fmt.Sprintf("rafka: %s: Kafka broker: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("rafka: %s on topic %q: Kafka broker: %v", e.Op, e.Topic, e.Err)
}

// Unwrap returns the broker's error.
func (e *BrokerError) Unwrap() error { return e.Err }

// GRPCStatus is the error's gRPC status.
func (e *BrokerError) GRPCStatus() *status.Status {
	return newStatus(codes.Unavailable, e.Error(), ReasonBroker, map[string]string{
		"op": e.Op, "topic": e.Topic, "error": e.Err.Error(),
	})
}

// BrokerOnlyError answers the RPCs that only Rafka brokers call among
// themselves (cluster and mesh membership, forwarding). gRPC code
// Unimplemented, always in the status.
type BrokerOnlyError struct {
	Method string // "ForwardMessage", ...
	Why    string
}

func (e *BrokerOnlyError) Error() string {
	return fmt.Sprintf("rafka: %s is not served by raptor's Kafka bridge: %s", e.Method, e.Why)
}

// GRPCStatus is the error's gRPC status.
func (e *BrokerOnlyError) GRPCStatus() *status.Status {
	return newStatus(codes.Unimplemented, e.Error(), ReasonBrokerOnly, map[string]string{"method": e.Method})
}

// closedError is the type of ErrBridgeClosed.
type closedError struct{}

func (closedError) Error() string { return "rafka: bridge closed" }

func (closedError) GRPCStatus() *status.Status {
	return newStatus(codes.Unavailable, "rafka: bridge closed", ReasonBridgeClosed, nil)
}

// ErrBridgeClosed answers every call after [Bridge.Close], and ends running
// Consume streams. gRPC code Unavailable.
var ErrBridgeClosed error = closedError{}

func newStatus(c codes.Code, msg, reason string, md map[string]string) *status.Status {
	s := status.New(c, msg)
	if d, err := s.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: md}); err == nil {
		return d
	}
	return s
}

// toStatus turns a handler error into a gRPC status: typed errors carry
// their own, context errors become Canceled or DeadlineExceeded, anything
// else Internal.
func toStatus(err error) *status.Status {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err)
	}
	return status.New(codes.Internal, err.Error())
}

// reasonOf returns the ErrorInfo reason of s, or "".
func reasonOf(s *status.Status) string {
	for _, d := range s.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}
