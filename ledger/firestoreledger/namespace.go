package firestoreledger

import "github.com/pipelinehq/pipeline/pipeline"

var _ pipeline.Namespacer = (*Ledger)(nil)

// Namespace is the runs collection's resource name (project, database and
// collection): "projects/P/databases/D/documents/C". Task names include it,
// so ledgers in other projects, databases or collections that share a queue
// never take each other's names.
func (l *Ledger) Namespace() string { return l.runs.Path }
