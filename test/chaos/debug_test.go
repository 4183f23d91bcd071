package chaos

import (
	"os"
	"testing"
)

func debugRun(t *testing.T, s *stack, id string) {
	if os.Getenv("CHAOS_DEBUG") == "" {
		return
	}
	_, body, _ := s.do("GET", "/pipeline/runs/"+id, schedulerSA, nil, nil)
	t.Logf("%s: %s", id, body)
}
