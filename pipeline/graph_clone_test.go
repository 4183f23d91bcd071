package pipeline

import (
	"encoding/json"
	"testing"
)

func TestGraphCloneSharesNothing(t *testing.T) {
	var g Graph
	if err := json.Unmarshal([]byte(`{"version":"v","time_zone":"Europe/Paris","steps":[
		{"name":"a","kind":"k","params":{"p":"1"},"settings":{"m":{"k":"v"},"l":[1,{"x":"y"}]}},
		{"name":"b","kind":"k","after":["a"]}]}`), &g); err != nil {
		t.Fatal(err)
	}
	before, err := json.Marshal(&g)
	if err != nil {
		t.Fatal(err)
	}
	c := g.Clone()
	if got, _ := json.Marshal(c); string(got) != string(before) {
		t.Fatalf("clone %s, want %s", got, before)
	}
	if c.Location().String() != "Europe/Paris" || c.Step("b") == nil || len(c.Successors("a")) != 1 {
		t.Fatal("the clone lost its time zone or indexes")
	}
	a := c.Step("a")
	a.Params["p"], a.Settings["m"].(map[string]any)["k"] = "changed", "changed"
	a.Settings["l"].([]any)[1].(map[string]any)["x"] = "changed"
	c.Step("b").After[0] = "changed"
	c.Successors("a")[0] = "changed"
	c.Steps[0].Name = "changed"
	if got, _ := json.Marshal(&g); string(got) != string(before) {
		t.Fatalf("changing the clone changed the graph: %s, was %s", got, before)
	}
	if g.Successors("a")[0] != "b" || g.Step("a") == nil {
		t.Fatal("changing the clone changed the graph's indexes")
	}
	if (*Graph)(nil).Clone() != nil {
		t.Fatal("clone of nil")
	}
}
