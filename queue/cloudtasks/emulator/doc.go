// Package emulator is an in-process Cloud Tasks v2 emulator: a real gRPC
// server (google.cloud.tasks.v2.CloudTasks) that stores HTTP tasks and
// dispatches them over real HTTP with the headers Cloud Tasks sends
// (X-CloudTasks-QueueName, -TaskName, -TaskRetryCount, -TaskExecutionCount,
// -TaskETA) and an OIDC token minted by the emulator's own issuer, which serves
// discovery and JWKS so that a service can verify tokens with
// OIDC_ISSUER = IssuerURL().
//
// It keeps Cloud Tasks' semantics where the pipeline depends on them: task
// names are unique (a reused name is refused with AlreadyExists, for the
// emulator's life or Config.ReuseWindow after the task ended), ScheduleTime and
// DispatchDeadline are honoured, failed deliveries are retried with exponential
// backoff and Retry-After, and the task size and deadline limits are enforced.
// State lives in memory only. Dispatch waits on a timer keyed on the next due
// task, never on a fixed poll.
package emulator
