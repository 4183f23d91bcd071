package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// duplicateKey reports the first key that appears twice in one object of
// the JSON document data, at any depth, or nil. encoding/json keeps the last
// of duplicate keys silently; a body like {"pipeline":"a","pipeline":"b"}
// is ambiguous (a proxy or a log may read the first), so it is refused.
// data must already be valid JSON (decoded once), which bounds its depth.
func duplicateKey(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkJSON(dec, "")
}

func walkJSON(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
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
			if seen[key] {
				return fmt.Errorf("key %q appears twice", at)
			}
			seen[key] = true
			if err := walkJSON(dec, at); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walkJSON(dec, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	return err
}
