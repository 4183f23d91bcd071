package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// duplicateKey reports the first key given twice in one object of the JSON
// document data, at any depth, or nil. encoding/json keeps the last of
// duplicate keys silently, and matches struct fields ignoring case; a body
// like {"pipeline":"a","pipeline":"b"} (or "Pipeline":"b") is ambiguous (a
// proxy or a log may read the first), so it is refused. v is what data was
// decoded into: in objects that fill a struct, keys differing only in case
// are duplicates too; in maps (params) they are distinct keys. data must
// already have decoded once: it is valid JSON, which bounds its depth.
//
// It scans the bytes in place (every step delivery goes through it; a
// json.Decoder token walk allocated per token) and builds the key's path
// only for the error.
func duplicateKey(data []byte, v any) error {
	s := keyScanner{data: data}
	s.space()
	err := s.value(reflect.TypeOf(v))
	if d, ok := err.(*dupError); ok {
		if d.prev != "" {
			return fmt.Errorf("keys %q and %q name the same field (case is ignored)", d.prev, d.key)
		}
		return fmt.Errorf("key %q appears twice", d.at())
	}
	return err
}

// dupError is a duplicate key found by keyScanner; outer collects, while
// the scan unwinds, the keys and "[i]" indexes that lead to its object,
// innermost first.
type dupError struct {
	key   string
	prev  string // the other spelling, when the two differ in case only
	outer []string
}

func (e *dupError) Error() string { return "duplicate key " + e.at() }

// at is the key's path: a.b[2].key.
func (e *dupError) at() string {
	var b strings.Builder
	for i := len(e.outer) - 1; i >= -1; i-- {
		seg := e.key
		if i >= 0 {
			seg = e.outer[i]
		}
		if b.Len() > 0 && !strings.HasPrefix(seg, "[") {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// keyScanner walks a valid JSON document.
type keyScanner struct {
	data []byte
	i    int
}

func (s *keyScanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str skips a string at s.i and returns its contents, unescaped (the
// raw bytes unless it has escapes).
func (s *keyScanner) str() []byte {
	start := s.i + 1
	escaped := false
	for s.i++; s.i < len(s.data); s.i++ {
		switch s.data[s.i] {
		case '\\':
			escaped = true
			s.i++
		case '"':
			s.i++
			raw := s.data[start : s.i-1]
			if escaped {
				var out string
				if err := json.Unmarshal(s.data[start-1:s.i], &out); err == nil {
					return []byte(out)
				}
			}
			return raw
		}
	}
	return s.data[start:]
}

// value scans one value that fills a Go value of type t (nil: unknown).
func (s *keyScanner) value(t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s.i >= len(s.data) {
		return nil
	}
	switch s.data[s.i] {
	case '{':
		return s.object(t)
	case '[':
		return s.array(t)
	case '"':
		s.str()
	default: // a number, true, false or null
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
	}
	return nil
}

func (s *keyScanner) object(t reflect.Type) error {
	isStruct := t != nil && t.Kind() == reflect.Struct
	var room [16][]byte
	keys := room[:0]
	s.i++ // '{'
	for {
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			s.i++ // '}'
			return nil
		}
		key := s.str()
		for _, prev := range keys {
			switch {
			case bytes.Equal(prev, key):
				return &dupError{key: string(key)}
			case isStruct && bytes.EqualFold(prev, key):
				return &dupError{key: string(key), prev: string(prev)}
			}
		}
		keys = append(keys, key)
		s.space()
		s.i++ // ':'
		s.space()
		var child reflect.Type
		switch {
		case isStruct:
			child = fieldType(t, string(key))
		case t != nil && t.Kind() == reflect.Map:
			child = t.Elem()
		}
		if err := s.value(child); err != nil {
			if d, ok := err.(*dupError); ok {
				d.outer = append(d.outer, string(key))
			}
			return err
		}
		s.space()
		if s.i < len(s.data) && s.data[s.i] == ',' {
			s.i++
		}
	}
}

func (s *keyScanner) array(t reflect.Type) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	s.i++ // '['
	for n := 0; ; n++ {
		s.space()
		if s.i >= len(s.data) || s.data[s.i] == ']' {
			s.i++
			return nil
		}
		if err := s.value(elem); err != nil {
			if d, ok := err.(*dupError); ok {
				d.outer = append(d.outer, "["+strconv.Itoa(n)+"]")
			}
			return err
		}
		s.space()
		if s.i < len(s.data) && s.data[s.i] == ',' {
			s.i++
		}
	}
}

// fieldType is the type of the struct field that encoding/json fills from
// key, or nil. It walks the fields in place (reflect.VisibleFields would
// allocate a slice per call, on every key of every request body), descending
// into untagged embedded structs for their promoted fields.
func fieldType(t reflect.Type, key string) reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if got := fieldType(ft, key); got != nil {
					return got
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f.Type
		}
	}
	return nil
}
