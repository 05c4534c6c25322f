package rafka

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/grpc/encoding"
)

// CodecName is the gRPC content-subtype of the rafka messages: requests
// travel as "application/grpc+rafka-msgpack". The codec is registered with
// grpc's encoding registry when the package is loaded, so a grpc.Server
// serving [BrokerServiceDesc] needs no option; [Client] selects it on
// every call.
const CodecName = "rafka-msgpack"

// Codec encodes the rafka messages with msgpack. It implements grpc's
// encoding.Codec.
type Codec struct{}

// Marshal encodes v with msgpack.
func (Codec) Marshal(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("rafka: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes data into v, a pointer to a message.
func (Codec) Unmarshal(data []byte, v any) error {
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("rafka: decode %d bytes into %T: %w", len(data), v, err)
	}
	return nil
}

// Name returns [CodecName].
func (Codec) Name() string { return CodecName }

func init() { encoding.RegisterCodec(Codec{}) }
