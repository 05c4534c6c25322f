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

// errorDomain is the ErrorInfo domain of the bridge's typed errors.
const errorDomain = "rafka.raptormq.io"

// The ErrorInfo reasons of the typed errors (docs/RAFKA.md, "Errors").
const (
	reasonUnknownTopic     = "UNKNOWN_TOPIC"
	reasonUnknownPartition = "UNKNOWN_PARTITION"
	reasonUnknownConsumer  = "UNKNOWN_CONSUMER"
	reasonInvalidArgument  = "INVALID_ARGUMENT"
	reasonBridgeClosed     = "BRIDGE_CLOSED"
	reasonBroker           = "BROKER"
	reasonLimit            = "LIMIT"
	reasonReplaced         = "STREAM_REPLACED"
)

// UnknownTopicError: the topic does not exist on the Kafka-protocol broker.
// gRPC code NotFound.
type UnknownTopicError struct{ Topic string }

func (e *UnknownTopicError) Error() string { return fmt.Sprintf("rafka: unknown topic %q", e.Topic) }

// GRPCStatus is the error's gRPC status, with an ErrorInfo detail that
// lets the client rebuild it.
func (e *UnknownTopicError) GRPCStatus() *status.Status {
	return newStatus(codes.NotFound, e.Error(), reasonUnknownTopic, map[string]string{"topic": e.Topic})
}

// UnknownPartitionError: the topic has no such partition. gRPC code
// OutOfRange.
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
	return newStatus(codes.OutOfRange, e.Error(), reasonUnknownPartition, map[string]string{
		"topic": e.Topic, "partition": strconv.Itoa(int(e.Partition)), "partitions": strconv.Itoa(int(e.Partitions)),
	})
}

// UnknownConsumerError: the consumer ID was not registered (call Register
// first). gRPC code FailedPrecondition.
type UnknownConsumerError struct{ ConsumerID string }

func (e *UnknownConsumerError) Error() string {
	return fmt.Sprintf("rafka: consumer %q is not registered (call Register first)", e.ConsumerID)
}

// GRPCStatus is the error's gRPC status.
func (e *UnknownConsumerError) GRPCStatus() *status.Status {
	return newStatus(codes.FailedPrecondition, e.Error(), reasonUnknownConsumer, map[string]string{"consumer_id": e.ConsumerID})
}

// InvalidArgumentError: a request field has a value the bridge cannot use.
// gRPC code InvalidArgument.
type InvalidArgumentError struct {
	Field  string // the request field, as in its msgpack name
	Value  string // the value given
	Reason string // what is wrong with it
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("rafka: %s %q: %s", e.Field, e.Value, e.Reason)
}

// GRPCStatus is the error's gRPC status.
func (e *InvalidArgumentError) GRPCStatus() *status.Status {
	return newStatus(codes.InvalidArgument, e.Error(), reasonInvalidArgument, map[string]string{
		"field": e.Field, "value": e.Value, "reason": e.Reason,
	})
}

// BrokerError: the Kafka-protocol broker failed an operation. gRPC code
// Unavailable (the call may be retried). On the client side Err holds the
// broker's message as text.
type BrokerError struct {
	Op    string // "publish", "commit", "consume", "metadata"
	Topic string
	Err   error
}

func (e *BrokerError) Error() string {
	return fmt.Sprintf("rafka: %s on topic %q: broker: %v", e.Op, e.Topic, e.Err)
}

// Unwrap returns the broker's error.
func (e *BrokerError) Unwrap() error { return e.Err }

// GRPCStatus is the error's gRPC status.
func (e *BrokerError) GRPCStatus() *status.Status {
	return newStatus(codes.Unavailable, e.Error(), reasonBroker, map[string]string{
		"op": e.Op, "topic": e.Topic, "error": e.Err.Error(),
	})
}

// LimitError: a configured limit of the bridge was reached. gRPC code
// ResourceExhausted.
type LimitError struct {
	What  string // "consumers", "groups"
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("rafka: too many %s (the bridge's limit is %d)", e.What, e.Limit)
}

// GRPCStatus is the error's gRPC status.
func (e *LimitError) GRPCStatus() *status.Status {
	return newStatus(codes.ResourceExhausted, e.Error(), reasonLimit, map[string]string{"what": e.What, "limit": strconv.Itoa(e.Limit)})
}

// StreamReplacedError ends a Consume stream when a newer Consume of the
// same consumer ID takes over. gRPC code Aborted.
type StreamReplacedError struct{ ConsumerID string }

func (e *StreamReplacedError) Error() string {
	return fmt.Sprintf("rafka: consumer %q: stream replaced by a newer Consume", e.ConsumerID)
}

// GRPCStatus is the error's gRPC status.
func (e *StreamReplacedError) GRPCStatus() *status.Status {
	return newStatus(codes.Aborted, e.Error(), reasonReplaced, map[string]string{"consumer_id": e.ConsumerID})
}

// closedError is the type of ErrBridgeClosed.
type closedError struct{}

func (closedError) Error() string { return "rafka: bridge closed" }

func (closedError) GRPCStatus() *status.Status {
	return newStatus(codes.Unavailable, "rafka: bridge closed", reasonBridgeClosed, nil)
}

// ErrBridgeClosed is returned by every call after [Bridge.Close], and ends
// running Consume streams. gRPC code Unavailable.
var ErrBridgeClosed error = closedError{}

func newStatus(c codes.Code, msg, reason string, md map[string]string) *status.Status {
	s := status.New(c, msg)
	if d, err := s.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: md}); err == nil {
		return d
	}
	return s
}

// toStatus turns a handler error into the error gRPC sends: typed errors
// carry their own status, context errors become Canceled or
// DeadlineExceeded, anything else Internal.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, err.Error())
}

// fromStatus rebuilds the typed error a bridge sent; other errors are
// returned unchanged (their gRPC status is still available to
// status.FromError).
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range s.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		md := info.GetMetadata()
		atoi := func(k string) int32 { n, _ := strconv.Atoi(md[k]); return int32(n) }
		switch info.GetReason() {
		case reasonUnknownTopic:
			return &UnknownTopicError{Topic: md["topic"]}
		case reasonUnknownPartition:
			return &UnknownPartitionError{Topic: md["topic"], Partition: atoi("partition"), Partitions: atoi("partitions")}
		case reasonUnknownConsumer:
			return &UnknownConsumerError{ConsumerID: md["consumer_id"]}
		case reasonInvalidArgument:
			return &InvalidArgumentError{Field: md["field"], Value: md["value"], Reason: md["reason"]}
		case reasonLimit:
			return &LimitError{What: md["what"], Limit: int(atoi("limit"))}
		case reasonReplaced:
			return &StreamReplacedError{ConsumerID: md["consumer_id"]}
		case reasonBridgeClosed:
			return ErrBridgeClosed
		case reasonBroker:
			return &BrokerError{Op: md["op"], Topic: md["topic"], Err: errors.New(md["error"])}
		}
	}
	return err
}
