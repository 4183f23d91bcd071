package local

import (
	"testing"
	"time"
)

func TestWaitingListsTasksSoonestFirst(t *testing.T) {
	q := newQueue(t, tempDB(t), Config{})
	later := task("later", "s")
	later.Delay = time.Hour
	later.Payload.RunID = "p@2026-01-02"
	enqueue(t, q, later, task("now", "s"))
	got := q.Waiting()
	if len(got) != 2 {
		t.Fatalf("Waiting() = %d tasks, want 2: %+v", len(got), got)
	}
	if got[0].Task.Name != "now" || got[1].Task.Name != "later" {
		t.Errorf("order = %s, %s; want now, later", got[0].Task.Name, got[1].Task.Name)
	}
	if got[1].Task.Payload.RunID != "p@2026-01-02" || !got[1].ETA.After(got[0].ETA.Add(50*time.Minute)) {
		t.Errorf("later task = %+v; want its run and an ETA an hour out", got[1])
	}
	if got[0].CreatedAt.IsZero() {
		t.Error("CreatedAt is zero")
	}
}
