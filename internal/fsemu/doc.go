// Package fsemu runs tests against the Firestore emulator.
//
// Host returns an emulator address: FIRESTORE_EMULATOR_HOST if set, otherwise
// an emulator this test binary starts once (gcloud emulators firestore start on
// a free port) and stops when the binary ends. Call Main from TestMain to stop
// it promptly; without Main it still dies with the test binary, because its
// supervising shell kills the emulator's process group when the binary's pipe
// to it closes.
//
// When no emulator can be had, tests skip with the reason, except with CI=true,
// where they fail: in CI these tests must run.
//
// NewClient dials the emulator itself, with an OpCounter's interceptors, so a
// test can count document reads and writes (the client library ignores
// interceptors passed by option when FIRESTORE_EMULATOR_HOST is set). Emulator
// state is shared by all tests: use Collection for a fresh collection name.
package fsemu
