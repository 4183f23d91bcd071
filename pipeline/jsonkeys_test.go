package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// tokenDuplicateKey is the reference: duplicateKey as a json.Decoder token
// walk (what it was before it scanned in place).
func tokenDuplicateKey(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return tokenWalk(dec, "", reflect.TypeOf(v))
}

func tokenWalk(dec *json.Decoder, path string, t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		isStruct := t != nil && t.Kind() == reflect.Struct
		seen := map[string]string{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			at := key
			if path != "" {
				at = path + "." + key
			}
			id := key
			if isStruct {
				id = strings.ToLower(key)
			}
			if prev, dup := seen[id]; dup {
				if prev == key {
					return fmt.Errorf("key %q appears twice", at)
				}
				return fmt.Errorf("keys %q and %q name the same field (case is ignored)", prev, key)
			}
			seen[id] = key
			var child reflect.Type
			switch {
			case isStruct:
				child = fieldType(t, key)
			case t != nil && t.Kind() == reflect.Map:
				child = t.Elem()
			}
			if err := tokenWalk(dec, at, child); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := tokenWalk(dec, path+"["+strconv.Itoa(i)+"]", elem); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	return err
}

type dupInner struct {
	Name string            `json:"name"`
	Tags map[string]string `json:"tags"`
}

type dupDoc struct {
	Pipeline string            `json:"pipeline"`
	Params   map[string]string `json:"params"`
	Items    []dupInner        `json:"items"`
	Grid     [][]dupInner      `json:"grid"`
	Any      any               `json:"any"`
	Skip     string            `json:"-"`
	dupInner
}

func TestDuplicateKeyTable(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"pipeline":"a"}`, ""},
		{` {"pipeline":"a","pipeline":"b"} `, `key "pipeline" appears twice`},
		{`{"pipeline":"a","Pipeline":"b"}`, `keys "pipeline" and "Pipeline" name the same field (case is ignored)`},
		{`{"params":{"rows":"1","Rows":"2"}}`, ""},
		{`{"params":{"rows":"1","rows":"2"}}`, `key "params.rows" appears twice`},
		{`{"items":[{"name":"a"},{"name":"b","tags":{"x":"1","x":"2"}}]}`, `key "items[1].tags.x" appears twice`},
		{`{"grid":[[],[{"name":"a","NAME":"b"}]]}`, `keys "name" and "NAME" name the same field (case is ignored)`},
		{`{"any":[[{"k":1,"k":2}]]}`, `key "any[0][0].k" appears twice`},
		{`{"pipe\u006cine":"a","pipeline":"b"}`, `key "pipeline" appears twice`},
		{`{"a\"b":1,"a\"b":2}`, `key "a\"b" appears twice`},
		{`{"name":"x","Name":"y"}`, `keys "name" and "Name" name the same field (case is ignored)`},
		{`{"any":{"s":"}{][,\"","n":-1.5e3,"t":true,"z":null,"s":0}}`, `key "any.s" appears twice`},
	}
	for _, c := range cases {
		err := duplicateKey([]byte(c.doc), &dupDoc{})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.doc, got, c.want)
		}
		ref := tokenDuplicateKey([]byte(c.doc), &dupDoc{})
		if (ref == nil) != (err == nil) || (ref != nil && ref.Error() != got) {
			t.Errorf("%s: %q, the token walk says %v", c.doc, got, ref)
		}
	}
}

// TestDuplicateKeyMatchesTokenWalk compares the scan with the token walk on
// random documents with repeated and case-varied keys.
func TestDuplicateKeyMatchesTokenWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 16))
	keys := []string{"pipeline", "Pipeline", "params", "items", "name", "NAME", "tags", "any", "grid", "x", "X", "y"}
	var gen func(depth int) string
	gen = func(depth int) string {
		switch n := rng.IntN(6); {
		case depth > 3 || n == 0:
			return []string{`"s"`, `1`, `-2.5e1`, `true`, `null`, `"a\"}"`}[rng.IntN(6)]
		case n <= 3:
			var parts []string
			for range rng.IntN(4) {
				parts = append(parts, strconv.Quote(keys[rng.IntN(len(keys))])+" : "+gen(depth+1))
			}
			return "{ " + strings.Join(parts, " ,\n") + " }"
		default:
			var parts []string
			for range rng.IntN(3) {
				parts = append(parts, gen(depth+1))
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
	}
	dups := 0
	for i := range 3000 {
		doc := gen(0)
		if !json.Valid([]byte(doc)) {
			t.Fatalf("generated invalid JSON: %s", doc)
		}
		for _, v := range []any{&dupDoc{}, &map[string]any{}, new(any)} {
			got, want := duplicateKey([]byte(doc), v), tokenDuplicateKey([]byte(doc), v)
			if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
				t.Fatalf("case %d, %T: %s\nscan: %v\ntoken walk: %v", i, v, doc, got, want)
			}
			if got != nil {
				dups++
			}
		}
	}
	if dups == 0 {
		t.Fatal("no document had a duplicate key: the comparison checked nothing")
	}
}
