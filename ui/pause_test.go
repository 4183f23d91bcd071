package ui_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// The dashboard's pause button: an operator pauses with a reason (recorded
// with the operator's email), the grid shows the pause to everyone and the
// resume button to operators only, a viewer cannot pause, and resume lifts it.
func TestDashboardPause(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	if code, body := e.action("/ui/api/pipelines/web/pause", `{"reason":"migration"}`, e.vwToken); code != http.StatusForbidden {
		t.Fatalf("viewer pause: %d %s", code, body)
	}
	code, body := e.action("/ui/api/pipelines/web/pause", `{"reason":"migration"}`, e.opToken)
	if code != http.StatusOK || !strings.Contains(body, "Paused web") {
		t.Fatalf("operator pause: %d %s", code, body)
	}
	st, err := e.orch.PauseState(ctx, "web")
	if err != nil || !st.Paused || st.Reason != "migration" || st.By == "" {
		t.Fatalf("pause state %+v %v", st, err)
	}
	_, page := e.do(request{path: "/ui/", token: e.opToken})
	if !strings.Contains(page, `class="paused">paused</strong> by `+st.By+`: migration`) || !strings.Contains(page, `data-action="/ui/api/pipelines/web/unpause"`) {
		t.Fatalf("operator's grid does not show the pause and the resume button:\n%s", page)
	}
	_, page = e.do(request{path: "/ui/", token: e.vwToken})
	if !strings.Contains(page, `class="paused">paused</strong>`) || strings.Contains(page, "/ui/api/pipelines/web/") {
		t.Fatalf("viewer's grid: want the pause shown and no button:\n%s", page)
	}
	if code, body := e.action("/ui/api/pipelines/nope/pause", `{}`, e.opToken); code != http.StatusNotFound || !strings.Contains(body, `pipeline \"nope\"`) {
		t.Errorf("pause of an unknown pipeline: %d %s", code, body)
	}
	if code, body := e.action("/ui/api/pipelines/web/unpause", `{"reason":"x"}`, e.opToken); code != http.StatusBadRequest {
		t.Errorf("unpause with an unknown field: %d %s", code, body)
	}
	if code, body := e.action("/ui/api/pipelines/web/unpause", ``, e.opToken); code != http.StatusOK || !strings.Contains(body, "Resumed web") {
		t.Fatalf("operator unpause: %d %s", code, body)
	}
	if st, _ := e.orch.PauseState(ctx, "web"); st.Paused {
		t.Fatal("still paused after resume")
	}
	_, page = e.do(request{path: "/ui/", token: e.opToken})
	if !strings.Contains(page, `data-action="/ui/api/pipelines/web/pause"`) {
		t.Fatalf("operator's grid has no pause button after resume:\n%s", page)
	}
}
