package scheduler_test

import (
	"testing"
	"time"

	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/scheduler"
)

// The local cron (scheduler.Parse) and the sweeper's missed-start check and
// deadlines (pipeline.NextFire/PrevFire) must agree on every fire time,
// daylight-saving days included: otherwise the sweeper would expect a run at
// an instant the cron does not start it.
func TestLocalCronAgreesWithTheMissedStartCheck(t *testing.T) {
	zones := []string{"Europe/Paris", "America/Sao_Paulo", "UTC", "Australia/Lord_Howe", "America/New_York"}
	specs := []string{"0 6 * * *", "30 2 * * *", "*/15 * * * *", "0 0 * * 1-5", "45 23 * * *", "0 2 1 * *", "30 1 * * 0"}
	base := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
	seed := uint64(42)
	for i := range 4000 {
		seed = seed*6364136223846793005 + 1442695040888963407
		at := base.Add(time.Duration(seed>>20%uint64(9*365*24*3600)) * time.Second)
		loc, err := time.LoadLocation(zones[i%len(zones)])
		if err != nil {
			t.Fatal(err)
		}
		spec := specs[(i/len(zones))%len(specs)]
		local, err := scheduler.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := pipeline.ParseSchedule(spec)
		want := local.Next(at.In(loc))
		if got := pipeline.NextFire(cs, loc, at); !got.Equal(want) {
			t.Fatalf("%q in %s after %s: local cron fires at %s, pipeline.NextFire says %s", spec, loc, at.In(loc), want.In(loc), got.In(loc))
		}
	}
}
