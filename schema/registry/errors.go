package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/raptormq/raptor/schema"
)

// Error codes of the Confluent Schema Registry REST API. The HTTP status is
// the code's first three digits (409 stands alone).
const (
	CodeSubjectNotFound                 = 40401
	CodeVersionNotFound                 = 40402
	CodeSchemaNotFound                  = 40403
	CodeSubjectSoftDeleted              = 40404
	CodeSubjectNotSoftDeleted           = 40405
	CodeSchemaVersionSoftDeleted        = 40406
	CodeSchemaVersionNotSoftDeleted     = 40407
	CodeSubjectLevelCompatNotConfigured = 40408
	CodeSubjectLevelModeNotConfigured   = 40409
	CodeIncompatibleSchema              = 409
	CodeInvalidSchema                   = 42201
	CodeInvalidVersion                  = 42202
	CodeInvalidCompatibilityLevel       = 42203
	CodeInvalidMode                     = 42204
	CodeOperationNotPermitted           = 42205
	CodeReferenceExists                 = 42206
	CodeIDDoesNotMatch                  = 42207
	CodeInvalidSubject                  = 42208
	CodeStoreError                      = 50001
	CodeOperationTimeout                = 50002
	CodeForwardError                    = 50003
)

const (
	maxVersion                            = 1<<31 - 1
	latestVersion                         = -1
	invalidVersionText                    = "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
	invalidCompatibilityLevelExplanation  = "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
	incompatibleSchemaExplanationTemplate = "Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]"
)

// Error is a registry error with its Confluent error code. Its message names
// the subject, version or ID concerned.
type Error struct {
	// Code is the Confluent error code (40401, 409, 42201, ...).
	Code int
	// Message is the human-readable explanation sent in the response body.
	Message string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("registry: %s (error code %d)", e.Message, e.Code) }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus returns the HTTP status that carries this error.
func (e *Error) HTTPStatus() int {
	if e.Code < 1000 {
		return e.Code
	}
	return e.Code / 100
}

// CodeOf returns the Confluent code of err, or 0 if err is not an *Error.
func CodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func errSubjectNotFound(s string) error {
	return &Error{Code: CodeSubjectNotFound, Message: fmt.Sprintf("Subject '%s' not found.", s)}
}

func errVersionNotFound(s string, v int) error {
	return &Error{Code: CodeVersionNotFound, Message: fmt.Sprintf("Version %d not found for subject '%s'.", v, s)}
}

func errSchemaNotFound(what string) error {
	return &Error{Code: CodeSchemaNotFound, Message: "Schema not found: " + what}
}

func errInvalidSchema(err error) error {
	return &Error{Code: CodeInvalidSchema, Message: "Invalid schema: " + err.Error(), Err: err}
}

// ErrInvalidVersion returns the 42202 error for a version text that is
// neither a positive 32-bit integer nor "latest".
func ErrInvalidVersion(text string) error {
	return &Error{Code: CodeInvalidVersion, Message: fmt.Sprintf(invalidVersionText, text)}
}

// ErrInvalidLevel returns the 42203 error for an unknown compatibility level.
func ErrInvalidLevel(err error) error {
	return &Error{Code: CodeInvalidCompatibilityLevel, Message: invalidCompatibilityLevelExplanation, Err: err}
}

func errIncompatible(subject string, err error) error {
	var ie *schema.IncompatibleError
	details := err.Error()
	if errors.As(err, &ie) {
		details = strings.Join(ie.Messages, ", ")
	}
	return &Error{Code: CodeIncompatibleSchema, Message: fmt.Sprintf(incompatibleSchemaExplanationTemplate, subject, details), Err: err}
}

func errReadOnly(subject string) error {
	return &Error{Code: CodeOperationNotPermitted, Message: fmt.Sprintf("Subject '%s' is in read-only mode", subject)}
}

func errModeNotConfigured(subject string) error {
	return &Error{Code: CodeSubjectLevelModeNotConfigured, Message: fmt.Sprintf("Subject '%s' does not have subject-level mode configured", subject)}
}

// ErrModeNotConfigured returns the 40409 error for a subject without its
// own mode.
func ErrModeNotConfigured(subject string) error { return errModeNotConfigured(subject) }

func errStore(err error) error {
	return &Error{Code: CodeStoreError, Message: "Error while storing: " + err.Error(), Err: err}
}
