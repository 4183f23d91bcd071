package pipeline

import (
	"errors"
	"net/http"
)

// Domain errors. Wrap them with context; ErrorStatus maps them to HTTP codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrLeaseHeld    = errors.New("step is running")
	ErrNotReady     = errors.New("predecessors have not succeeded")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrTooLarge     = errors.New("request too large")
)

// ErrorStatus is the one place that maps domain errors to HTTP status codes.
func ErrorStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrLeaseHeld), errors.Is(err, ErrNotReady), errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrShutdown):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
