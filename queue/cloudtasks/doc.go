// Package cloudtasks delivers pipeline step tasks through Google Cloud Tasks
// (cloud.google.com/go/cloudtasks/apiv2). It implements pipeline.Queue: each
// task is an HTTP POST of the JSON payload to the service's step route, carrying
// an OIDC token for the configured service account, named deterministically so
// that enqueueing the same task twice is a no-op (AlreadyExists is success).
//
// With Config.EmulatorHost set (CLOUD_TASKS_EMULATOR_HOST) the client talks
// plain gRPC without credentials to that host, for example the emulator in
// package queue/cloudtasks/emulator.
package cloudtasks
