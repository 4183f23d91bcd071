package boltledger

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Strings, raw JSON values and times that take every path of the encoder:
// plain, needing escapes (control characters, quotes, HTML characters,
// non-ASCII, invalid UTF-8, U+2028), raw JSON with spaces, escapes and
// non-ASCII, and times with nanoseconds, zones and years out of range.
var (
	jsonStrings = []string{"", "succeeded", "a b-c_d.e/f:1", "quote \" and \\ backslash", "<b>&amp;</b>",
		"tab\tnew\nline\r", "\x00\x01\x1f", "naïve ☃", "bad \xff\xfe utf8", "line\u2028sep\u2029",
		"0123456789abcdef", "deadbeefdeadbeef"}
	jsonRaws = []json.RawMessage{nil, json.RawMessage(`null`), json.RawMessage(`{"rows":3}`), json.RawMessage(`[1,2,{"a":[true,false]}]`),
		json.RawMessage(`{ "spaced" : [ 1 , 2 ] }`), json.RawMessage("{\"html\":\"<a&b>\"}"), json.RawMessage(`"☃"`),
		json.RawMessage(`{"esc":"\u003c\n"}`), json.RawMessage(`12.5e3`), json.RawMessage(`"s"`)}
	jsonZones = []*time.Location{time.UTC, time.FixedZone("plus", 5*3600+30*60), time.FixedZone("minus", -7*3600),
		time.FixedZone("seconds", -(23*3600 + 59*60 + 59))}
)

func randomTime(rng *rand.Rand) time.Time {
	switch rng.IntN(300) {
	case 0:
		return time.Date(10000+rng.IntN(5), 1, 2, 3, 4, 5, 0, time.UTC) // MarshalJSON fails
	case 1:
		return time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("far", 24*3600+rng.IntN(2)*3600)) // MarshalJSON fails
	}
	switch rng.IntN(5) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) // no fraction
	}
	return time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(jsonZones[rng.IntN(len(jsonZones))])
}

func randomStepRecord(rng *rand.Rand) stepRecord {
	str := func() string { return jsonStrings[rng.IntN(len(jsonStrings))] }
	raw := func() json.RawMessage { return jsonRaws[rng.IntN(len(jsonRaws))] }
	rec := stepRecord{Status: str(), Generation: rng.IntN(5) - 1, Attempts: rng.IntN(4), MaxAttempts: rng.IntN(4),
		LeaseUntil: randomTime(rng), StartedAt: randomTime(rng), FinishedAt: randomTime(rng), UpdatedAt: randomTime(rng),
		Error: str(), Output: raw(), Forced: rng.IntN(2) == 0, Only: rng.IntN(3) == 0, AsyncState: raw(),
		Check: rng.IntN(3), WaitingSince: randomTime(rng), NextCheckAt: randomTime(rng), Link: str(),
		RunInput: str(), WriteID: str()}
	if n := rng.IntN(4); n > 0 {
		rec.Inputs = map[string]int{}
		for range n {
			rec.Inputs[str()] = rng.IntN(1000) - 500
		}
	}
	for range rng.IntN(3) {
		rec.History = append(rec.History, pipeline.Attempt{N: rng.IntN(9), Generation: rng.IntN(3),
			Status: pipeline.StepStatus(str()), StartedAt: randomTime(rng), WaitingSince: randomTime(rng),
			FinishedAt: randomTime(rng), Error: str()})
	}
	if rng.IntN(20) == 0 {
		rec.Output = json.RawMessage(`{"not json"`)
	}
	return rec
}

// The hand-written encoding of a step record is encoding/json's, byte for
// byte, and fails where it fails.
func TestStepJSONIsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1202))
	failures := 0
	for i := range 20000 {
		rec := randomStepRecord(rng)
		want, werr := json.Marshal(rec)
		got, gerr := appendStepJSON(nil, &rec)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("record %d: json.Marshal error %v, appendStepJSON error %v\n%+v", i, werr, gerr, rec)
		}
		if werr != nil {
			failures++
			continue
		}
		if string(got) != string(want) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if failures == 0 || failures > 10000 {
		t.Errorf("%d of 20000 records failed to encode: the cases do not cover both outcomes well", failures)
	}
}

// encodeStep is encode's value for a step record, and its error is
// ErrInvalid.
func TestEncodeStepIsEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		rec := randomStepRecord(rng)
		want, werr := encode(42, rec)
		got, gerr := encodeStep(42, &rec)
		if string(got) != string(want) || (werr == nil) != (gerr == nil) {
			t.Fatalf("encodeStep %q %v, encode %q %v", got, gerr, want, werr)
		}
		if gerr != nil && !errors.Is(gerr, pipeline.ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", gerr)
		}
	}
}

func BenchmarkStepJSON(b *testing.B) {
	now := time.Now()
	rec := stepRecord{Status: "succeeded", Generation: 1, Attempts: 1, MaxAttempts: 3, StartedAt: now, FinishedAt: now, UpdatedAt: now,
		History:  []pipeline.Attempt{{N: 1, Generation: 1, Status: "succeeded", StartedAt: now, FinishedAt: now}},
		RunInput: "0123456789abcdef", WriteID: "deadbeefdeadbeef"}
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendStepJSON", func(b *testing.B) {
		for b.Loop() {
			if _, err := appendStepJSON(make([]byte, 0, 512), &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
