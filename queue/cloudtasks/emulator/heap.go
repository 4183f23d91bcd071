package emulator

import (
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
)

// task is a stored task. Its fields are guarded by Emulator.mu.
type task struct {
	pb      *cloudtaskspb.Task // owned by the emulator; cloned on the way out
	queue   string             // the queue's resource name
	due     time.Time          // when the next attempt may start
	seq     uint64             // creation order, to break ties on due
	index   int                // position in the due heap, -1 when not in it
	deleted bool               // removed while an attempt was in flight
	status  int                // HTTP status of the last response, 0 if none
}

// dueHeap orders waiting tasks by due time (container/heap).
type dueHeap []*task

func (h dueHeap) Len() int { return len(h) }

func (h dueHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}

func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *dueHeap) Push(x any) {
	t := x.(*task)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *dueHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
