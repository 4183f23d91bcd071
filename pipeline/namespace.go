package pipeline

// TaskName is the name of the task of a step of a run in a generation, as
// this orchestrator enqueues it: TaskNameIn with its ledger's namespace.
func (o *Orchestrator) TaskName(runID, step string, gen int) string {
	return TaskNameIn(o.namespace, runID, step, gen)
}
