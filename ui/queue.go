package ui

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// QueueTask is one task of the local queue as the queue page shows it.
type QueueTask struct {
	Name      string
	RunID     string
	Step      string
	ETA       time.Time
	Created   time.Time
	Attempts  int
	LastError string
	// DiedAt is set for dead-lettered tasks.
	DiedAt time.Time
}

// Queue lists the local queue's tasks: the waiting ones (due or scheduled
// later) and the dead-lettered ones.
type Queue interface {
	QueueTasks(ctx context.Context) (waiting, dead []QueueTask, err error)
}

type queueData struct {
	Available  bool
	ConsoleURL string
	Pending    []QueueTask // due now (or in flight soon)
	Scheduled  []QueueTask // due later (retries with backoff)
	Dead       []QueueTask
}

func (h *Handler) queue(ctx context.Context, r *http.Request, _ access) (string, view, error) {
	d := queueData{ConsoleURL: h.cfg.TasksConsoleURL}
	if d.ConsoleURL == "" {
		d.ConsoleURL = "https://console.cloud.google.com/cloudtasks"
	}
	v := view{Title: "Queue", Nav: "queue"}
	if h.cfg.Queue == nil {
		v.Data = d
		return "queue", v, nil
	}
	d.Available = true
	waiting, dead, err := h.cfg.Queue.QueueTasks(ctx)
	if err != nil {
		return "", view{}, fmt.Errorf("queue: %w", err)
	}
	now := h.cfg.Now()
	slices.SortFunc(waiting, func(a, b QueueTask) int { return a.ETA.Compare(b.ETA) })
	for _, t := range waiting {
		if t.ETA.After(now) {
			d.Scheduled = append(d.Scheduled, t)
		} else {
			d.Pending = append(d.Pending, t)
		}
	}
	d.Dead = dead
	v.Data = d
	v.Live = r.URL.Path
	return "queue", v, nil
}
