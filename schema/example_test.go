package schema_test

import (
	"fmt"

	"github.com/raptormq/raptor/schema"
)

// A consumer on v2 reads a record written with v1: id is promoted from int
// to long, the renamed field is found through its alias, and the added field
// takes its default.
func ExampleResolver() {
	v1 := schema.MustParse(`{"type":"record","name":"User","fields":[
		{"name":"id","type":"int"},{"name":"email","type":"string"}]}`)
	v2 := schema.MustParse(`{"type":"record","name":"User","fields":[
		{"name":"id","type":"long"},
		{"name":"mail","aliases":["email"],"type":"string"},
		{"name":"age","type":"int","default":-1}]}`)

	body, err := v1.Encode(map[string]any{"id": 7, "email": "ada@example.org"})
	if err != nil {
		panic(err)
	}
	frame := append(schema.AppendFrameHeader(nil, schema.FormatMsgpack, 1), body...)

	format, id, body, err := schema.ParseFrame(frame)
	if err != nil {
		panic(err)
	}
	r, err := schema.NewResolver(v1, v2)
	if err != nil {
		panic(err)
	}
	v, err := r.Decode(body)
	if err != nil {
		panic(err)
	}
	m := v.(map[string]any)
	fmt.Printf("%s, schema %d: id=%d (%T) mail=%s age=%d\n", format, id, m["id"], m["id"], m["mail"], m["age"])
	// Output: msgpack, schema 1: id=7 (int64) mail=ada@example.org age=-1
}
