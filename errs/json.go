package errs

import (
	"encoding/json"
	"fmt"
)

// jsonError is the JSON shape of an *Error, shared by every transport that
// carries errors in a body: {"code":"not_found","message":"...","details":[...]}.
type jsonError struct {
	Code    Code     `json:"code"`
	Message string   `json:"message,omitempty"`
	Details []Detail `json:"details,omitempty"`
}

// MarshalJSON encodes e as {"code":…,"message":…,"details":[…]}. The cause
// is never encoded.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonError{Code: e.code, Message: e.message, Details: e.details})
}

// UnmarshalJSON decodes the form written by MarshalJSON. A missing or
// unknown code is an error.
func (e *Error) UnmarshalJSON(b []byte) error {
	var j jsonError
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if !j.Code.Valid() {
		return fmt.Errorf("errs: error body has no valid code")
	}
	*e = Error{code: j.Code, message: j.Message, details: j.Details}
	return nil
}
