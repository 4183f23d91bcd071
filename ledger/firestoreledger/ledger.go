package firestoreledger

import (
	"context"
	"fmt"
	"os"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"

	"github.com/pipelinehq/pipeline/pipeline"
)

// Defaults for Open's empty arguments.
const (
	// DefaultCollection is the run collection when none is configured
	// (LEDGER_COLLECTION).
	DefaultCollection = "pipeline_runs"
	// DefaultDatabase is the Firestore database when none is configured
	// (FIRESTORE_DATABASE).
	DefaultDatabase = firestore.DefaultDatabaseID
	// EmulatorProject is the project used against the emulator when none is
	// given.
	EmulatorProject = "demo-pipeline"
)

// stepsCollection is the name of a run document's step subcollection.
const stepsCollection = "steps"

// Ledger is a pipeline.Ledger on Firestore.
type Ledger struct {
	client *firestore.Client
	runs   *firestore.CollectionRef
	// marks holds the pipeline marks (pauses, schedule alerts), in a sibling
	// collection named after the run collection (see MarksCollection).
	marks *firestore.CollectionRef
	// owned says Close closes client (Open made it).
	owned bool
}

var _ pipeline.Ledger = (*Ledger)(nil)

// New returns a ledger keeping its runs in collection (DefaultCollection if
// empty) of client. Close does not close a client given to New.
func New(client *firestore.Client, collection string) *Ledger {
	if collection == "" {
		collection = DefaultCollection
	}
	return &Ledger{client: client, runs: client.Collection(collection), marks: client.Collection(MarksCollection(collection))}
}

// Open connects to database (DefaultDatabase if empty) of project and returns
// a ledger on collection (DefaultCollection if empty). It honours
// FIRESTORE_EMULATOR_HOST as the client library does; against the emulator an
// empty project becomes EmulatorProject, otherwise an empty project is detected
// from the credentials. Close closes the connection.
func Open(ctx context.Context, project, database, collection string, opts ...option.ClientOption) (*Ledger, error) {
	if database == "" {
		database = DefaultDatabase
	}
	if project == "" {
		project = firestore.DetectProjectID
		if os.Getenv("FIRESTORE_EMULATOR_HOST") != "" {
			project = EmulatorProject
		}
	}
	client, err := firestore.NewClientWithDatabase(ctx, project, database, opts...)
	if err != nil {
		return nil, fmt.Errorf("firestoreledger: open project %q database %q: %w", project, database, err)
	}
	l := New(client, collection)
	l.owned = true
	return l, nil
}

// Close closes the client if Open created it.
func (l *Ledger) Close() error {
	if !l.owned {
		return nil
	}
	if err := l.client.Close(); err != nil {
		return fmt.Errorf("firestoreledger: close: %w", err)
	}
	return nil
}

// runRef is the document of a run.
func (l *Ledger) runRef(runID string) (*firestore.DocumentRef, error) {
	if err := checkID("run id", runID); err != nil {
		return nil, err
	}
	return l.runs.Doc(runID), nil
}

// stepRef is the document of a step of a run.
func (l *Ledger) stepRef(runID, step string) (*firestore.DocumentRef, error) {
	run, err := l.runRef(runID)
	if err != nil {
		return nil, err
	}
	if err := checkID("step", step); err != nil {
		return nil, err
	}
	return run.Collection(stepsCollection).Doc(step), nil
}

// checkID refuses what cannot be a Firestore document ID.
func checkID(what, id string) error {
	switch {
	case id == "", id == ".", id == "..",
		strings.Contains(id, "/"),
		len(id) > 1500,
		strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"):
		return fmt.Errorf("%w: %s %q", pipeline.ErrInvalid, what, id)
	}
	return nil
}
