package emulator

import (
	"crypto/rand"
	"regexp"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// queueNameRE is projects/PROJECT/locations/LOCATION/queues/QUEUE.
	queueNameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^projects/([a-z0-9.:-]{1,100})/locations/([a-z][a-z0-9-]{0,62})/queues/([A-Za-z0-9-]{1,100})$`)
	})
)

// checkQueueName validates a queue resource name.
func checkQueueName(name string) error {
	if !queueNameRE().MatchString(name) {
		return status.Errorf(codes.InvalidArgument, "queue name %q must be projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID", name)
	}
	return nil
}

// splitTaskName validates a task resource name and returns its queue and ID.
func splitTaskName(name string) (queue, id string, err error) {
	queue, id, ok := strings.Cut(name, "/tasks/")
	if !ok || !queueNameRE().MatchString(queue) || !validTaskID(id) {
		return "", "", status.Errorf(codes.InvalidArgument,
			"task name %q must be projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID/tasks/TASK_ID with TASK_ID matching [A-Za-z0-9_-]{1,500}", name)
	}
	return queue, id, nil
}

// lastSegment is the ID at the end of a resource name.
func lastSegment(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// generatedID is a random task ID for a task created without a name.
func generatedID() string { return rand.Text() }

// validTaskID reports whether id matches [A-Za-z0-9_-]{1,500}, Cloud Tasks'
// task ID rule. A loop, not a regexp: the compiled {1,500} costs ~0.4 MB of
// heap in every process that links this package.
func validTaskID(id string) bool {
	if len(id) < 1 || len(id) > 500 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
