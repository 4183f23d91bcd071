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
// already have decoded once, which bounds its depth.
func duplicateKey(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkJSON(dec, "", reflect.TypeOf(v))
}

func walkJSON(dec *json.Decoder, path string, t reflect.Type) error {
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
		seen := map[string]string{} // the key as compared -> as written
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
			if err := walkJSON(dec, at, child); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkJSON(dec, path+"["+strconv.Itoa(i)+"]", elem); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	return err
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
