package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/pipelinehq/pipeline/auth"
	"github.com/pipelinehq/pipeline/ledger/firestoreledger"
	"github.com/pipelinehq/pipeline/pipeline"
	"github.com/pipelinehq/pipeline/queue/cloudtasks"
)

// gcpBackend connects to Firestore and Cloud Tasks (or their emulators:
// FIRESTORE_EMULATOR_HOST, CLOUD_TASKS_EMULATOR_HOST) and verifies callers'
// OIDC tokens (Google's, or OIDC_ISSUER's found by discovery).
func (a *app) gcpBackend(ctx context.Context) (pipeline.Ledger, pipeline.Queue, pipeline.Authenticator, error) {
	c := a.cfg
	led, err := firestoreledger.Open(ctx, c.Project, c.FirestoreDB, c.LedgerCollection)
	if err != nil {
		return nil, nil, nil, err
	}
	a.closers = append(a.closers, led.Close)
	q, err := cloudtasks.New(ctx, cloudtasks.Config{
		Project: c.Project, Location: c.TasksLocation, Queue: c.TasksQueue,
		ServiceURL: c.ServiceURL, ServiceAccount: c.TasksAccount, Audience: c.Audience,
		EmulatorHost: c.TasksEmulator,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	a.closers = append(a.closers, q.Close)
	var authn pipeline.Authenticator = auth.Off{}
	if c.Auth == "on" {
		v, err := auth.NewVerifier(ctx, auth.Config{Audience: c.audience(), Issuer: c.Issuer, Allowed: c.AllowedInvokers})
		if err != nil {
			return nil, nil, nil, err
		}
		authn, a.verifier = v, v
		if len(c.AllowedOperators) > 0 {
			ops, err := v.WithAllowed("ALLOWED_OPERATORS", c.AllowedOperators)
			if err != nil {
				return nil, nil, nil, err
			}
			a.operators = ops
		} else {
			a.operators = denyAll{list: "ALLOWED_OPERATORS"}
		}
	}
	return led, q, authn, nil
}

// denyAll refuses every caller: operator routes fail closed when no operator
// is configured.
type denyAll struct{ list string }

func (d denyAll) Authenticate(*http.Request) (pipeline.Caller, error) {
	return pipeline.Caller{}, fmt.Errorf("%w: %s is empty, so operator routes are closed", pipeline.ErrForbidden, d.list)
}
