package pipeline

import "testing"

func TestStopStands(t *testing.T) {
	waiting := StepRun{Step: "job", Generation: 1, Status: StepWaiting}
	cases := []struct {
		name   string
		stored StepRun
		want   bool
	}{
		{"put back (its reply lost)", StepRun{Step: "job", Generation: 1, Status: StepWaiting}, false},
		{"renewed into a new generation", StepRun{Step: "job", Generation: 2, Status: StepPending}, true},
		{"stopped again in the same generation", StepRun{Step: "job", Generation: 1, Status: StepCancelled}, true},
		{"skipped in the same generation", StepRun{Step: "job", Generation: 1, Status: StepSkipped}, true},
	}
	for _, c := range cases {
		if got := stopStands(waiting, c.stored); got != c.want {
			t.Errorf("%s: stopStands = %v, want %v", c.name, got, c.want)
		}
	}
}
