package local

import "container/heap"

// taskHeap orders pending tasks by ETA (then name, for a stable order).
type taskHeap []*record

func (h taskHeap) Len() int { return len(h) }
func (h taskHeap) Less(i, j int) bool {
	if !h[i].ETA.Equal(h[j].ETA) {
		return h[i].ETA.Before(h[j].ETA)
	}
	return h[i].Name < h[j].Name
}
func (h taskHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *taskHeap) Push(x any)   { *h = append(*h, x.(*record)) }
func (h *taskHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return r
}

func (h *taskHeap) push(r *record) { heap.Push(h, r) }
func (h *taskHeap) pop() *record   { return heap.Pop(h).(*record) }
